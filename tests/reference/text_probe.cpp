// clip_text_probe: libclip's ftfy port, one text at a time, for tests/reference/test_ftfy.py to hold against ftfy
// itself. Reads JSON strings, one a line; writes one JSON object a line:
//   {"bad": ftfy.badness.is_bad, "encoding": ftfy.fix_encoding, "text": ftfy.fix_text}
// Test-only (internal headers); not installed.
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "text/ftfy.h"
#include "text/text_clean.h"
#include "text/unicode.h"

int main() {
  std::ios::sync_with_stdio(false);
  std::string line, utf8;
  std::u32string text;
  while (std::getline(std::cin, line)) {
    try {
      clip::text::utf8_to_utf32(nlohmann::json::parse(line).get<std::string>(), text);
      nlohmann::json out;
      out["bad"] = clip::ftfy::is_bad(text);
      clip::text::utf32_to_utf8(clip::ftfy::fix_encoding(text), utf8);
      out["encoding"] = utf8;
      clip::text::ftfy_fix_text(text);
      clip::text::utf32_to_utf8(text, utf8);
      out["text"] = utf8;
      std::cout << out.dump() << '\n';
    } catch (const std::exception& e) {
      std::cout << nlohmann::json{{"error", e.what()}}.dump() << '\n';
    }
  }
  return 0;
}
