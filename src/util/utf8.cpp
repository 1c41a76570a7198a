#include "clip/util/utf8.h"

#include <cstdint>

namespace clip {
namespace {

// The second byte's valid range for each lead byte of a multi-byte sequence (Unicode table 3-7); the other
// continuation bytes are always 0x80..0xBF.
struct LeadInfo {
  int length;  // 0: not a lead byte
  uint8_t low;
  uint8_t high;
};

LeadInfo lead_info(uint8_t b) {
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

}  // namespace

size_t utf8_sequence_at(std::string_view s, size_t i, char32_t& cp, size_t& bad) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  const LeadInfo lead = lead_info(b0);
  bad = 1;
  if (lead.length == 0) return 0;
  cp = b0 & (lead.length == 2 ? 0x1F : lead.length == 3 ? 0x0F : 0x07);
  for (int k = 1; k < lead.length; ++k) {
    if (i + k >= s.size()) return 0;
    const auto b = static_cast<uint8_t>(s[i + k]);
    const uint8_t low = k == 1 ? lead.low : 0x80, high = k == 1 ? lead.high : 0xBF;
    if (b < low || b > high) return 0;
    cp = (cp << 6) | (b & 0x3F);
    bad = k + 1;
  }
  return static_cast<size_t>(lead.length);
}

bool is_valid_utf8(std::string_view bytes) {
  char32_t cp = 0;
  size_t bad = 0;
  for (size_t i = 0, n = 0; i < bytes.size(); i += n) {
    n = utf8_sequence_at(bytes, i, cp, bad);
    if (n == 0) return false;
  }
  return true;
}

std::string utf8_or_escaped(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  char32_t cp = 0;
  size_t bad = 0;
  for (size_t i = 0; i < bytes.size();) {
    const size_t n = utf8_sequence_at(bytes, i, cp, bad);
    if (n > 0) {
      out.append(bytes.data() + i, n);
      i += n;
    } else {
      const auto c = static_cast<unsigned char>(bytes[i++]);  // one byte at a time: each is kept
      out += "\\x";
      out += "0123456789abcdef"[c >> 4];
      out += "0123456789abcdef"[c & 15];
    }
  }
  return out;
}

std::string utf8_excerpt(std::string_view bytes, size_t max_chars) {
  char32_t cp = 0;
  size_t bad = 0, i = 0;
  for (size_t chars = 0; i < bytes.size() && chars < max_chars; ++chars) {
    const size_t n = utf8_sequence_at(bytes, i, cp, bad);
    i += n > 0 ? n : 1;
  }
  return utf8_or_escaped(bytes.substr(0, i)) + (i < bytes.size() ? "..." : "");
}

}  // namespace clip
