#pragma once
// The CLIP BPE's text cleaning, as the reference's `whitespace_clean(basic_clean(text)).lower()`:
//   basic_clean:      ftfy.fix_text (here: the ftfy subset), html.unescape twice, str.strip()
//   whitespace_clean: regex.sub(r"\s+", " "), str.strip()
//   .lower():         Python's full Unicode lowercase
#include <string>
#include <string_view>

namespace clip::text {

/// Python's html.unescape: numeric references (with html._invalid_charrefs and _invalid_codepoints) and the
/// HTML5 named references, including the legacy names without ';' and their longest-prefix rule.
void html_unescape(std::u32string_view in, std::u32string& out);

/// The part of ftfy.fix_text (6.x defaults) that needs no mojibake heuristics, per line and repeated until
/// nothing changes as ftfy does: unescape_html (ftfy's own, off from the first line holding '<'),
/// fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes, remove_terminal_escapes,
/// remove_control_chars, NFC. Not applied: fix_encoding (mojibake), fix_line_breaks and fix_surrogates (no
/// effect on tokens of valid UTF-8).
void ftfy_subset(std::u32string& text);

/// The whole cleaning; UTF-8 in, lowercased UTF-8 out. Throws clip::Error on invalid UTF-8.
void clean_text(std::string_view utf8, bool fix_text, std::string& out);

}  // namespace clip::text
