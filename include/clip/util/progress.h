#pragma once
/// Progress of long work on stderr: a bar with rate and ETA on a terminal, a plain line every 10 seconds
/// otherwise (logs, CI). With an application's log sink (clip/util/log.h) the lines go there instead, as
/// LogLevel::progress.
///
///   clip::Progress progress("classify", images.size(), "img");
///   for (...) progress.advance(batch_size);
///   progress.finish();
#include <chrono>
#include <cstdint>
#include <string>

namespace clip {

/// A progress reporter; not thread-safe (call from one thread).
class Progress {
 public:
  /// `total` 0 means unknown. `unit` names what is counted ("img", "step").
  Progress(std::string label, int64_t total, std::string unit);
  /// Adds `n` done items; `note` is shown after the rate (e.g. "loss 2.31").
  void advance(int64_t n, const std::string& note = "");
  /// Prints the final line (always, also when nothing was redrawn recently).
  void finish(const std::string& note = "");
  /// Items per second since construction.
  double rate() const;
  int64_t done() const { return done_; }

 private:
  void draw(bool final, const std::string& note);

  std::string label_, unit_;
  int64_t total_, done_ = 0;
  bool tty_;   // redraw a bar in place (stderr is a terminal, and no application sink)
  bool sink_;  // lines go to the application's log sink
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace clip
