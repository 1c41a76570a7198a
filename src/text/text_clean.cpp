#include "text/text_clean.h"

#include <algorithm>

#include "text/ftfy.h"
#include "text/text_tables.h"
#include "text/unicode.h"

namespace clip::text {
namespace {

using text_tables::NamedEntity;

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_ascii_alnum(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Looks an entity name (ASCII) up in a table sorted bytewise by name.
const char32_t* find_entity(const NamedEntity* table, size_t count, std::string_view name) {
  const NamedEntity* end = table + count;
  const NamedEntity* it = std::lower_bound(
      table, end, name, [](const NamedEntity& e, std::string_view n) { return std::string_view(e.name) < n; });
  return it != end && std::string_view(it->name) == name ? it->value : nullptr;
}

// html.unescape's numeric reference: the code point `value` (saturated above U+10FFFF) -> its replacement.
void append_charref(uint64_t value, std::u32string& out) {
  const auto* refs = text_tables::kInvalidCharrefs;
  const auto* refs_end = refs + text_tables::kInvalidCharrefsCount;
  const auto it = std::lower_bound(refs, refs_end, value,
                                   [](const text_tables::CodepointMap& m, uint64_t v) { return m.from < v; });
  if (it != refs_end && it->from == value) {
    out.push_back(it->to);
    return;
  }
  if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
    out.push_back(0xFFFD);
    return;
  }
  const auto cp = static_cast<char32_t>(value);
  if (std::binary_search(text_tables::kInvalidCodepoints,
                         text_tables::kInvalidCodepoints + text_tables::kInvalidCodepointsCount, cp)) {
    return;  // dropped
  }
  out.push_back(cp);
}

// Parses the digits of a numeric reference in [begin, end) with `base`, saturating (Python's int is unbounded).
uint64_t parse_number(const char32_t* begin, const char32_t* end, int base) {
  uint64_t v = 0;
  for (const char32_t* p = begin; p < end; ++p) {
    const char32_t c = *p;
    const uint64_t d = is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
    v = v * base + d;
    if (v > 0x7FFFFFFF) v = 0x7FFFFFFF;  // anything past U+10FFFF gives U+FFFD
  }
  return v;
}

// One ftfy fixer pass over [text.begin(), text.begin() + limit): ftfy.fixes.unescape_html.
// Pattern: &#?[0-9A-Za-z]{1,24}; ; replaced when "&name;" is an HTML5 name with ';' or one of ftfy's all-caps
// names, or a numeric reference that html.unescape decodes with its ';' consumed.
void ftfy_unescape(std::u32string& text, size_t limit) {
  if (text.find(U'&') == std::u32string::npos) return;
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const char32_t c = text[i];
    if (c != U'&' || i >= limit) {
      out.push_back(c);
      ++i;
      continue;
    }
    const size_t start = i + 1 + (i + 1 < text.size() && text[i + 1] == U'#' ? 1 : 0);
    size_t j = start;
    while (j < text.size() && is_ascii_alnum(text[j])) ++j;
    const size_t run = j - start;
    if (run < 1 || run > 24 || j >= text.size() || text[j] != U';') {
      out.push_back(c);
      ++i;
      continue;
    }
    const bool numeric = start == i + 2;
    bool replaced = false;
    if (!numeric) {
      std::string name;
      for (size_t k = start; k <= j; ++k) name.push_back(static_cast<char>(text[k]));
      const char32_t* value = find_entity(text_tables::kHtml5, text_tables::kHtml5Count, name);
      if (value == nullptr) value = find_entity(text_tables::kFtfyUpper, text_tables::kFtfyUpperCount, name);
      if (value != nullptr) {
        out += value;
        replaced = true;
      }
    } else {
      const char32_t* digits = text.data() + start;
      const char32_t* digits_end = text.data() + j;
      const bool hex = *digits == U'x' || *digits == U'X';
      if (hex) ++digits;
      const bool valid = digits < digits_end && std::all_of(digits, digits_end, hex ? is_ascii_hex : is_ascii_digit);
      if (valid) {
        // ftfy keeps the reference when html.unescape's result still holds a ';' (so "&#59;" stays).
        std::u32string decoded;
        append_charref(parse_number(digits, digits_end, hex ? 16 : 10), decoded);
        if (decoded.find(U';') == std::u32string::npos) {
          out += decoded;
          replaced = true;
        }
      }
    }
    if (replaced) {
      i = j + 1;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  text.swap(out);
}

const std::pair<char32_t, const char32_t*> kLigatures[] = {
    // ftfy.chardata.LIGATURES, sorted by code point.
    {0x132, U"IJ"},       {0x133, U"ij"},  {0x149, U"\u02BCn"}, {0x1C4, U"D\u017D"}, {0x1C5, U"D\u017E"},
    {0x1C6, U"d\u017E"},  {0x1C7, U"LJ"},  {0x1C8, U"Lj"},      {0x1C9, U"lj"},      {0x1CA, U"NJ"},
    {0x1CB, U"Nj"},       {0x1CC, U"nj"},  {0x1F1, U"DZ"},      {0x1F2, U"Dz"},      {0x1F3, U"dz"},
    {0xFB00, U"ff"},      {0xFB01, U"fi"}, {0xFB02, U"fl"},     {0xFB03, U"ffi"},    {0xFB04, U"ffl"},
    {0xFB05, U"\u017Ft"}, {0xFB06, U"st"},
};

bool is_ftfy_control(char32_t c) {
  // ftfy.chardata.CONTROL_CHARS: removed by remove_control_chars.
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// The character-level fixers of one ftfy pass, in ftfy's order: fix_c1_controls, fix_latin_ligatures,
// fix_character_width, uncurl_quotes, fix_line_breaks, (fix_surrogates: no surrogates in text decoded from valid
// UTF-8), remove_terminal_escapes, remove_control_chars.
void ftfy_characters(std::u32string& text) {
  std::u32string out;
  out.reserve(text.size() + 8);
  auto emit_quotes = [&out](char32_t c) {
    if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) {
      out.push_back(U'\'');
    } else if (c >= 0x201C && c <= 0x201F) {
      out.push_back(U'"');
    } else {
      out.push_back(c);
    }
  };
  auto emit_width = [&](char32_t c) {
    if (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF)) {
      const auto* end = text_tables::kWidthMap + text_tables::kWidthMapCount;
      const auto* it = std::lower_bound(text_tables::kWidthMap, end, c,
                                        [](const text_tables::WidthEntry& e, char32_t v) { return e.from < v; });
      if (it != end && it->from == c) {
        for (const char32_t* p = it->to; *p != 0; ++p) emit_quotes(*p);
        return;
      }
    }
    emit_quotes(c);
  };
  for (char32_t c : text) {
    if (c >= 0x80 && c <= 0x9F) c = text_tables::kC1AsWindows1252[c - 0x80];
    const auto* lig_end = std::end(kLigatures);
    const auto* lig =
        std::lower_bound(std::begin(kLigatures), lig_end, c, [](const auto& e, char32_t v) { return e.first < v; });
    if (lig != lig_end && lig->first == c) {
      for (const char32_t* p = lig->second; *p != 0; ++p) emit_width(*p);
    } else {
      emit_width(c);
    }
  }
  // fix_line_breaks: "\r\n", "\r", U+2028, U+2029 (and U+0085, which fix_c1_controls has made '…') become "\n".
  size_t kept = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const char32_t c = out[i];
    if (c == U'\r' && i + 1 < out.size() && out[i + 1] == U'\n') continue;
    out[kept++] = c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85 ? U'\n' : c;
  }
  out.resize(kept);
  // remove_terminal_escapes: \x1b\[(\d|;)*[a-zA-Z] (\d: any Nd digit), then remove_control_chars.
  text.clear();
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0x1B && i + 1 < out.size() && out[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < out.size() && (out[j] == U';' || is_decimal_digit(out[j]))) ++j;
      if (j < out.size() && ((out[j] >= U'a' && out[j] <= U'z') || (out[j] >= U'A' && out[j] <= U'Z'))) {
        i = j;
        continue;
      }
    }
    text.push_back(out[i]);
  }
  text.erase(std::remove_if(text.begin(), text.end(), is_ftfy_control), text.end());
}

bool needs_ftfy(const std::u32string& text) {
  for (char32_t c : text) {
    if (c >= 0x7F || c == U'&' || c == U'\r' || is_ftfy_control(c)) return true;
  }
  return false;
}

}  // namespace

void html_unescape(std::u32string_view in, std::u32string& out) {
  out.clear();
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    if (in[i] != U'&') {
      out.push_back(in[i++]);
      continue;
    }
    // &(#[0-9]+;? | #[xX][0-9a-fA-F]+;? | [^\t\n\f <&#;]{1,32};?)
    const size_t n = in.size();
    if (i + 1 < n && in[i + 1] == U'#') {
      const bool decimal = i + 2 < n && is_ascii_digit(in[i + 2]);
      const bool hex = !decimal && i + 3 < n && (in[i + 2] == U'x' || in[i + 2] == U'X') && is_ascii_hex(in[i + 3]);
      if (!decimal && !hex) {
        out.push_back(in[i++]);  // '&#' without digits: no match, and the named form cannot start with '#'
        continue;
      }
      size_t j = i + (decimal ? 2 : 3);
      const size_t digits = j;
      while (j < n && (decimal ? is_ascii_digit(in[j]) : is_ascii_hex(in[j]))) ++j;
      append_charref(parse_number(in.data() + digits, in.data() + j, decimal ? 10 : 16), out);
      i = j + (j < n && in[j] == U';' ? 1 : 0);
      continue;
    }
    size_t j = i + 1;
    auto name_char = [](char32_t c) {
      return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' && c != U'#' && c != U';';
    };
    while (j < n && j - (i + 1) < 32 && name_char(in[j])) ++j;
    if (j == i + 1) {
      out.push_back(in[i++]);
      continue;
    }
    const bool semicolon = j < n && in[j] == U';';
    const size_t end = j + (semicolon ? 1 : 0);  // s = in[i+1, end)
    // Names are ASCII: anything else cannot be in the table.
    std::string s;
    size_t ascii = 0;
    for (size_t k = i + 1; k < end; ++k) {
      if (in[k] >= 0x80) break;
      s.push_back(static_cast<char>(in[k]));
      ++ascii;
    }
    const size_t length = end - (i + 1);
    const char32_t* value = ascii == length ? find_entity(text_tables::kHtml5, text_tables::kHtml5Count, s) : nullptr;
    size_t used = length;
    // Longest prefix of at least 2 characters that is a name (only the legacy names without ';' can match).
    for (size_t x = std::min(length - 1, ascii); value == nullptr && x >= 2; --x) {
      value = find_entity(text_tables::kHtml5, text_tables::kHtml5Count, std::string_view(s.data(), x));
      used = x;
    }
    if (value == nullptr) {
      out.push_back(U'&');
      out.append(in.data() + i + 1, length);
    } else {
      out += value;
      out.append(in.data() + i + 1 + used, length - used);
    }
    i = end;
  }
}

void ftfy_fix_text(std::u32string& text) {
  if (!needs_ftfy(text)) return;
  // ftfy.fix_text works on lines of at most max_decode_length (10^6) characters; unescape_html ("auto") is
  // switched off from the first segment holding '<' on.
  constexpr size_t kMaxDecodeLength = 1000000;
  std::u32string fixed;
  std::u32string segment, before;
  bool unescape = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = text.find(U'\n', pos);
    next = next == std::u32string::npos ? text.size() : next + 1;
    next = std::min(next, pos + kMaxDecodeLength);
    segment.assign(text, pos, next - pos);
    if (segment.find(U'<') != std::u32string::npos) unescape = false;
    // ftfy.fix_and_explain repeats all its fixes until the segment stops changing (so "&amp;amp;" becomes "&", one
    // level a round). ftfy has no bound; this one (far past any real text) keeps a crafted one at O(1000 n).
    for (int round = 0; round < 1000 && needs_ftfy(segment); ++round) {
      before = segment;
      if (unescape) ftfy_unescape(segment, segment.size());
      segment = ftfy::fix_encoding(std::move(segment));
      ftfy_characters(segment);
      nfc(segment);
      if (segment == before) break;
    }
    fixed += segment;
    pos = next;
  }
  text.swap(fixed);
}

void clean_text(std::string_view utf8, bool fix_text, std::string& out) {
  thread_local std::u32string text, unescaped;
  utf8_to_utf32(utf8, text);
  if (fix_text) ftfy_fix_text(text);
  // html.unescape(html.unescape(text))
  for (int pass = 0; pass < 2 && text.find(U'&') != std::u32string::npos; ++pass) {
    html_unescape(text, unescaped);
    text.swap(unescaped);
  }
  // str.strip() (str.isspace), then regex.sub(r"\s+", " ") (White_Space), then str.strip() again (a no-op: the
  // ends are no longer spaces of either kind).
  size_t begin = 0, end = text.size();
  while (begin < end && is_python_space(text[begin])) ++begin;
  while (end > begin && is_python_space(text[end - 1])) --end;
  unescaped.clear();
  for (size_t i = begin; i < end; ++i) {
    if (is_regex_space(text[i])) {
      if (!is_regex_space(text[i - 1])) unescaped.push_back(U' ');  // i > begin: text[begin] is no space
    } else {
      unescaped.push_back(text[i]);
    }
  }
  lower_to_utf8(unescaped, out);
}

namespace {

// Python's string.punctuation.
bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// " ".join(text.split()): runs of str.isspace() characters become one space; none at either end.
void join_split(std::u32string_view in, std::u32string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (!is_python_space(in[i])) {
      if (!out.empty() && i > 0 && is_python_space(in[i - 1])) out.push_back(U' ');
      out.push_back(in[i]);
    }
  }
}

}  // namespace

void hf_clean_text(std::string_view utf8, TextClean clean, std::string& out) {
  thread_local std::u32string text, other;
  utf8_to_utf32(utf8, text);
  switch (clean) {
    case TextClean::none:
      out.assign(utf8);
      return;
    case TextClean::whitespace:
    case TextClean::lower:
    case TextClean::canonicalize: {
      // open_clip's basic_clean: ftfy.fix_text, html.unescape twice (str.strip() follows: join_split strips).
      ftfy_fix_text(text);
      for (int pass = 0; pass < 2 && text.find(U'&') != std::u32string::npos; ++pass) {
        html_unescape(text, other);
        text.swap(other);
      }
      if (clean == TextClean::canonicalize) {
        // canonicalize_text: '_' -> ' ', punctuation removed, lower(), " ".join(split()), strip().
        other.clear();
        for (const char32_t c : text) {
          if (c == U'_') other.push_back(U' ');
          else if (!is_ascii_punctuation(c)) other.push_back(c);
        }
        std::string lowered;
        lower_to_utf8(other, lowered);
        utf8_to_utf32(lowered, other);
        join_split(other, text);
        utf32_to_utf8(text, out);
        return;
      }
      join_split(text, other);
      if (clean == TextClean::lower) {
        lower_to_utf8(other, out);
      } else {
        utf32_to_utf8(other, out);
      }
      return;
    }
  }
}

void siglip_canonicalize(std::string_view utf8, std::string& out) {
  thread_local std::u32string text, other;
  utf8_to_utf32(utf8, text);
  // SiglipTokenizer._tokenize's canonicalize_text (do_lower_case): lower(), punctuation removed,
  // re.sub(r"\s+", " ") (re's \s is str.isspace()), strip(). The U+2581 the tokenizer puts first is neither.
  std::string lowered;
  lower_to_utf8(text, lowered);
  utf8_to_utf32(lowered, other);
  text.clear();
  for (const char32_t c : other) {
    if (is_ascii_punctuation(c)) continue;
    if (is_python_space(c)) {
      if (text.empty() || text.back() != U' ') text.push_back(U' ');
    } else {
      text.push_back(c);
    }
  }
  if (!text.empty() && text.front() == U' ') text.erase(0, 1);
  if (!text.empty() && text.back() == U' ') text.pop_back();
  utf32_to_utf8(text, out);
}

}  // namespace clip::text
