#include "clip/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "clip/util/log.h"

namespace clip {
namespace {

std::string duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char out[32];
  if (s >= 3600) {
    std::snprintf(out, sizeof out, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(out, sizeof out, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  }
  return out;
}

}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), sink_(has_log_sink()) {
  tty_ = !sink_ && ::isatty(STDERR_FILENO) == 1;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double Progress::rate() const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
}

void Progress::advance(int64_t n, const std::string& note) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  // A terminal redraws up to 10 times a second; a log gets a line every 10 seconds.
  if (since >= (tty_ ? 0.1 : 10.0)) draw(false, note);
}

void Progress::finish(const std::string& note) { draw(true, note); }

void Progress::draw(bool final, const std::string& note) {
  last_draw_ = std::chrono::steady_clock::now();
  const double r = rate();
  std::string line = label_ + " ";
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    if (tty_) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(fraction * kWidth);
      line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "%lld/%lld (%.0f%%) %.1f %s/s", static_cast<long long>(done_),
                  static_cast<long long>(total_), 100 * fraction, r, unit_.c_str());
    line += buf;
    if (!final && r > 0) line += " ETA " + duration(static_cast<double>(total_ - done_) / r);
  } else {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%lld %s, %.1f %s/s", static_cast<long long>(done_), unit_.c_str(), r, unit_.c_str());
    line += buf;
  }
  if (final) line += " in " + duration(std::chrono::duration<double>(last_draw_ - start_).count());
  if (!note.empty()) line += "  " + note;
  if (sink_) {
    log_line(LogLevel::progress, line);
  } else if (tty_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  if (!sink_) std::fflush(stderr);
}

}  // namespace clip
