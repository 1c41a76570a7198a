#pragma once
// A tool's main body: every tool's main is `return clip::tools::run_tool("clip_x", [&] { ...; return 0; });`.
// Tool code, not the library's: the library throws, a tool turns that into one line and an exit code.
#include <exception>
#include <functional>
#include <iostream>

#include "clip/util/allocator.h"
#include "clip/util/error.h"

namespace clip::tools {

/// Runs `body` (with freed memory kept for reuse); on any exception prints "<tool>: error: <one line>" to stderr and returns 1.
inline int run_tool(const char* tool, const std::function<int()>& body) {
  clip::keep_freed_memory();  // activations reused without page faults (clip/util/allocator.h)
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << error_message(e) << "\n";
    return 1;
  }
}

}  // namespace clip::tools
