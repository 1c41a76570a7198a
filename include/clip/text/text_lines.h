#pragma once
/// Texts one a line, as the tools read them: raw lines, or JSON Lines objects with a "text" string.
///
///   std::string t = clip::text_from_json_line(R"({"text": "a dog"})", "captions.jsonl:3");   // "a dog"
#include <string>

namespace clip {

/// The "text" field of one JSON Lines record. Throws clip::Error starting with `where` (file and line) when the
/// line is not a JSON object with a "text" string (nesting and length bounded: hostile input is refused, never a
/// crash).
std::string text_from_json_line(const std::string& line, const std::string& where);

}  // namespace clip
