// A port of ftfy 6.3.1's fix_encoding (ftfy/__init__.py, fixes.py, chardata.py, badness.py, bad_codecs/), tested
// against ftfy itself (docs/tokenizer.md).
#include "text/ftfy.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text/ftfy_tables.h"
#include "text/text_tables.h"
#include "text/unicode.h"

namespace clip::ftfy {
namespace {

// The categories of `c`: a direct table over the BMP (every category is in it), built once.
uint32_t cats(char32_t c) {
  static const std::vector<uint32_t> bmp = [] {
    std::vector<uint32_t> t(0x10000, 0);
    for (size_t i = 0; i < kCategoryRangeCount; ++i) {
      for (char32_t x = kCategoryRanges[i].first; x <= kCategoryRanges[i].last && x < 0x10000; ++x) {
        t[x] = kCategoryRanges[i].mask;
      }
    }
    return t;
  }();
  return c < 0x10000 ? bmp[c] : 0;
}

bool in(char32_t c, std::u32string_view set) { return set.find(c) != std::u32string_view::npos; }
bool ascii_lower(char32_t c) { return c >= U'a' && c <= U'z'; }
bool ascii_alpha(char32_t c) { return ascii_lower(c) || (c >= U'A' && c <= U'Z'); }
// Python re's \w for str: str.isalnum() or '_'.
bool word(char32_t c) { return text::is_python_word(c); }

constexpr uint32_t kLA = kLowerAccented, kUA = kUpperAccented, kSP = kStartPunctuation, kEP = kEndPunctuation,
                   kCur = kCurrency, kNum = kNumeric;

// One position of BADNESS_RE (badness.py), alternative by alternative.
bool bad_at(const std::u32string& t, size_t i) {
  const size_t n = t.size();
  const auto at = [&](size_t k) -> char32_t { return i + k < n ? t[i + k] : char32_t(0xFFFFFFFF); };
  const auto has = [&](size_t k) { return i + k < n; };
  const auto m = [&](size_t k) -> uint32_t { return has(k) ? cats(t[i + k]) : 0; };
  const char32_t c0 = t[i];
  const uint32_t m0 = cats(c0);
  // A non-ASCII character in no category starts an alternative only if it is one of these (or a space).
  if (c0 >= 0x80 && m0 == 0 && !in(c0, U"ŒœÂÃÎÐ×ØÙà√≈‚вВГРСβΒΓΞΟā") && !text::is_python_space(c0)) return false;
  const uint32_t m1 = m(1), m2 = m(2);
  if (m0 & kC1) return true;
  if ((m0 & (kBad | kLA | kUA | kBox | kSP | kEP | kCur | kNum | kLaw)) && (m1 & kBad)) return true;
  if (ascii_alpha(c0) && (m1 & (kLowerCommon | kUpperCommon)) && (m2 & kBad)) return true;
  if ((m0 & kBad) && (m1 & (kLA | kUA | kBox | kSP | kEP | kCur | kNum | kLaw))) return true;
  if ((m0 & (kLA | kLowerCommon | kBox | kEP | kCur | kNum)) && (m1 & kUA)) return true;
  if ((m0 & (kBox | kEP | kCur | kNum)) && (m1 & kLA)) return true;
  if ((m0 & (kLA | kBox | kEP)) && (m1 & kCur)) return true;
  if ((m1 & kUA) && (m2 & kCur) && text::is_python_space(c0)) return true;
  if ((m0 & (kUA | kBox)) && (m1 & (kNum | kLaw))) return true;
  if ((m0 & (kLA | kUA | kBox | kCur | kEP)) && (m1 & kSP) && (m2 & kNum)) return true;
  if ((m0 & (kLA | kUA | kCur | kNum | kBox | kLaw)) && (m1 & kEP) && (m2 & kSP)) return true;
  if ((m0 & (kCur | kNum | kBox)) && (m1 & kSP)) return true;
  if (ascii_lower(c0) && (m1 & kUA) && (m2 & (kSP | kCur))) return true;
  if ((m0 & kBox) && (m1 & kKaomoji)) return true;
  if ((m0 & (kLA | kUA | kCur | kNum | kSP | kEP | kLaw)) && (m1 & kBox)) return true;
  if ((m0 & kBox) && (m1 & kEP)) return true;
  if ((m0 & (kLA | kUA)) && (m1 & (kSP | kEP)) && has(2) && word(at(2))) return true;
  if ((c0 == U'Œ' || c0 == U'œ') && has(1) && !ascii_alpha(at(1))) return true;
  if ((m0 & kUA) && at(1) == U'°') return true;
  if (in(c0, U"ÂÃÎÐ") && has(1) &&
      (in(at(1), U"€œŠš¢£Ÿž\u00a0\u00ad®©°·»–—´") || (m1 & (kSP | kEP)))) {
    return true;
  }
  if (c0 == U'×' && has(1) && in(at(1), U"²³")) return true;
  const auto arabic = [&](size_t k) {
    return has(k) && ((cats(at(k)) & (kCommon | kCur | kBad | kNum | kSP)) || in(at(k), U"ŸŠ®°µ»"));
  };
  if (in(c0, U"ØÙ") && arabic(1) && has(2) && in(at(2), U"ØÙ") && arabic(3)) return true;
  if (c0 == U'à' && has(1) && in(at(1), U"²µ¹¼½¾")) return true;
  if (c0 == U'√' && has(1) && in(at(1), U"±∂†≠®™´≤≥¥µø")) return true;
  if (c0 == U'≈' && has(1) && in(at(1), U"°¢")) return true;
  if (c0 == U'‚' && at(1) == U'Ä' && has(2) && in(at(2), U"ìîïòôúùû†°¢π")) return true;
  if (c0 == U'‚' && has(2) && in(at(1), U"âó") && in(at(2), U"àä°ê")) return true;
  if (c0 == U'в' && at(1) == U'Ђ') return true;
  const auto cyr = [&](size_t k) {
    return has(k) && ((cats(at(k)) & (kC1 | kBad | kSP | kEP | kCur)) || in(at(k), U"°µ"));
  };
  if (in(c0, U"ВГРС") && cyr(1) && has(2) && in(at(2), U"ВГРС")) return true;
  if (c0 == U'Г' && at(1) == U'ў' && at(2) == U'В' && at(3) == U'Ђ' && at(4) == U'В' && has(6) && at(5) != U'\n' &&
      (ascii_alpha(at(6)) || at(6) == U' ')) {
    return true;
  }
  if (c0 == U'Ã' && has(1) && in(at(1), U"\u00a0¡")) return true;
  if (ascii_lower(c0)) {
    if (has(2) && in(at(1), U"ÃÂ") && at(2) == U' ') return true;
    if (has(3) && in(at(2), U"ÃÂ") && at(3) == U' ' && text::is_python_space(at(1))) return true;
  }
  if (i == 0 && in(c0, U"ÃÂ") && at(1) == U' ') return true;
  if ((ascii_lower(c0) || in(c0, U".,?!") || (m0 & kEP)) && at(1) == U'Â' && has(2) &&
      (at(2) == U' ' || (m2 & (kSP | kEP)))) {
    return true;
  }
  if (c0 == U'β' && at(1) == U'€' && has(2) && in(at(2), U"™\u00a0Ά\u00ad®°")) return true;
  const auto greek = [&](size_t k) {
    return has(k) && ((cats(at(k)) & (kC1 | kBad | kSP | kEP | kCur)) || at(k) == U'°');
  };
  if (in(c0, U"ΒΓΞΟ") && greek(1) && has(2) && in(at(2), U"ΒΓΞΟ")) return true;
  if (c0 == U'ā' && at(1) == U'€') return true;
  return false;
}

}  // namespace

bool is_bad(const std::u32string& text) {
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    // Every alternative that can start at an ASCII character needs a non-ASCII one within the next two (ASCII
    // has none of the categories the alternatives use; the longest ASCII-led one is "x [ÃÂ] ").
    if (text[i] < 0x80 && (i + 1 >= n || text[i + 1] < 0x80) && (i + 2 >= n || text[i + 2] < 0x80)) continue;
    if (bad_at(text, i)) return true;
  }
  return false;
}

namespace {

// --- single-byte codecs (chardata.CHARMAP_ENCODINGS, bad_codecs/sloppy.py) ---

constexpr size_t kLatin1 = 0;  // kCharmaps[0] is latin-1

// A charmap's encoder: every encodable non-ASCII character (and its 0x1A character) with its byte, sorted, and the
// same as a direct table below U+2600 (-1: not encodable), where all but a few of the characters are.
constexpr char32_t kDirect = 0x2600;
struct Encoder {
  std::vector<std::pair<char32_t, uint8_t>> map;
  std::vector<int16_t> direct;
  bool sloppy = false;
  bool macroman = false;
  bool ascii_1a = true;  // byte 0x1A is U+001A (not so in the sloppy codecs, where it is U+FFFD)
};

const std::vector<Encoder>& encoders() {
  static const std::vector<Encoder> all = [] {
    std::vector<Encoder> out(std::size(kCharmaps));
    for (size_t k = 0; k < out.size(); ++k) {
      const Charmap& cm = kCharmaps[k];
      Encoder& e = out[k];
      e.sloppy = std::string_view(cm.name).rfind("sloppy", 0) == 0;
      e.macroman = std::string_view(cm.name) == "macroman";
      for (int b = 0; b < 128; ++b) e.map.emplace_back(cm.high[b], static_cast<uint8_t>(0x80 + b));
      e.ascii_1a = cm.byte_1a == 0x1A;
      if (!e.ascii_1a) e.map.emplace_back(cm.byte_1a, uint8_t{0x1A});
      // scripts/gen_ftfy_tables.py asserts that no two bytes of a charmap decode to the same character.
      std::sort(e.map.begin(), e.map.end());
      e.direct.assign(kDirect, -1);
      for (char32_t c = 0; c < 0x80; ++c) {
        if (c != 0x1A || e.ascii_1a) e.direct[c] = static_cast<int16_t>(c);
      }
      for (const auto& [c, b] : e.map) {
        if (c < kDirect) e.direct[c] = b;
      }
    }
    return out;
  }();
  return all;
}

// chardata.possible_encoding and str.encode together: the bytes of `text` in charmap `k`, or nothing when a
// character is not in it. ASCII except U+001A is itself; U+001A only where the charmap decodes 0x1A to it.
std::optional<std::string> encode(const std::u32string& text, size_t k) {
  const Encoder& e = encoders()[k];
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < kDirect) {
      if (e.direct[c] < 0) return std::nullopt;
      out.push_back(static_cast<char>(e.direct[c]));
      continue;
    }
    const auto it = std::lower_bound(e.map.begin(), e.map.end(), std::make_pair(c, uint8_t{0}));
    if (it == e.map.end() || it->first != c) return std::nullopt;
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

// --- byte-level repairs (fixes.restore_byte_a0, fixes.replace_lossy_sequences) ---

using Bytes = std::string;
uint8_t byte_at(const Bytes& b, size_t i) { return i < b.size() ? static_cast<uint8_t>(b[i]) : 0; }
bool cont(uint8_t c) { return c >= 0x80 && c <= 0xBF; }
// [\x80-\x84\x86-\x9f\xa1-\xbf]: a continuation byte other than 0x85 (…) and 0xA0 (no-break space).
bool cont_not_85_a0(uint8_t c) { return cont(c) && c != 0x85 && c != 0xA0; }

// chardata.ALTERED_UTF8_RE at `i`: the length of the alternative that matches first, or 0.
size_t altered_utf8_at(const Bytes& b, size_t i) {
  const size_t n = b.size();
  const auto at = [&](size_t k) { return byte_at(b, i + k); };
  const uint8_t c = at(0);
  if (i + 2 <= n && (c == 0xC2 || c == 0xC3 || c == 0xC5 || c == 0xCE || c == 0xD0 || c == 0xD9) && at(1) == ' ') {
    return 2;
  }
  if (i + 3 <= n && (c == 0xE2 || c == 0xE3) && at(1) == ' ' && cont_not_85_a0(at(2))) return 3;
  if (i + 3 <= n && c >= 0xE0 && c <= 0xE3 && cont_not_85_a0(at(1)) && at(2) == ' ') return 3;
  if (i + 4 <= n && c == 0xF0) {
    const uint8_t x = at(1), y = at(2), z = at(3);
    if ((x == ' ' && cont(y) && cont(z)) || (cont(x) && y == ' ' && cont(z)) || (cont(x) && cont(y) && z == ' ')) {
      return 4;
    }
  }
  return 0;
}

bool has_altered_utf8(const Bytes& b) {
  for (size_t i = 0; i < b.size(); ++i) {
    if (altered_utf8_at(b, i) != 0) return true;
  }
  return false;
}

bool starts_with_at(const Bytes& b, size_t i, std::string_view s) { return b.compare(i, s.size(), s) == 0; }

// fixes.restore_byte_a0: "\xc3 " not followed by " ", "quele", "quela", "quilo" or "s " gets its 0xA0 back
// (A_GRAVE_WORD_RE: Portuguese "à"), then every ALTERED_UTF8_RE match has its spaces made 0xA0.
Bytes restore_byte_a0(const Bytes& in) {
  Bytes b;
  b.reserve(in.size() + 8);
  for (size_t i = 0; i < in.size(); ++i) {
    b.push_back(in[i]);
    if (byte_at(in, i) == 0xC3 && byte_at(in, i + 1) == ' ' && i + 1 < in.size()) {
      const size_t j = i + 2;
      const bool excluded = starts_with_at(in, j, " ") || starts_with_at(in, j, "quele") ||
                            starts_with_at(in, j, "quela") || starts_with_at(in, j, "quilo") ||
                            starts_with_at(in, j, "s ");
      if (!excluded) {
        b += "\xa0 ";
        ++i;
      }
    }
  }
  for (size_t i = 0; i < b.size();) {
    const size_t len = altered_utf8_at(b, i);
    if (len == 0) {
      ++i;
      continue;
    }
    for (size_t k = i; k < i + len; ++k) {
      if (b[k] == ' ') b[k] = '\xa0';
    }
    i += len;
  }
  return b;
}

// chardata.LOSSY_UTF8_RE at `i`: the length of the alternative that matches first, or 0. 0x1A is what the sloppy
// codecs encode U+FFFD as; '?' is what other encoders put for a character they lost.
size_t lossy_utf8_at(const Bytes& b, size_t i) {
  const size_t n = b.size();
  const auto at = [&](size_t k) { return byte_at(b, i + k); };
  const auto sub = [](uint8_t c) { return c == 0x1A || c == '?'; };     // [\x1a?]
  const auto sub_cont = [](uint8_t c) { return c == 0x1A || cont(c); };  // [\x1a\x80-\xbf]
  const auto any = [&](uint8_t c) { return sub(c) || cont(c); };        // [\x1a?\x80-\xbf]
  const uint8_t c = at(0);
  if (i + 2 <= n && c >= 0xC2 && c <= 0xDF && at(1) == 0x1A) return 2;
  if (i + 2 <= n && (c == 0xC2 || c == 0xC3) && at(1) == '?') return 2;
  if (i + 6 <= n && c == 0xED && at(1) >= 0xA0 && at(1) <= 0xAF && at(3) == 0xED && at(4) >= 0xB0 && at(4) <= 0xBF) {
    if (sub(at(2)) && any(at(5))) return 6;
    if (any(at(2)) && sub(at(5))) return 6;
  }
  if (i + 3 <= n && c >= 0xE0 && c <= 0xEF) {
    if (sub(at(1)) && sub_cont(at(2))) return 3;
    if (sub_cont(at(1)) && sub(at(2))) return 3;
  }
  if (i + 4 <= n && c >= 0xF0 && c <= 0xF4) {
    const uint8_t x = at(1), y = at(2), z = at(3);
    if ((sub(x) && sub_cont(y) && sub_cont(z)) || (sub_cont(x) && sub(y) && sub_cont(z)) ||
        (sub_cont(x) && sub_cont(y) && sub(z))) {
      return 4;
    }
  }
  if (c == 0x1A && i < n) return 1;
  return 0;
}

// fixes.replace_lossy_sequences: each LOSSY_UTF8_RE match becomes the UTF-8 of U+FFFD.
Bytes replace_lossy_sequences(const Bytes& in) {
  Bytes b;
  b.reserve(in.size() + 8);
  for (size_t i = 0; i < in.size();) {
    const size_t len = lossy_utf8_at(in, i);
    if (len == 0) {
      b.push_back(in[i++]);
    } else {
      b += "\xef\xbf\xbd";
      i += len;
    }
  }
  return b;
}

// --- UTF-8 and bad_codecs/utf8_variants.py ---

// One well-formed UTF-8 sequence at `i` as Python's strict decoder accepts it: its length and code point, or 0.
size_t utf8_sequence(const Bytes& b, size_t i, char32_t& cp) {
  const size_t n = b.size();
  const uint8_t c = byte_at(b, i);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  const uint8_t c1 = byte_at(b, i + 1);
  if (c1 < lo || c1 > hi) return 0;
  char32_t v = c & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    const uint8_t ck = byte_at(b, i + k);
    if (!cont(ck)) return 0;
    v = (v << 6) | (ck & 0x3F);
  }
  cp = v;
  return len;
}

// bytes.decode("utf-8") (strict), or with `variants` ftfy's "utf-8-variants": also Java's modified-UTF-8 null
// (C0 80) and CESU-8 surrogate pairs (ED A0-AF 80-BF ED B0-BF 80-BF) decode. The codec's regexes end their
// alternatives with `$`, which also matches before a final newline; the two quirks this gives are kept: a C0
// followed by the final "\n" reads as U+0000, and a CESU-8 pair whose sixth byte is the final "\n" takes its low
// bits from it. Returns false on anything else ill-formed.
bool decode_utf8(const Bytes& b, bool variants, std::u32string& out) {
  out.clear();
  out.reserve(b.size());
  const size_t n = b.size();
  for (size_t i = 0; i < n;) {
    const uint8_t c = byte_at(b, i);
    if (variants && c == 0xC0 && i + 1 < n &&
        (byte_at(b, i + 1) == 0x80 || (i + 2 == n && byte_at(b, i + 1) == '\n'))) {
      out.push_back(0);
      i += 2;
      continue;
    }
    if (variants && c == 0xED && n - i >= 6) {
      const auto at = [&](size_t k) { return byte_at(b, i + k); };
      const bool last_newline = i + 6 == n && at(5) == '\n';
      if (at(1) >= 0xA0 && at(1) <= 0xAF && cont(at(2)) && at(3) == 0xED && at(4) >= 0xB0 && at(4) <= 0xBF &&
          (cont(at(5)) || last_newline)) {
        out.push_back(((at(1) & 0x0F) << 16) + ((at(2) & 0x3F) << 10) + ((at(4) & 0x0F) << 6) + (at(5) & 0x3F) +
                      0x10000);
        i += 6;
        continue;
      }
    }
    char32_t cp;
    const size_t len = utf8_sequence(b, i, cp);
    if (len == 0) return false;
    out.push_back(cp);
    i += len;
  }
  return true;
}

// --- decode_inconsistent_utf8 (chardata.UTF8_DETECTOR_RE, fixes.decode_inconsistent_utf8) ---

// UTF8_DETECTOR_RE at `i`: (?<![strict continuation]) ( [first of 2][cont] | [first of 3][cont]{2} |
// [first of 4][cont]{3} )+ . Returns the end of the match, or `i` when there is none. The + is greedy and
// nothing follows it, so each round takes the first alternative that matches.
size_t detector_match(const std::u32string& t, size_t i) {
  if (i > 0 && (cats(t[i - 1]) & kUtf8ContinuationStrict)) return i;
  const size_t n = t.size();
  const auto continuations = [&](size_t from, size_t count) {
    if (from + count > n) return false;
    for (size_t k = from; k < from + count; ++k) {
      if (!(cats(t[k]) & kUtf8Continuation)) return false;
    }
    return true;
  };
  size_t j = i;
  while (j < n) {
    const uint32_t m = cats(t[j]);
    if ((m & kUtf8FirstOf2) && continuations(j + 1, 1)) {
      j += 2;
    } else if ((m & kUtf8FirstOf3) && continuations(j + 1, 2)) {
      j += 3;
    } else if ((m & kUtf8FirstOf4) && continuations(j + 1, 3)) {
      j += 4;
    } else {
      break;
    }
  }
  return j;
}

bool has_detector_match(const std::u32string& t) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (detector_match(t, i) > i) return true;
  }
  return false;
}

// How deep decode_inconsistent_utf8 may call fix_encoding on a part of the text. ftfy has no bound (each level is
// shorter than the last, and in practice the second level finds nothing to do); the bound keeps the stack small
// on any input, and is never reached by text that is not built to reach it.
constexpr int kMaxDepth = 32;

std::u32string fix_encoding_at(std::u32string text, int depth);

std::u32string decode_inconsistent_utf8(const std::u32string& text, int depth) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t end = detector_match(text, i);
    if (end == i) {
      out.push_back(text[i++]);
      continue;
    }
    std::u32string part = text.substr(i, end - i);
    if (part.size() < text.size() && is_bad(part) && depth < kMaxDepth) part = fix_encoding_at(std::move(part), depth + 1);
    out += part;
    i = end;
  }
  return out;
}

// --- the step and the loop (ftfy/__init__.py) ---

bool is_c1(char32_t c) { return c >= 0x80 && c <= 0x9F; }

// _fix_encoding_one_step_and_explain.
std::u32string one_step(const std::u32string& text, int depth) {
  if (text.empty()) return text;
  if (std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; }) || !is_bad(text)) return text;
  bool latin1_possible = false;
  std::u32string fixed;
  for (size_t k = 0; k < std::size(kCharmaps); ++k) {
    std::optional<Bytes> bytes = encode(text, k);
    if (!bytes) continue;
    if (k == kLatin1) latin1_possible = true;
    const Encoder& e = encoders()[k];
    if (!e.macroman && has_altered_utf8(*bytes)) *bytes = restore_byte_a0(*bytes);
    if (e.sloppy) *bytes = replace_lossy_sequences(*bytes);
    const bool variants = bytes->find('\xed') != Bytes::npos || bytes->find('\xc0') != Bytes::npos;
    if (decode_utf8(*bytes, variants, fixed)) return fixed;
  }
  if (has_detector_match(text)) {
    fixed = decode_inconsistent_utf8(text, depth);
    if (fixed != text) return fixed;
  }
  // Latin-1 meant as windows-1252 ("windows-1252" itself is never among the possible encodings, which are the
  // sloppy one's, so ftfy's "probably legit" branch cannot run): strict windows-1252 fails on its five undefined
  // bytes, which are exactly the C1 characters it maps to themselves.
  const auto as_1252 = [](char32_t c) { return is_c1(c) ? text_tables::kC1AsWindows1252[c - 0x80] : c; };
  if (latin1_possible) {
    const bool defined = std::none_of(text.begin(), text.end(), [&](char32_t c) { return is_c1(c) && as_1252(c) == c; });
    if (defined) {
      fixed = text;
      std::transform(fixed.begin(), fixed.end(), fixed.begin(), as_1252);
      if (fixed != text) return fixed;
    }
  }
  // fix_c1_controls: the C1 characters as sloppy-windows-1252 reads them.
  fixed = text;
  std::transform(fixed.begin(), fixed.end(), fixed.begin(), as_1252);
  return fixed;
}

// fix_encoding_and_explain's loop. ftfy repeats until nothing changes; the bound (never reached by the corpora in
// docs/tokenizer.md) only guarantees an end.
std::u32string fix_encoding_at(std::u32string text, int depth) {
  for (int round = 0; round < 64; ++round) {
    std::u32string next = one_step(text, depth);
    if (next == text) break;
    text.swap(next);
  }
  return text;
}

}  // namespace

std::u32string fix_encoding(std::u32string text) { return fix_encoding_at(std::move(text), 0); }

}  // namespace clip::ftfy
