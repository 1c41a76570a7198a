#pragma once
// The data of ftfy's mojibake repair, generated from ftfy itself (scripts/gen_ftfy_tables.py). Internal.
#include <cstddef>
#include <cstdint>

namespace clip::ftfy {

/// One of ftfy's CHARMAP_ENCODINGS: what bytes 0x80..0xFF decode to, and what byte 0x1A decodes to (U+FFFD for the
/// "sloppy" codecs, which encode U+FFFD as 0x1A; U+001A otherwise). Order is ftfy's: the first that can encode a
/// text and gives valid UTF-8 wins.
struct Charmap {
  const char* name;
  char32_t byte_1a;
  char32_t high[128];
};
extern const Charmap kCharmaps[10];

/// ftfy's character categories (badness.MOJIBAKE_CATEGORIES, then chardata.UTF8_CLUES), one bit each.
enum Category : uint32_t {
  kCommon = 1u << 0, kC1 = 1u << 1, kBad = 1u << 2, kLaw = 1u << 3, kCurrency = 1u << 4,
  kStartPunctuation = 1u << 5, kEndPunctuation = 1u << 6, kNumeric = 1u << 7, kKaomoji = 1u << 8,
  kUpperAccented = 1u << 9, kLowerAccented = 1u << 10, kUpperCommon = 1u << 11, kLowerCommon = 1u << 12,
  kBox = 1u << 13, kUtf8FirstOf2 = 1u << 14, kUtf8FirstOf3 = 1u << 15, kUtf8FirstOf4 = 1u << 16,
  kUtf8Continuation = 1u << 17, kUtf8ContinuationStrict = 1u << 18,
};

/// Code points with the same non-empty set of categories, sorted, disjoint.
struct CategoryRange {
  char32_t first, last;
  uint32_t mask;
};
extern const CategoryRange kCategoryRanges[];
extern const size_t kCategoryRangeCount;

}  // namespace clip::ftfy
