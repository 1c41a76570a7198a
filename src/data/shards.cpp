// Shard names: brace expansion, "::"-joined sources with weights, sizes.json. No libarchive here, so these are in
// every build (the trainer recognizes shard patterns also where reading them is left out).
#include "clip/data/shards.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "clip/util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

constexpr size_t kMaxExpansion = 10'000'000;

std::vector<std::string> split(const std::string& text, const std::string& separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + separator.size();
  }
}

bool is_integer(const std::string& s) {
  size_t i = s.size() > 1 && s[0] == '-' ? 1 : 0;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// "{lo..hi}" as bash expands it: padded to the wider bound when either starts with a zero.
std::optional<std::vector<std::string>> numeric_range(const std::string& body, const std::string& pattern) {
  const size_t dots = body.find("..");
  if (dots == std::string::npos) return std::nullopt;
  const std::string lo = body.substr(0, dots), hi = body.substr(dots + 2);
  if (!is_integer(lo) || !is_integer(hi)) {
    fail(pattern, ": '{", body, "}' is not a range of integers like {00000..00099}");
  }
  const long long a = std::strtoll(lo.c_str(), nullptr, 10), b = std::strtoll(hi.c_str(), nullptr, 10);
  auto leading_zero = [](const std::string& s) { return s.size() > 1 && (s[0] == '0' || (s[0] == '-' && s[1] == '0')); };
  const size_t width = leading_zero(lo) || leading_zero(hi) ? std::max(lo.size(), hi.size()) : 0;
  const long long count = (a <= b ? b - a : a - b) + 1;
  if (static_cast<unsigned long long>(count) > kMaxExpansion) fail(pattern, ": range {", body, "} is too long");
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(count));
  for (long long i = 0; i < count; ++i) {
    const long long v = a <= b ? a + i : a - i;
    std::string digits = std::to_string(v < 0 ? -v : v);
    const size_t sign = v < 0 ? 1 : 0;
    if (digits.size() + sign < width) digits.insert(0, width - sign - digits.size(), '0');
    out.push_back(v < 0 ? "-" + digits : digits);
  }
  return out;
}

// Splits a brace body on its top-level commas.
std::vector<std::string> alternatives(const std::string& body) {
  std::vector<std::string> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '{') ++depth;
    if (body[i] == '}') --depth;
    if (body[i] == ',' && depth == 0) {
      out.push_back(body.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(body.substr(start));
  return out;
}

void expand_into(const std::string& text, const std::string& pattern, std::vector<std::string>& out) {
  const size_t open = text.find('{');
  if (open == std::string::npos) {
    if (text.find('}') != std::string::npos) fail(pattern, ": unbalanced '}'");
    out.push_back(text);
    return;
  }
  if (text.substr(0, open).find('}') != std::string::npos) fail(pattern, ": unbalanced '}'");
  int depth = 0;
  size_t close = std::string::npos;
  for (size_t i = open; i < text.size(); ++i) {
    depth += text[i] == '{' ? 1 : text[i] == '}' ? -1 : 0;
    if (depth == 0) {
      close = i;
      break;
    }
  }
  if (close == std::string::npos) fail(pattern, ": unbalanced '{'");
  const std::string prefix = text.substr(0, open), body = text.substr(open + 1, close - open - 1);
  std::vector<std::string> choices;
  if (std::optional<std::vector<std::string>> range = numeric_range(body, pattern)) {
    choices = std::move(*range);
  } else {
    for (const std::string& alternative : alternatives(body)) expand_into(alternative, pattern, choices);
  }
  std::vector<std::string> rest;
  expand_into(text.substr(close + 1), pattern, rest);
  if (choices.size() * rest.size() + out.size() > kMaxExpansion) fail(pattern, ": expands to too many names");
  for (const std::string& choice : choices) {
    for (const std::string& tail : rest) out.push_back(prefix + choice + tail);
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The "{00000..}" group of an output pattern: where it is, its first number, width and optional bound.
struct NumberGroup {
  size_t begin = 0, end = 0;
  int64_t first = 0, last = -1;
  size_t width = 0;
};

NumberGroup number_group(const std::string& pattern) {
  std::optional<NumberGroup> found;
  for (size_t open = pattern.find('{'); open != std::string::npos; open = pattern.find('{', open + 1)) {
    const size_t close = pattern.find('}', open);
    if (close == std::string::npos) break;
    const std::string body = pattern.substr(open + 1, close - open - 1);
    const size_t dots = body.find("..");
    const std::string lo = body.substr(0, dots), hi = dots == std::string::npos ? "" : body.substr(dots + 2);
    const auto digits = [](const std::string& s) {
      return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
    };
    if (dots == std::string::npos || !digits(lo) || !(hi.empty() || digits(hi))) {
      fail("output pattern '", pattern, "': '{", body, "}' is not a shard number like {00000..}");
    }
    if (found) fail("output pattern '", pattern, "': more than one {00000..} group");
    NumberGroup g;
    g.begin = open;
    g.end = close + 1;
    g.first = std::stoll(lo);
    g.last = hi.empty() ? -1 : std::stoll(hi);
    g.width = lo.size();
    found = g;
  }
  if (!found) fail("output pattern '", pattern, "': no shard number; write it as DIR/{00000..}.tar");
  return *found;
}

}  // namespace

std::string shard_path(const std::string& pattern, int64_t index) {
  const NumberGroup g = number_group(pattern);
  const int64_t number = g.first + index;
  if (g.last >= 0 && number > g.last) {
    fail("output pattern '", pattern, "': shard ", number, " is past its last number ", g.last,
         "; raise the bound or use {", std::string(g.width, '0'), "..}");
  }
  std::string digits = std::to_string(number);
  if (digits.size() < g.width) digits.insert(0, g.width - digits.size(), '0');
  return pattern.substr(0, g.begin) + digits + pattern.substr(g.end);
}

std::vector<std::string> expand_braces(const std::string& pattern) {
  std::vector<std::string> out;
  expand_into(pattern, pattern, out);
  return out;
}

std::vector<ShardSource> parse_shard_sources(const std::string& spec, const std::string& weights) {
  std::vector<ShardSource> sources;
  for (const std::string& part : split(spec, "::")) {
    if (part.empty()) fail("'", spec, "': an empty source between '::' separators");
    ShardSource s;
    s.pattern = part;
    s.shards = expand_braces(part);
    sources.push_back(std::move(s));
  }
  if (!weights.empty()) {
    const std::vector<std::string> given = split(weights, "::");
    if (given.size() != sources.size()) {
      fail("weights '", weights, "': ", given.size(), " weights for ", sources.size(), " sources (join them with '::')");
    }
    for (size_t i = 0; i < given.size(); ++i) {
      char* end = nullptr;
      const double w = std::strtod(given[i].c_str(), &end);
      if (given[i].empty() || *end != '\0' || !(w > 0) || w > 1e12) {
        fail("weights '", weights, "': '", given[i], "' is not a positive number");
      }
      sources[i].weight = w;
    }
  } else {
    // Unweighted: each shard as likely as any other, so a source weighs its shard count.
    for (ShardSource& s : sources) s.weight = static_cast<double>(s.shards.size());
  }
  return sources;
}

bool looks_like_shards(const std::string& train_data) {
  if (train_data.empty()) return false;
  for (const std::string& part : split(train_data, "::")) {
    if (!(ends_with(part, ".tar") || ends_with(part, ".tar.gz") || ends_with(part, ".tgz"))) return false;
  }
  return true;
}

std::optional<int64_t> count_from_sizes_json(const std::vector<std::string>& shards) {
  std::map<std::string, nlohmann::json> tables;
  int64_t total = 0;
  for (const std::string& shard : shards) {
    const fs::path path(shard);
    const std::string dir = path.parent_path().string();
    auto table = tables.find(dir);
    if (table == tables.end()) {
      nlohmann::json j;
      const std::string sizes = (path.parent_path() / "sizes.json").string();
      std::error_code ec;
      if (fs::is_regular_file(sizes, ec)) j = parse_json_or_discarded(read_file(sizes));
      table = tables.emplace(dir, std::move(j)).first;
    }
    const nlohmann::json& j = table->second;
    const std::string name = path.filename().string();
    if (!j.is_object() || !j.contains(name) || !j[name].is_number_integer()) return std::nullopt;
    const nlohmann::json& count = j[name];
    if (count.is_number_unsigned() ? count.get<uint64_t>() > (uint64_t(1) << 40) : count.get<int64_t>() < 0) {
      fail((path.parent_path() / "sizes.json").string(), ": '", name, "' holds ", count.dump(),
           " samples; expected a count from 0 to 2^40 (fix or delete sizes.json, or pass --train-num-samples)");
    }
    total += count.get<int64_t>();
  }
  return total;
}

ShardCounts& ShardCounts::operator+=(const ShardCounts& o) {
  shards += o.shards;
  shards_failed += o.shards_failed;
  shards_truncated += o.shards_truncated;
  samples += o.samples;
  no_image += o.no_image;
  no_caption += o.no_caption;
  corrupt += o.corrupt;
  undecodable += o.undecodable;
  return *this;
}

}  // namespace clip
