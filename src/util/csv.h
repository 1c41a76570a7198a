#pragma once
// Writing CSV that spreadsheets and Python's csv module read back: a field holding a comma, a quote or a line break
// is quoted, its quotes doubled. Internal.
#include <string>

namespace clip {

inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace clip
