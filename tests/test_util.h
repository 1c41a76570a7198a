#pragma once
// Shared helpers of the test suite: data paths, the relative difference the parity tests report, temporary
// folders, and running a tool as a user would.
#include <ATen/ATen.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "clip/util/features.h"

namespace clip::test {

/// Whether this build decodes `file` (by its extension: JPEG, PNG, or a format OpenCV decodes).
inline bool decodes(const std::string& file) {
  const std::string ext = std::filesystem::path(file).extension().string();
  if (ext == ".jpg" || ext == ".jpeg") return clip::features().jpeg;
  if (ext == ".png") return clip::features().png;
  return clip::features().opencv;
}

inline std::string data(const std::string& name) { return std::string(CLIP_TEST_DATA_DIR) + "/" + name; }
inline std::string config(const std::string& name) { return std::string(CLIP_CONFIG_DIR) + "/models/" + name + ".json"; }

/// max |a - b| / max |b|: the fixtures' tolerance measure.
inline double relative_difference(const at::Tensor& actual, const at::Tensor& expected) {
  const at::Tensor a = actual.to(at::kDouble), b = expected.to(at::kDouble);
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

/// max |a - b| / max(max |b|, 1e-4): a gradient's relative difference, except that a gradient which is zero in
/// exact arithmetic (the attention pool's k_proj.bias: a constant added to every key cancels in the softmax) is
/// compared at the scale 1e-4 rather than at its float noise (~1e-9).
inline double gradient_difference(const at::Tensor& actual, const at::Tensor& expected) {
  return (actual.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>() /
         std::max(expected.abs().max().item<double>(), 1e-4);
}

/// Prints and returns the relative difference, so every parity test shows what it measured.
inline double report(const std::string& what, const at::Tensor& actual, const at::Tensor& expected) {
  const double d = relative_difference(actual, expected);
  std::printf("[ measured ] %-40s relative difference %.3g\n", what.c_str(), d);
  return d;
}

/// A fresh folder under the system's temporary directory, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("clip_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The path of `name` inside the folder.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  /// Writes `bytes` to `name` inside the folder and returns its path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string file = *this / name;
    std::ofstream(file, std::ios::binary) << bytes;
    return file;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

/// What a command printed on stdout (append " 2>&1" to the command for stderr too) and its exit status (-1 when it
/// did not exit normally).
struct CommandResult {
  int exit_code;
  std::string output;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult r{-1, {}};
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return r;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) r.output.append(buffer.data(), n);
  const int status = ::pclose(pipe.release());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Starts `command` under /bin/sh, exec'd (so the pid is the command's own, for signals); returns its pid.
inline pid_t start_command(const std::string& command) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

/// Waits for a process that start_command started: its exit code, or 128 + the signal that ended it.
inline int wait_exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// The "train" lines a run's metrics.jsonl holds so far (0 before it exists).
inline int64_t logged_train_steps(const std::string& metrics) {
  std::ifstream in(metrics);
  int64_t steps = 0;
  for (std::string line; std::getline(in, line);) steps += line.find("\"type\":\"train\"") != std::string::npos;
  return steps;
}

/// The message of the exception `f` throws (printed, so the test log shows it), or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    std::printf("[ message  ] %s\n", e.what());
    return e.what();
  }
  return "(no error)";
}

/// The path of a built tool: tool("clip_zeroshot").
inline std::string tool(const std::string& name) { return std::string(CLIP_BIN_DIR) + "/" + name; }


/// A page as headless Chromium (Debian's `chromium`) shows it: the DOM after the load event and its scripts, and the
/// console messages (errors included) it logged. `ran` is false when no chromium can be run here.
struct RenderedPage {
  bool ran = false;
  std::string dom;
  std::vector<std::string> console;
};

/// Renders `html` (a file) in headless Chromium; with `screenshot`, also writes a PNG of the page there.
inline RenderedPage render_in_chromium(const std::string& html, const std::string& screenshot = "") {
  RenderedPage page;
  if (run_command("command -v chromium >/dev/null 2>&1").exit_code != 0) return page;
  const std::string path = std::filesystem::absolute(html).string();
  const std::string flags = "timeout 120 chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 "
                            "--user-data-dir='" + path + ".chromium' ";
  const std::string log = path + ".console.log";
  const CommandResult dom =
      run_command(flags + "--enable-logging=stderr --v=0 --dump-dom 'file://" + path + "' 2>'" + log + "'");
  page.ran = dom.exit_code == 0;
  page.dom = dom.output;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(":CONSOLE") != std::string::npos) page.console.push_back(line);
  }
  if (!screenshot.empty()) {
    run_command(flags + "--window-size=1280,1600 --screenshot='" + screenshot + "' 'file://" + path + "' >/dev/null 2>&1");
  }
  std::error_code ignored;
  std::filesystem::remove_all(path + ".chromium", ignored);
  return page;
}

/// How many times `needle` occurs in `haystack`.
inline size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace clip::test

/// Skips the test when this build leaves out a feature (a field of clip::Features), saying which.
#define CLIP_REQUIRE_FEATURE(name)                                                                            \
  if (!clip::features().name)                                                                                  \
  GTEST_SKIP() << "this libclip is built without " #name " (" << clip::features_summary() << ")"

/// EXPECT that `haystack` contains `needle`, showing the haystack when not.
#define EXPECT_CONTAINS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)
