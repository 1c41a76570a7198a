#pragma once
/// Text that must be UTF-8 (JSON outputs, messages) made from bytes that may not be (file names, captions).
///
///   clip::utf8_or_escaped("caf\xe9.jpg")   // "caf\\xe9.jpg": the byte kept, readable, in valid UTF-8
#include <cstddef>
#include <string>
#include <string_view>

namespace clip {

/// The UTF-8 sequence at bytes[i]: its length (1-4) when well-formed, with its code point in `cp`; 0 when not,
/// with the length of its maximal ill-formed prefix (at least 1, as Python's decoder counts it) in `bad`.
size_t utf8_sequence_at(std::string_view bytes, size_t i, char32_t& cp, size_t& bad);

/// Whether `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

/// `bytes` as valid UTF-8: each byte that is not part of a well-formed sequence becomes the four characters `\xNN`
/// (two lower-case hex digits). Valid UTF-8 comes back unchanged. docs/reliability.md: how to get the bytes back.
std::string utf8_or_escaped(std::string_view bytes);

/// The start of `bytes` for a message: utf8_or_escaped, cut after `max_chars` characters (never inside one) with
/// "..." appended when something was left out. A 100,000-character caption in an error stays one short line.
std::string utf8_excerpt(std::string_view bytes, size_t max_chars = 60);

}  // namespace clip
