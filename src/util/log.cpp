#include "clip/util/log.h"

#include <cstdio>
#include <mutex>

namespace clip {
namespace {

std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}

LogSink& sink() {
  static LogSink s;
  return s;
}

}  // namespace

void set_log_sink(LogSink s) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  sink() = std::move(s);
}

bool has_log_sink() {
  std::lock_guard<std::mutex> lock(sink_mutex());
  return static_cast<bool>(sink());
}

void log_line(LogLevel level, const std::string& line) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (sink()) {
    sink()(level, line);
  } else {
    std::fprintf(stderr, "clip: %s%s\n", level == LogLevel::warning ? "warning: " : "", line.c_str());
  }
}

}  // namespace clip
