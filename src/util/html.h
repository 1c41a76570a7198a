#pragma once
// Pieces of the self-contained HTML pages libclip writes (the training report, search results): text escaped for
// HTML, and bytes as a data URI. Internal.
#include <string>

namespace clip {

/// `s` with <, >, & and " escaped, for text and attribute values.
std::string html_escape(const std::string& s);

/// "data:<mime>;base64,<bytes in base64>".
std::string data_uri(const std::string& mime, const std::string& bytes);

}  // namespace clip
