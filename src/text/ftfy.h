#pragma once
// ftfy 6.3.1's fix_encoding (mojibake repair) in C++: the badness heuristic, the ten single-byte codecs, the
// byte-level repairs (restore_byte_a0, replace_lossy_sequences), UTF-8 and its variants (CESU-8, Java's null),
// decode_inconsistent_utf8, and the latin-1 -> windows-1252 and C1 fallbacks, in ftfy's order. Internal; used by
// the CLIP BPE's cleaning (text_clean.cpp).
#include <string>

namespace clip::ftfy {

/// ftfy.badness.is_bad: whether `text` holds a character sequence that looks like mojibake.
bool is_bad(const std::u32string& text);

/// ftfy.fix_encoding with the default settings: one-step repairs repeated until the text stops changing.
std::u32string fix_encoding(std::u32string text);

}  // namespace clip::ftfy
