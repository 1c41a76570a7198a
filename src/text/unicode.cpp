#include "text/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "clip/util/error.h"
#include "clip/util/utf8.h"
#include "text/split_tables.h"
#include "text/text_tables.h"

namespace clip::text {
namespace {

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
    const size_t n = utf8_sequence_at(in, i, cp, bad);
    if (n == 0) {
      char byte[8];
      const auto lead = static_cast<uint8_t>(in[i]);
      std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned>(lead));
      const bool truncated = lead >= 0xC2 && lead <= 0xF4 && i + bad >= in.size();
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
    const size_t n = utf8_sequence_at(bytes, i, cp, bad);
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

namespace {

// The split table's mask of `cp`: a direct array over the BMP, a binary search above it.
uint8_t split_mask(char32_t cp) {
  using split_tables::kRanges;
  const auto search = [](char32_t c) -> uint8_t {
    const auto* end = kRanges + split_tables::kRangeCount;
    const auto* r = std::upper_bound(kRanges, end, c, [](char32_t v, const auto& x) { return v < x.first; });
    return r != kRanges && c <= (r - 1)->last ? (r - 1)->mask : 0;
  };
  static const std::vector<uint8_t> bmp = [&] {
    std::vector<uint8_t> m(0x10000, 0);
    for (size_t i = 0; i < split_tables::kRangeCount && kRanges[i].first < 0x10000; ++i) {
      for (char32_t c = kRanges[i].first; c <= kRanges[i].last && c < 0x10000; ++c) m[c] = kRanges[i].mask;
    }
    return m;
  }();
  return cp < 0x10000 ? bmp[cp] : search(cp);
}


// Whether `text` holds a character the reference interpreter does not know (see split_tables.h).
bool has_unassigned(std::u32string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char32_t c) { return c >= 0x300 && (split_mask(c) & split_tables::kUnassigned); });
}

void nfc_icu(std::u32string& text);
void lower_icu(std::u32string_view text, std::string& out);

}  // namespace

void nfc(std::u32string& text) {
  // Python's unicodedata treats a character it does not know as a starter that composes with nothing (ICU may
  // know it as a combining mark): normalizing the runs between such characters, each alone, is what Python does.
  if (!has_unassigned(text)) return nfc_icu(text);
  std::u32string out, run;
  for (char32_t c : text) {
    if (c >= 0x300 && (split_mask(c) & split_tables::kUnassigned)) {
      nfc_icu(run);
      out += run;
      out.push_back(c);
      run.clear();
    } else {
      run.push_back(c);
    }
  }
  nfc_icu(run);
  out += run;
  text.swap(out);
}

namespace {

void nfc_icu(std::u32string& text) {
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

}  // namespace

void lower_to_utf8(std::u32string_view text, std::string& out) {
  // A character Python does not know is uncased and not case-ignorable: it lowercases to itself, and the Final_Sigma
  // context ends at it, so the runs between such characters are lowercased each alone.
  if (!has_unassigned(text)) return lower_icu(text, out);
  out.clear();
  std::string piece;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && !(text[i] >= 0x300 && (split_mask(text[i]) & split_tables::kUnassigned))) continue;
    lower_icu(text.substr(start, i - start), piece);
    out += piece;
    if (i < text.size()) append_utf8(text[i], out);
    start = i + 1;
  }
}

namespace {

void lower_icu(std::u32string_view text, std::string& out) {
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

}  // namespace

bool is_python_space(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return std::binary_search(text_tables::kPythonSpace, text_tables::kPythonSpace + text_tables::kPythonSpaceCount, cp);
}


// The reference's classes are the `regex` module's, which follows a newer Unicode than the system ICU may
// (U+0558 is a letter to regex 2026.11.19, unassigned to ICU 72), and IGNORECASE adds its own quirk: U+0345
// COMBINING GREEK YPOGEGRAMMENI counts as \p{L} when negated (its case variant iota is a letter) but not when
// positive, so no alternative matches it and it is dropped like a space. Both come with the generated table.
CharClass classify(char32_t cp) {
  const uint8_t m = split_mask(cp);
  if (m & split_tables::kLetter) return CharClass::letter;
  if (m & split_tables::kNumber) return CharClass::number;
  if (m & split_tables::kSkip) return CharClass::skip;
  return CharClass::other;
}

bool is_python_word(char32_t cp) { return (split_mask(cp) & split_tables::kWord) != 0; }

bool is_decimal_digit(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return (split_mask(cp) & split_tables::kDecimal) != 0;
}

}  // namespace clip::text
