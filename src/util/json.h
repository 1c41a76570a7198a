#pragma once
// JSON in and out of libclip, the one way: parse_json for text that came from outside (config files, safetensors
// headers, checkpoint metadata, JSONL on stdin), dump_json for values that may hold names from outside (file
// names, captions). Internal (nlohmann stays out of the public headers).
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "clip/util/utf8.h"

namespace clip {

/// Deepest nesting of arrays and objects accepted: far beyond any config, header or metadata libclip reads, and
/// far below what would exhaust a thread's stack in nlohmann's recursive code.
constexpr int kMaxJsonDepth = 512;

/// Parses `text`; `source` names it in errors. Nesting deeper than `max_depth` is refused before the parser sees
/// it. Throws clip::Error: "<source>: not valid JSON: <what> (at byte N)" or "<source>: JSON nested deeper than N
/// levels".
nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth = kMaxJsonDepth);

/// The same without throwing: a discarded value (is_discarded()) for text that is not valid JSON or too deep.
nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth = kMaxJsonDepth);

/// j.dump(indent), with every string and key first made valid UTF-8 by utf8_or_escaped (clip/util/utf8.h) (nlohmann's dump throws on
/// invalid UTF-8, which lost finished work at the end of a job).
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace clip
