#pragma once
// Unicode helpers of the tokenizers: strict UTF-8 decoding (errors name the byte offset), Python's lenient decode
// (errors="replace"), ICU for NFC and Python's str.lower(), and the reference's own character classes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace clip::text {

/// Decodes UTF-8 into code points; throws clip::Error "invalid UTF-8 at byte N (0xXX)" on any ill-formed
/// sequence (overlong forms, surrogates, values above U+10FFFF, truncation).
void utf8_to_utf32(std::string_view in, std::u32string& out);

/// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(char32_t cp, std::string& out);
void utf32_to_utf8(std::u32string_view in, std::string& out);

/// Python's bytes.decode("utf-8", errors="replace"): each maximal ill-formed subsequence becomes one U+FFFD.
std::string utf8_decode_replace(std::string_view bytes);

/// Unicode NFC as the reference interpreter's unicodedata does it (ICU, except that characters the interpreter
/// does not know are left alone, as it does), in place.
void nfc(std::u32string& text);

/// Python's str.lower(): full Unicode lowercase with the unconditional SpecialCasing rules and the Final_Sigma
/// context (ICU, root locale; characters the reference interpreter does not know stay as they are), as UTF-8.
void lower_to_utf8(std::u32string_view text, std::string& out);

/// Python's str.isspace(): what str.strip() removes (includes U+001C..U+001F).
bool is_python_space(char32_t cp);
/// The `regex` module's \s (Unicode White_Space): what the reference's whitespace_clean collapses and what its
/// split pattern never matches. str.isspace() minus U+001C..U+001F.
inline bool is_regex_space(char32_t cp) { return is_python_space(cp) && !(cp >= 0x1C && cp <= 0x1F); }

/// The classes of the reference's split pattern.
enum class CharClass : uint8_t {
  letter,  ///< \p{L}
  number,  ///< \p{N}
  skip,    ///< matched by no alternative: \s, and U+0345 (see classify)
  other,   ///< [^\s\p{L}\p{N}]
};
/// Class of a code point as the reference's `regex` pattern sees it (a table generated from the reference
/// environment: src/text/split_tables.h).
CharClass classify(char32_t cp);

/// Python re's \w for str patterns (str.isalnum() or '_'), as ftfy's heuristic sees it.
bool is_python_word(char32_t cp);

/// Python re's \d (str.isdecimal()) for one code point, in the reference interpreter's Unicode.
bool is_decimal_digit(char32_t cp);

}  // namespace clip::text
