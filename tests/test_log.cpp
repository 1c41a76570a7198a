// The log sink: an application's sink receives libclip's notes and the progress of long jobs, one line at a time,
// from any thread; an empty sink restores stderr.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "clip/util/log.h"
#include "clip/util/progress.h"

namespace {

struct Captured {
  std::mutex mutex;
  std::vector<std::pair<clip::LogLevel, std::string>> lines;
};

TEST(LogSink, ReceivesNotesAndProgressThenStderrAgain) {
  Captured captured;
  EXPECT_FALSE(clip::has_log_sink());
  clip::set_log_sink([&](clip::LogLevel level, const std::string& line) {
    std::lock_guard<std::mutex> lock(captured.mutex);
    captured.lines.emplace_back(level, line);
  });
  EXPECT_TRUE(clip::has_log_sink());
  clip::log_warning("model.pt: SHA-256 differs, ", 2, " bytes");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([t] { clip::log_info("thread ", t); });
  for (std::thread& t : threads) t.join();
  clip::Progress progress("classify", 10, "img");
  progress.advance(10);
  progress.finish("top-1 0.9");
  clip::set_log_sink(nullptr);
  EXPECT_FALSE(clip::has_log_sink());

  ASSERT_EQ(captured.lines.size(), 6u);
  EXPECT_EQ(captured.lines[0].first, clip::LogLevel::warning);
  EXPECT_EQ(captured.lines[0].second, "model.pt: SHA-256 differs, 2 bytes");
  for (size_t i = 1; i < 5; ++i) EXPECT_EQ(captured.lines[i].first, clip::LogLevel::info);
  EXPECT_EQ(captured.lines[5].first, clip::LogLevel::progress);
  const std::string& last = captured.lines[5].second;
  std::printf("[ message  ] %s\n", last.c_str());
  EXPECT_EQ(last.rfind("classify 10/10 (100%)", 0), 0u) << last;  // no bar, no terminal codes
  EXPECT_EQ(last.find('\033'), std::string::npos) << last;
  EXPECT_NE(last.find("top-1 0.9"), std::string::npos) << last;
}

}  // namespace
