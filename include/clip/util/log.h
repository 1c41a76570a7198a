#pragma once
/// Where libclip's notes go: warnings and information that are not errors (a slow BLAS, a skipped unreadable
/// checkpoint, the shard plan). Stderr by default; an application routes them to its own logger:
///
///   clip::set_log_sink([](clip::LogLevel level, const std::string& line) { my_logger(int(level), line); });
///   clip::log_warning("model.pt: SHA-256 differs from the release");   // "clip: warning: ..." on stderr
///
/// Progress of long jobs (Progress: classify_folder, write_shards, a Trainer's ProgressLine) is drawn on stderr
/// with the default sink, and goes to an application's sink as LogLevel::progress lines instead (one every 10 s, and
/// a last one). A Trainer's steps also reach its callbacks (clip/train/callbacks.h).
#include <functional>
#include <string>
#include <utility>

#include "clip/util/error.h"

namespace clip {

enum class LogLevel { info, warning, progress };

/// Receives one line (no newline) at a time, from any thread (calls are serialized).
using LogSink = std::function<void(LogLevel level, const std::string& line)>;

/// Replaces the sink; an empty function restores the default (stderr: "clip: <line>", "clip: warning: <line>").
void set_log_sink(LogSink sink);

/// True when set_log_sink installed an application's sink.
bool has_log_sink();

/// Sends one line to the sink.
void log_line(LogLevel level, const std::string& line);

template <typename... Args>
void log_info(Args&&... args) {
  log_line(LogLevel::info, str(std::forward<Args>(args)...));
}

template <typename... Args>
void log_warning(Args&&... args) {
  log_line(LogLevel::warning, str(std::forward<Args>(args)...));
}

}  // namespace clip
