#include "clip/text/text_lines.h"

#include "clip/util/error.h"
#include "util/json.h"

namespace clip {

std::string text_from_json_line(const std::string& line, const std::string& where) {
  const nlohmann::json j = parse_json(line, where, /*max_depth=*/16);
  if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
    std::string shown = line.substr(0, 80);
    fail(where, ": expected an object with a \"text\" string, like {\"text\": \"a photo of a dog\"}; got ",
         utf8_or_escaped(shown), line.size() > 80 ? "..." : "");
  }
  return j["text"].get<std::string>();
}

}  // namespace clip
