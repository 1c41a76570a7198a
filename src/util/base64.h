#pragma once
// Base64 (RFC 4648, the standard alphabet with '=' padding): bytes to text for data URIs, and text from outside (the
// HTTP server's JSON image fields) back to bytes, strictly. Internal.
#include <optional>
#include <string>
#include <string_view>

namespace clip {

/// `bytes` in base64, padded.
std::string base64_encode(std::string_view bytes);

/// The bytes of `text`: the standard alphabet, padded or not; ASCII whitespace (line breaks of MIME-wrapped text) is
/// skipped. nullopt for any other character, padding anywhere but the end, or a length no encoding has (one
/// leftover character), with `why` (when given) saying which.
std::optional<std::string> base64_decode(std::string_view text, std::string* why = nullptr);

}  // namespace clip
