#include "text/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <cstdio>

#include "clip/util/error.h"
#include "text/text_tables.h"

namespace clip::text {
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

// Length of the well-formed sequence at `i` (0 when ill-formed), and the number of bytes of its maximal
// ill-formed prefix otherwise (at least 1).
size_t sequence_at(std::string_view s, size_t i, char32_t& cp, size_t& bad) {
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

const UNormalizer2* nfc_instance() {
  static const UNormalizer2* instance = [] {
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2* n = unorm2_getNFCInstance(&status);
    if (U_FAILURE(status)) fail("ICU: cannot load the NFC normalizer (", u_errorName(status), ")");
    return n;
  }();
  return instance;
}

void to_utf16(std::u32string_view in, std::u16string& out) {
  out.clear();
  out.reserve(in.size() + 8);
  for (char32_t c : in) {
    if (c < 0x10000) {
      out.push_back(static_cast<char16_t>(c));
    } else {
      c -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (c >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (c & 0x3FF)));
    }
  }
}

void from_utf16(std::u16string_view in, std::u32string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char32_t c = in[i];
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < in.size() && in[i + 1] >= 0xDC00 && in[i + 1] < 0xE000) {
      c = 0x10000 + ((c - 0xD800) << 10) + (in[i + 1] - 0xDC00);
      ++i;
    }
    out.push_back(c);
  }
}

}  // namespace

void utf8_to_utf32(std::string_view in, std::u32string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    char32_t cp = 0;
    size_t bad = 0;
    const size_t n = sequence_at(in, i, cp, bad);
    if (n == 0) {
      char byte[8];
      std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned>(static_cast<uint8_t>(in[i])));
      const bool truncated = lead_info(static_cast<uint8_t>(in[i])).length > 0 && i + bad >= in.size();
      fail("invalid UTF-8 at byte ", i, " (", byte, truncated ? ", a truncated sequence" : "", ")");
    }
    out.push_back(cp);
    i += n;
  }
}

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void utf32_to_utf8(std::u32string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (char32_t c : in) append_utf8(c, out);
}

std::string utf8_decode_replace(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    char32_t cp = 0;
    size_t bad = 0;
    const size_t n = sequence_at(bytes, i, cp, bad);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal ill-formed prefix, as CPython
      i += bad;
    } else {
      out.append(bytes.data() + i, n);
      i += n;
    }
  }
  return out;
}

void nfc(std::u32string& text) {
  // Below U+0300 there are no combining marks and no singleton decompositions: already NFC.
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x300; })) return;
  thread_local std::u16string in, out;
  to_utf16(text, in);
  const UNormalizer2* n = nfc_instance();
  UErrorCode status = U_ZERO_ERROR;
  if (unorm2_isNormalized(n, in.data(), static_cast<int32_t>(in.size()), &status) && U_SUCCESS(status)) return;
  status = U_ZERO_ERROR;
  out.resize(in.size() * 3 + 16);
  int32_t length = unorm2_normalize(n, in.data(), static_cast<int32_t>(in.size()), out.data(),
                                    static_cast<int32_t>(out.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    status = U_ZERO_ERROR;
    out.resize(static_cast<size_t>(length));
    length = unorm2_normalize(n, in.data(), static_cast<int32_t>(in.size()), out.data(),
                              static_cast<int32_t>(out.size()), &status);
  }
  if (U_FAILURE(status)) fail("ICU: NFC normalization failed (", u_errorName(status), ")");
  from_utf16(std::u16string_view(out.data(), static_cast<size_t>(length)), text);
}

void lower_to_utf8(std::u32string_view text, std::string& out) {
  out.clear();
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; })) {
    out.reserve(text.size());
    for (char32_t c : text) out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  thread_local std::u16string in, lowered;
  thread_local std::u32string result;
  to_utf16(text, in);
  lowered.resize(in.size() * 2 + 16);  // full lowercase grows by at most U+0130 -> "i\u0307"
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = u_strToLower(lowered.data(), static_cast<int32_t>(lowered.size()), in.data(),
                                static_cast<int32_t>(in.size()), "", &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    status = U_ZERO_ERROR;
    lowered.resize(static_cast<size_t>(length));
    length = u_strToLower(lowered.data(), static_cast<int32_t>(lowered.size()), in.data(),
                          static_cast<int32_t>(in.size()), "", &status);
  }
  if (U_FAILURE(status)) fail("ICU: lowercasing failed (", u_errorName(status), ")");
  from_utf16(std::u16string_view(lowered.data(), static_cast<size_t>(length)), result);
  utf32_to_utf8(result, out);
}

bool is_python_space(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return std::binary_search(text_tables::kPythonSpace, text_tables::kPythonSpace + text_tables::kPythonSpaceCount, cp);
}

CharClass classify(char32_t cp) {
  if (is_regex_space(cp)) return CharClass::skip;
  // U+0345 COMBINING GREEK YPOGEGRAMMENI: under re.IGNORECASE the `regex` module counts it as matching \p{L}
  // when negated (its case variant iota is a letter) but not when positive, so no alternative of the
  // reference's pattern matches it and it is dropped like a space.
  if (cp == 0x345) return CharClass::skip;
  const uint32_t mask = U_GET_GC_MASK(static_cast<UChar32>(cp));
  if (mask & U_GC_L_MASK) return CharClass::letter;
  if (mask & U_GC_N_MASK) return CharClass::number;
  return CharClass::other;
}

bool is_decimal_digit(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return u_charType(static_cast<UChar32>(cp)) == U_DECIMAL_DIGIT_NUMBER;
}

}  // namespace clip::text
