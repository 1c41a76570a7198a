#pragma once
/// Errors in user input and IO.
///
///   throw clip::Error(clip::str("model.safetensors: key 'logit_scale': expected shape [], got [2]"));
///
/// Library contracts use TORCH_CHECK; user-facing failures (files, keys, flags) throw clip::Error with a message
/// that names the file, what is wrong and, where there is one, the fix. Tools catch it at main, print the one
/// line and exit non-zero (tools/tool_main.h).
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace clip {

/// A user or IO error; what() is one line naming the file, the key, expected vs actual.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Concatenates its arguments with operator<< into a string: str("expected ", 3, " got ", 4).
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

/// Throws clip::Error with the concatenation of its arguments.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str(std::forward<Args>(args)...));
}

/// The one-line message of any exception (LibTorch's c10::Error without its backtrace).
std::string error_message(const std::exception& error);

}  // namespace clip
