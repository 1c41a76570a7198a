#include "clip/model/registry.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <utility>
#include <vector>

#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/resources.h"
#include "clip/util/sha256.h"

namespace clip {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Levenshtein distance.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

const std::vector<RegisteredModel>& registered_models() {
  static const std::vector<RegisteredModel> models = {
      {"RN50", "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"},
      {"RN101", "RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599"},
      {"RN50x4", "RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd"},
      {"RN50x16", "RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa"},
      {"RN50x64", "RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c"},
      {"ViT-B-32", "ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"},
      {"ViT-B-16", "ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"},
      {"ViT-L-14", "ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"},
      {"ViT-L-14-336", "ViT-L-14-336px.pt", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"},
  };
  return models;
}

const RegisteredModel& registered_model(const std::string& name) {
  for (const auto& m : registered_models()) {
    if (m.name == name) return m;
  }
  std::string names;
  for (const auto& m : registered_models()) names += (names.empty() ? "" : " ") + m.name;
  fail("unknown model '", name, "' (known: ", names, ")");
}

ModelConfig registered_config(const std::string& name) {
  // A path to a model-config file is taken as it is: "my_model.json", "configs/x.json", "/abs/x.json".
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
    if (!std::filesystem::exists(name)) fail(name, ": no such model config file");
    return load_model_config(name);
  }
  if (name.rfind("hf-hub:", 0) == 0) {
    fail("'", name, "' is a Hugging Face hub model: pass it as the checkpoint (--checkpoint ", name,
         "), which brings its own config");
  }
  if (name.empty() || name.find('/') != std::string::npos || name.find("..") != std::string::npos) {
    fail("'", name, "' is not a model name (known names are in configs/models; a config file must end in .json)");
  }
  const std::string dir = resource_path("configs/models");
  const std::string path = dir + "/" + name + ".json";
  if (!std::filesystem::exists(path)) {
    // The three closest names (edit distance, case-insensitive), not all of them: there are dozens.
    std::vector<std::pair<size_t, std::string>> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".json") {
        const std::string stem = entry.path().stem().string();
        names.emplace_back(edit_distance(lower(name), lower(stem)), stem);
      }
    }
    std::sort(names.begin(), names.end());
    std::string closest;
    for (size_t i = 0; i < names.size() && i < 3; ++i) closest += (i ? ", " : "") + names[i].second;
    fail("unknown model '", name, "' (closest of the ", names.size(), " configs in ", dir, ": ", closest,
         "; or a config file ending in .json, or a hub model as --checkpoint hf-hub:org/name)");
  }
  return load_model_config(path);
}

bool verify_release(const std::string& name, const std::string& path) {
  const RegisteredModel& model = registered_model(name);
  const std::string actual = sha256_file(path);
  if (actual == model.sha256) return true;
  log_warning(path, ": SHA-256 ", actual, " differs from OpenAI's ", model.release_file, " (", model.sha256,
              "); the file is not the released ", name, " checkpoint");
  return false;
}

}  // namespace clip
