#pragma once
// How the reference tokenizer's split pattern (the `regex` module), Python's `re` (\w, \d, for ftfy) and its
// unicodedata classify code points, generated from the reference environment (scripts/gen_split_tables.py).
// Internal; read by src/text/unicode.cpp.
#include <cstddef>
#include <cstdint>

namespace clip::text::split_tables {

enum : uint8_t {
  kLetter = 1,  ///< taken by [\p{L}]+
  kNumber = 2,  ///< taken by [\p{N}]
  kSkip = 4,    ///< taken by no alternative (\s, U+0345)
  kWord = 8,         ///< Python re's \w: str.isalnum() or '_'
  kDecimal = 16,     ///< Python re's \d: str.isdecimal()
  kUnassigned = 32,  ///< unassigned in the reference interpreter's unicodedata (category Cn)
};

/// Code points with the same non-zero mask, sorted, disjoint; every other code point is [^\s\p{L}\p{N}] and not \w.
struct SplitRange {
  char32_t first, last;
  uint8_t mask;
};
extern const SplitRange kRanges[];
extern const size_t kRangeCount;

}  // namespace clip::text::split_tables
