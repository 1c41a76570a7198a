#include "util/json.h"

#include <algorithm>

#include "clip/util/error.h"
#include "clip/util/utf8.h"

namespace clip {
namespace {

// The depth of the deepest nesting in `text` (brackets inside strings do not count), stopping once past `limit`.
int nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

void make_valid(nlohmann::json& j) {
  if (j.is_string()) {
    std::string& s = j.get_ref<std::string&>();
    s = utf8_or_escaped(s);
  } else if (j.is_array()) {
    for (nlohmann::json& item : j) make_valid(item);
  } else if (j.is_object()) {
    nlohmann::json fixed = nlohmann::json::object();
    for (auto& [key, value] : j.items()) {
      make_valid(value);
      fixed[utf8_or_escaped(key)] = std::move(value);
    }
    j = std::move(fixed);
  }
}

bool valid_utf8_everywhere(const nlohmann::json& j) {
  if (j.is_string()) return is_valid_utf8(j.get_ref<const std::string&>());
  if (j.is_array()) {
    for (const nlohmann::json& item : j) {
      if (!valid_utf8_everywhere(item)) return false;
    }
  } else if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      if (!is_valid_utf8(key) || !valid_utf8_everywhere(value)) return false;
    }
  }
  return true;
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth) {
  if (nesting_depth(text, max_depth) > max_depth) {
    fail(source, ": JSON nested deeper than ", max_depth, " levels; not a file libclip writes or reads");
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's messages are "[json.exception.parse_error.101] parse error at line 1, column 5: ..." and
    // "[json.exception.out_of_range.406] number overflow parsing '1e999'"; keep what follows the bracket and the
    // words "parse error".
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) what = what.substr(bracket + 2);
    if (what.rfind("parse error ", 0) == 0) what = what.substr(12);
    if (what.size() > 200) what = what.substr(0, 200) + "...";
    fail(source, ": not valid JSON: ", what);
  }
}

nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth) {
  if (nesting_depth(text, max_depth) > max_depth) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

std::string dump_json(const nlohmann::json& j, int indent) {
  if (valid_utf8_everywhere(j)) return j.dump(indent);
  nlohmann::json copy = j;
  make_valid(copy);
  return copy.dump(indent);
}

}  // namespace clip
