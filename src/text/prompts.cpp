#include "clip/text/prompts.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "clip/util/error.h"
#include "clip/util/resources.h"
#include "util/file.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

using json = nlohmann::json;

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!trim(line).empty()) out.push_back(line);
  }
  return out;
}

std::vector<std::string> string_list(const json& j, const std::string& source, const std::string& what) {
  if (!j.is_array()) fail(source, ": '", what, "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : j) {
    if (!item.is_string()) fail(source, ": '", what, "' holds ", item.dump(), ", not a string");
    out.push_back(item.get<std::string>());
  }
  return out;
}

bool starts_like_json(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && (text[first] == '[' || text[first] == '{');
}

}  // namespace

std::vector<std::string> prompt_set_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(resource_path("configs/templates"))) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

PromptSet load_prompt_set(const std::string& name_or_path) {
  PromptSet set;
  std::error_code ec;
  if (fs::exists(name_or_path, ec)) {
    set.source = name_or_path;
  } else if (name_or_path.find('/') == std::string::npos && !name_or_path.empty()) {
    const std::string dir = resource_path("configs/templates");
    set.source = dir + "/" + name_or_path + ".json";
    if (!fs::exists(set.source)) {
      std::string names;
      for (const auto& n : prompt_set_names()) names += (names.empty() ? "" : " ") + n;
      fail("'", name_or_path, "' is neither a file nor a template set (known: ", names, ")");
    }
  } else {
    fail(name_or_path, ": no such template file");
  }
  const std::string text = read_file(set.source);
  if (starts_like_json(text)) {
    const json j = parse_json(text, set.source);
    if (j.is_array()) {
      set.templates = string_list(j, set.source, "templates");
    } else {
      if (!j.contains("templates")) fail(set.source, ": a JSON object needs a 'templates' list");
      set.templates = string_list(j.at("templates"), set.source, "templates");
      if (j.contains("classes")) set.classes = string_list(j.at("classes"), set.source, "classes");
    }
  } else {
    set.templates = lines_of(text);
  }
  if (set.templates.empty()) fail(set.source, ": holds no templates");
  for (size_t i = 0; i < set.templates.size(); ++i) {
    if (set.templates[i].find("{}") == std::string::npos) {
      fail(set.source, ": template ", i + 1, " \"", set.templates[i], "\" has no {} for the class name");
    }
  }
  return set;
}

std::string fill_template(const std::string& templ, const std::string& class_name) {
  std::string out;
  size_t from = 0;
  for (size_t at = templ.find("{}"); at != std::string::npos; at = templ.find("{}", from)) {
    out.append(templ, from, at - from).append(class_name);
    from = at + 2;
  }
  return out.append(templ, from, std::string::npos);
}

std::vector<std::string> read_class_names(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<std::string> names;
  if (starts_like_json(text)) {
    names = string_list(parse_json(text, path), path, "classes");
  } else {
    for (const auto& line : lines_of(text)) names.push_back(trim(line));
  }
  if (names.empty()) fail(path, ": holds no class names");
  return names;
}

std::vector<std::string> parse_class_list(const std::string& list) {
  std::vector<std::string> names;
  std::istringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    const std::string name = trim(item);
    if (name.empty()) fail("--classes \"", list, "\": an empty class name; separate names with commas");
    names.push_back(name);
  }
  if (names.empty()) fail("--classes is empty");
  return names;
}

std::vector<std::string> map_class_names(const std::vector<std::string>& folders, const std::string& names_file) {
  const std::string text = read_file(names_file);
  std::map<std::string, std::string> mapping;
  std::vector<std::string> positional;
  if (starts_like_json(text)) {
    const json j = parse_json(text, names_file);
    if (j.is_object()) {
      for (const auto& item : j.items()) {
        if (!item.value().is_string()) fail(names_file, ": the name of '", item.key(), "' is not a string");
        mapping[item.key()] = item.value().get<std::string>();
      }
    } else {
      positional = string_list(j, names_file, "names");
    }
  } else {
    for (const auto& line : lines_of(text)) {
      const auto tab = line.find('\t');
      if (tab == std::string::npos) {
        positional.push_back(trim(line));
      } else {
        mapping[trim(line.substr(0, tab))] = trim(line.substr(tab + 1));
      }
    }
    if (!mapping.empty() && !positional.empty()) {
      fail(names_file, ": mixes 'folder<TAB>name' lines with plain names; use one form");
    }
  }
  if (mapping.empty()) {
    if (positional.size() != folders.size()) {
      fail(names_file, ": lists ", positional.size(), " names for ", folders.size(),
           " class folders; a plain list must name every folder, in sorted order");
    }
    return positional;
  }
  std::vector<std::string> names;
  for (const auto& folder : folders) {
    auto it = mapping.find(folder);
    if (it == mapping.end()) fail(names_file, ": has no name for the class folder '", folder, "'");
    names.push_back(it->second);
  }
  return names;
}

}  // namespace clip
