#pragma once
// Character tables taken from Python (html, html.entities, unicodedata) and ftfy, generated into text_tables.cpp
// by scripts/gen_text_tables.py so that the CLIP BPE's cleaning uses exactly the data the reference uses.
#include <cstddef>

namespace clip::text_tables {

struct NamedEntity {
  const char* name;       ///< without the leading '&'; with the trailing ';' where the table has it
  const char32_t* value;  ///< one or two code points
};

struct CodepointMap {
  char32_t from;
  char32_t to;
};

struct WidthEntry {
  char32_t from;
  const char32_t* to;
};

extern const NamedEntity kHtml5[];  ///< html.entities.html5, sorted bytewise by name
extern const size_t kHtml5Count;
extern const NamedEntity kFtfyUpper[];  ///< ftfy's all-caps entity names, sorted
extern const size_t kFtfyUpperCount;
extern const CodepointMap kInvalidCharrefs[];  ///< html._invalid_charrefs, sorted
extern const size_t kInvalidCharrefsCount;
extern const char32_t kInvalidCodepoints[];  ///< html._invalid_codepoints, sorted
extern const size_t kInvalidCodepointsCount;
extern const WidthEntry kWidthMap[];  ///< ftfy's width map, sorted
extern const size_t kWidthMapCount;
extern const char32_t kC1AsWindows1252[32];  ///< U+0080..U+009F as windows-1252 reads them
extern const char32_t kPythonSpace[];        ///< str.isspace(), sorted
extern const size_t kPythonSpaceCount;

}  // namespace clip::text_tables
