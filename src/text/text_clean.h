#pragma once
// The CLIP BPE's text cleaning, as the reference's `whitespace_clean(basic_clean(text)).lower()`:
//   basic_clean:      ftfy.fix_text, html.unescape twice, str.strip()
//   whitespace_clean: regex.sub(r"\s+", " "), str.strip()
//   .lower():         Python's full Unicode lowercase
#include <string>
#include <string_view>

#include "clip/text/sentencepiece.h"

namespace clip::text {

/// Python's html.unescape: numeric references (with html._invalid_charrefs and _invalid_codepoints) and the
/// HTML5 named references, including the legacy names without ';' and their longest-prefix rule.
void html_unescape(std::u32string_view in, std::u32string& out);

/// ftfy.fix_text with its default settings (ftfy 6.3.1), per segment (line, at most 10^6 characters) and
/// repeated until nothing changes as ftfy does: unescape_html (ftfy's own, off from the first segment holding '<'),
/// fix_encoding (mojibake: src/text/ftfy.h), fix_c1_controls, fix_latin_ligatures, fix_character_width,
/// uncurl_quotes, fix_line_breaks, remove_terminal_escapes, remove_control_chars, NFC (fix_surrogates has nothing
/// to do in text decoded from valid UTF-8).
void ftfy_fix_text(std::u32string& text);

/// The whole cleaning; UTF-8 in, lowercased UTF-8 out. Throws clip::Error on invalid UTF-8.
void clean_text(std::string_view utf8, bool fix_text, std::string& out);
/// The cleanings of the Python tokenizers that wrap SentencePiece models (clip::TextClean, clip/text/sentencepiece.h);
/// UTF-8 in and out. Throws clip::Error on invalid UTF-8.
void hf_clean_text(std::string_view utf8, TextClean clean, std::string& out);
/// SiglipTokenizer's canonicalize_text (do_lower_case), applied to each part of a text between special tokens
/// (SentencePieceTokenizer::encode does the rest). Throws clip::Error on invalid UTF-8.
void siglip_canonicalize(std::string_view utf8, std::string& out);

}  // namespace clip::text
