#pragma once
// What every fuzz target shares: the one rule (bad input may only ever be answered with clip::Error; any other
// exception, a crash, a sanitizer report, a leak or a hang is a finding) and a temporary file for the readers that
// take a path.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "clip/util/error.h"

namespace clip::fuzz {

/// Runs `f`. clip::Error is the expected answer to bad input; any other exception is printed and aborts, which
/// libFuzzer reports as a crash with the input that caused it.
template <typename F>
void expect_clip_errors(F&& f) {
  try {
    f();
  } catch (const clip::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: an exception other than clip::Error escaped: %s\n", e.what());
    std::abort();
  }
}

/// Writes `data` to this process's temporary file (one per suffix, rewritten for every input) and returns its path.
inline std::string temp_file(const uint8_t* data, size_t size, const std::string& suffix) {
  const char* shm = "/dev/shm";
  const std::filesystem::path dir = std::filesystem::is_directory(shm) ? shm : std::filesystem::temp_directory_path();
  const std::string path = (dir / ("clip_fuzz_" + std::to_string(getpid()) + suffix)).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out.flush()) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace clip::fuzz
