#include "clip/util/error.h"

#include <c10/util/Exception.h>


namespace clip {

std::string error_message(const std::exception& error) {
  std::string message;
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&error)) {
    message = c10->what_without_backtrace();
  } else {
    message = error.what();
  }
  // One line: LibTorch appends context on further lines.
  const auto newline = message.find('\n');
  if (newline != std::string::npos) message.resize(newline);
  return message;
}

}  // namespace clip
