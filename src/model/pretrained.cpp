#include "clip/model/pretrained.h"

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "clip/model/registry.h"
#include "clip/util/error.h"
#include "clip/util/features.h"
#include "io/hf_hub_cache.h"
#include "model/pretrained_tags.h"
#include "util/file.h"
#include "util/json.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

constexpr const char* kPrefix = "hf-hub:";

// "org/name@revision" -> ("org/name", "revision").
std::pair<std::string, std::string> split_revision(const std::string& name) {
  const size_t at = name.find('@');
  if (at == std::string::npos) return {name, ""};
  return {name.substr(0, at), name.substr(at + 1)};
}

bool looks_like_repo(const std::string& name) {
  try {
    parse_hub_repo(split_revision(name).first);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

bool is_hub_model_name(const std::string& name) {
  if (name.rfind(kPrefix, 0) == 0) return true;
  std::error_code ec;
  if (fs::exists(name, ec)) return false;
  const std::string ext = fs::path(split_revision(name).first).extension().string();
  for (const char* file_ext : {".pt", ".pth", ".bin", ".safetensors", ".json", ".ckpt"}) {
    if (ext == file_ext) return false;  // a checkpoint file that is missing, not a repo
  }
  return looks_like_repo(name);
}

std::string fetch_pretrained(const std::string& name, HubOptions options) {
  auto [repo, revision] = split_revision(name.rfind(kPrefix, 0) == 0 ? name.substr(7) : name);
  repo = parse_hub_repo(repo);
  if (!revision.empty()) options.revision = revision;
  const auto fetch = [&](const std::string& file, bool optional) {
    const std::string path = fetch_hub_file(repo, file, options, optional);
    // Every later file from the same commit, even if the branch moves meanwhile (files at the repo's top level).
    if (!path.empty() && file.find('/') == std::string::npos) options.revision = fs::path(path).parent_path().filename().string();
    return path;
  };
  // A file the repo may lack, asked of the hub; when the hub cannot answer but the cache has the file that would be
  // used instead (`otherwise`), the cache decides, as huggingface_hub's .no_exist markers let it.
  const auto probe = [&](const std::string& file, const std::string& otherwise) {
    try {
      return fetch(file, true);
    } catch (const Error&) {
      if (cached_hub_file(repo, otherwise, options).empty()) throw;
      return std::string();
    }
  };
  std::string config = probe("open_clip_config.json", "config.json");
  if (!config.empty()) {
    if (probe("open_clip_model.safetensors", "open_clip_pytorch_model.bin").empty()) {
      fetch("open_clip_pytorch_model.bin", false);
    }
    return fs::path(config).parent_path().string();
  }
  config = fetch("config.json", true);
  if (config.empty()) {
    // Offline, or a build without downloads, with nothing cached: say so, not that the repo lacks the files.
    const HubOptions resolved = detail::resolve_hub_options(options);
    if (*resolved.offline || !features().hub) {
      fail(repo, ": neither open_clip_config.json nor config.json is in the cache ", resolved.cache_dir, " and ",
           *resolved.offline ? "HF_HUB_OFFLINE is set; fetch the model once online"
                             : "this libclip cannot download (built without libcurl: CLIP_WITH_HUB=OFF)");
    }
    fail(repo, ": the repo has neither open_clip_config.json (open_clip) nor config.json (HF transformers); it is not a "
               "model libclip reads");
  }
  // The tokenizer's files, which AutoTokenizer reads from the same folder (optional: a model of another tokenizer
  // has none, and a failure here is load_tokenizer's to report when text is asked for).
  for (const char* file : {"tokenizer_config.json", "special_tokens_map.json", "spiece.model", "tokenizer.model"}) {
    try {
      fetch(file, true);
    } catch (const Error&) {
    }
  }
  if (probe("model.safetensors", "pytorch_model.bin").empty()) {
    const std::string index = probe("model.safetensors.index.json", "pytorch_model.bin");
    if (index.empty()) {
      fetch("pytorch_model.bin", false);
    } else {
      const nlohmann::json j = parse_json(read_file(index), index);
      if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) fail(index, ": has no 'weight_map'");
      std::set<std::string> shards;
      for (const auto& item : j["weight_map"].items()) {
        if (item.value().is_string()) shards.insert(item.value().get<std::string>());
      }
      for (const std::string& shard : shards) fetch(shard, false);
    }
  }
  return fs::path(config).parent_path().string();
}

namespace {

const detail::PretrainedTag& find_tag(const std::string& model, const std::string& tag) {
  for (const auto* t = detail::pretrained_tags_begin(); t != detail::pretrained_tags_end(); ++t) {
    if (model == t->model && tag == t->tag) return *t;
  }
  const std::vector<std::string> tags = pretrained_tags(model);
  if (tags.empty()) {
    registered_config(model);  // an unknown name: its error names the closest configs
    fail("open_clip has no released weights for ", model, " (a config libclip ships without pretrained tags); load ",
         "a checkpoint file or a hub repo instead (--checkpoint)");
  }
  std::string list;
  for (const std::string& t : tags) list += (list.empty() ? "" : ", ") + t;
  fail(model, " has no pretrained tag '", tag, "'; open_clip's tags for it: ", list);
}

}  // namespace

bool is_pretrained_tag(const std::string& name) {
  for (const auto* t = detail::pretrained_tags_begin(); t != detail::pretrained_tags_end(); ++t) {
    if (name == t->tag) return true;
  }
  return false;
}

std::vector<std::string> pretrained_tags(const std::string& model) {
  std::vector<std::string> tags;
  for (const auto* t = detail::pretrained_tags_begin(); t != detail::pretrained_tags_end(); ++t) {
    if (model == t->model) tags.emplace_back(t->tag);
  }
  return tags;
}

ModelConfig pretrained_config(const std::string& model, const std::string& tag) {
  const detail::PretrainedTag& t = find_tag(model, tag);
  ModelConfig config = registered_config(model);
  // open_clip's create_model: the release's QuickGELU is forced on the model, and its preprocessing entries
  // override the model config's. The row's activation is exact (libclip's configs of OpenAI's nine names are
  // QuickGELU where open_clip's are GELU: their LAION weights need GELU).
  config.quick_gelu = t.quick_gelu;
  config.preprocess.mean = t.mean;
  config.preprocess.std = t.std;
  config.preprocess.interpolation = parse_interpolation(t.interpolation);
  config.preprocess.resize_mode = parse_resize_mode(t.resize_mode);
  config.name = model + " (" + tag + ")";
  return config;
}

CLIP load_pretrained(const std::string& model, const std::string& tag, LoadOptions options, const HubOptions& hub) {
  const ModelConfig config = pretrained_config(model, tag);
  const std::string repo = find_tag(model, tag).repo;
  std::string weights = fetch_hub_file(repo, "open_clip_model.safetensors", hub, /*optional=*/true);
  if (weights.empty()) weights = fetch_hub_file(repo, "open_clip_pytorch_model.bin", hub);
  // open_clip builds the model from its own config and ignores whatever the weights file says of one.
  return load_model(weights, options.config(std::make_shared<const ModelConfig>(config))
                                 .config_path("")
                                 .model_name("")
                                 .override_config(true));
}

}  // namespace clip
