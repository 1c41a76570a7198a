#include "clip/model/checkpoint.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "clip/model/hf.h"
#include "clip/model/pretrained.h"
#include "clip/io/safetensors.h"
#include "clip/model/registry.h"
#include "clip/util/error.h"
#include "io/torch_archive.h"
#include "model/initialization.h"
#include "util/device.h"
#include "util/file.h"
#include "util/json.h"
#include "clip/util/log.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

using json = nlohmann::json;

constexpr const char* kFormats =
    "libclip reads TorchScript archives (OpenAI's .pt releases), torch.save zip files (state dicts, open_clip "
    "checkpoints), safetensors, HF transformers folders and open_clip hub folders";

// Reads the weights file of a folder: safetensors (single or sharded with an index) or a torch.save .bin.
TensorMap read_folder_weights(const fs::path& dir, const std::string& stem, const std::string& bin) {
  const fs::path single = dir / (stem + ".safetensors");
  if (fs::exists(single)) return read_safetensors(single.string()).tensors;
  const fs::path index = dir / (stem + ".safetensors.index.json");
  if (fs::exists(index)) {
    const json j = parse_json(read_file(index.string()), index.string());
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) fail(index.string(), ": has no 'weight_map' object");
    std::set<std::string> shards;
    for (const auto& item : j["weight_map"].items()) {
      if (!item.value().is_string()) fail(index.string(), ": weight_map entry '", item.key(), "' is not a file name");
      const std::string shard = item.value().get<std::string>();
      if (shard.find('/') != std::string::npos) fail(index.string(), ": shard name '", shard, "' is not a plain file name");
      shards.insert(shard);
    }
    TensorMap all;
    for (const auto& shard : shards) all.merge(read_safetensors((dir / shard).string()).tensors);
    return all;
  }
  const fs::path pickle = dir / bin;
  if (fs::exists(pickle)) return read_torch_save_state_dict(pickle.string());
  fail(dir.string(), ": holds no weights (", single.filename().string(), ", ", index.filename().string(), " or ", bin, ")");
}

Checkpoint read_hf_folder(const fs::path& dir) {
  const std::string config_path = (dir / "config.json").string();
  Checkpoint c{CheckpointFormat::hf_folder, {}, parse_hf_config(read_file(config_path), config_path), {}};
  c.config->name = dir.filename().string();
  c.config->text.tokenizer_dir = dir.string();  // load_tokenizer looks for the tokenizer's files here first
  c.quick_gelu = c.config->quick_gelu;
  c.state_dict = from_hf_state_dict(read_folder_weights(dir, "model", "pytorch_model.bin"), *c.config, dir.string());
  return c;
}

Checkpoint read_open_clip_folder(const fs::path& dir) {
  const std::string config_path = (dir / "open_clip_config.json").string();
  const json j = parse_json(read_file(config_path), config_path);
  if (!j.is_object() || !j.contains("model_cfg") || !j["model_cfg"].is_object()) fail(config_path, ": has no 'model_cfg' object");
  json model_cfg = j["model_cfg"];
  if (j.contains("preprocess_cfg") && !model_cfg.contains("preprocess_cfg")) model_cfg["preprocess_cfg"] = j["preprocess_cfg"];
  Checkpoint c{CheckpointFormat::open_clip_folder, {}, parse_model_config(model_cfg.dump(), config_path), {}};
  c.config->name = dir.filename().string();
  c.config->text.tokenizer_dir = dir.string();
  c.quick_gelu = c.config->quick_gelu;
  c.state_dict = strip_common_prefixes(read_folder_weights(dir, "open_clip_model", "open_clip_pytorch_model.bin"));
  return c;
}

int64_t count_indices(const TensorMap& sd, const std::string& prefix, const std::string& suffix = "") {
  std::set<std::string> indices;
  for (const auto& [key, t] : sd) {
    if (key.compare(0, prefix.size(), prefix) != 0 || key.size() < suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    indices.insert(key.substr(prefix.size(), key.find('.', prefix.size()) - prefix.size()));
  }
  return static_cast<int64_t>(indices.size());
}

const at::Tensor& require(const TensorMap& sd, const std::string& key, int64_t dim, const std::string& source) {
  auto it = sd.find(key);
  if (it == sd.end()) {
    std::string sample;
    int n = 0;
    for (auto k = sd.begin(); k != sd.end() && n < 3; ++k, ++n) sample += (n ? ", " : "") + k->first;
    fail(source, ": not a CLIP state dict (no '", key, "'; its keys begin ", sample.empty() ? "<none>" : sample, ")");
  }
  if (it->second.dim() != dim) {
    fail(source, ": '", key, "' has ", it->second.dim(), " dimensions, a CLIP state dict has ", dim);
  }
  return it->second;
}

}  // namespace

const char* format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::safetensors: return "safetensors";
    case CheckpointFormat::torch_zip: return "torch.save zip archive";
    case CheckpointFormat::torchscript: return "TorchScript archive";
    case CheckpointFormat::hf_folder: return "HF transformers folder";
    case CheckpointFormat::open_clip_folder: return "open_clip folder";
  }
  return "unknown";
}

CheckpointFormat detect_format(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) fail(path, ": no such file or folder");
  if (fs::is_directory(status)) {
    // Many hub repos hold both layouts; an open_clip one with its weights wins (what fetch_pretrained fetches).
    const fs::path dir(path);
    if (fs::exists(dir / "open_clip_config.json") &&
        (fs::exists(dir / "open_clip_model.safetensors") || fs::exists(dir / "open_clip_pytorch_model.bin"))) {
      return CheckpointFormat::open_clip_folder;
    }
    if (fs::exists(dir / "config.json")) return CheckpointFormat::hf_folder;
    if (fs::exists(dir / "open_clip_config.json")) return CheckpointFormat::open_clip_folder;
    fail(path, ": a folder without config.json (HF transformers) or open_clip_config.json (open_clip)");
  }
  require_regular_file(path);  // a FIFO or a device is refused here, before any reader opens it
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open for reading");
  char head[2] = {};
  in.read(head, 2);
  if (in.gcount() == 0) fail(path, ": empty file; ", kFormats);
  if (looks_like_safetensors(path)) return CheckpointFormat::safetensors;
  if (is_zip_file(path)) return is_torchscript_archive(path) ? CheckpointFormat::torchscript : CheckpointFormat::torch_zip;
  if (static_cast<unsigned char>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5) {
    fail(path, ": a legacy (pre-zip) torch.save pickle; re-save it with torch.save from PyTorch 1.6 or later");
  }
  fail(path, ": not a checkpoint; ", kFormats);
}

TensorMap strip_common_prefixes(TensorMap sd) {
  for (const std::string prefix : {"module.", "_orig_mod.", "module."}) {
    if (sd.empty()) break;
    bool all = true;
    for (const auto& [key, t] : sd) all = all && key.compare(0, prefix.size(), prefix) == 0;
    if (!all) continue;
    TensorMap stripped;
    for (auto& [key, t] : sd) stripped[key.substr(prefix.size())] = t;
    sd = std::move(stripped);
  }
  return sd;
}

Checkpoint read_checkpoint(const std::string& path) {
  if (is_hub_model_name(path)) {
    // A model on the Hugging Face hub: its files in the local cache (fetched when missing), read as a folder.
    std::string folder;
    try {
      folder = fetch_pretrained(path);
    } catch (const Error& e) {
      if (path.rfind("hf-hub:", 0) == 0) throw;
      fail(e.what(), " (no file or folder '", path, "' exists here either, so it was taken as a hub model)");
    }
    Checkpoint c = read_checkpoint(folder);
    if (c.config) c.config->name = fs::path(path.substr(0, path.find('@'))).filename().string();
    return c;
  }
  const CheckpointFormat format = detect_format(path);
  switch (format) {
    case CheckpointFormat::hf_folder: return read_hf_folder(path);
    case CheckpointFormat::open_clip_folder: return read_open_clip_folder(path);
    case CheckpointFormat::safetensors: {
      Safetensors file = read_safetensors(path);
      if (file.metadata.count("clip_train_checkpoint")) {
        // A clip_train checkpoint: the model is under `model.`, beside optimizer and RNG state.
        TensorMap model;
        for (auto& [key, t] : file.tensors) {
          if (key.rfind("model.", 0) == 0) model[key.substr(6)] = t;
        }
        file.tensors = std::move(model);
      }
      Checkpoint c{format, strip_common_prefixes(std::move(file.tensors)), {}, {}};
      if (auto it = file.metadata.find("config"); it != file.metadata.end()) {
        c.config = parse_model_config(it->second, path + " (__metadata__.config)");
        c.config->name = fs::path(path).stem().string();
        c.quick_gelu = c.config->quick_gelu;
      }
      return c;
    }
    case CheckpointFormat::torch_zip:
      return Checkpoint{format, strip_common_prefixes(read_torch_save_state_dict(path)), {}, {}};
    case CheckpointFormat::torchscript: {
      TensorMap sd = read_torchscript_tensors(path);
      // OpenAI's archives carry these as attributes; build_model drops them.
      for (const char* key : {"input_resolution", "context_length", "vocab_size"}) sd.erase(key);
      // OpenAI's releases, the format's one source of CLIP models, all use QuickGELU.
      return Checkpoint{format, std::move(sd), {}, true};
    }
  }
  fail(path, ": unhandled format");
}

ModelConfig infer_model_config(const TensorMap& sd, const std::string& source) {
  ModelConfig c;
  c.name = fs::path(source).stem().string();
  c.quick_gelu = true;  // every OpenAI release; the rules below are openai/CLIP's build_model
  const at::Tensor& text_projection = require(sd, "text_projection", 2, source);
  c.embed_dim = text_projection.size(1);
  if (sd.count("logit_bias")) c.init_logit_bias = -10.0;  // a SigLIP-trained model; the weights hold the value
  c.text.context_length = require(sd, "positional_embedding", 2, source).size(0);
  c.text.vocab_size = require(sd, "token_embedding.weight", 2, source).size(0);
  c.text.width = require(sd, "ln_final.weight", 1, source).size(0);
  c.text.heads = std::max<int64_t>(c.text.width / 64, 1);
  c.text.layers = count_indices(sd, "transformer.resblocks.");
  c.text.eos_token_id = c.text.vocab_size - 1;
  if (c.text.layers > 0) {
    c.text.mlp_ratio = double(require(sd, "transformer.resblocks.0.mlp.c_fc.weight", 2, source).size(0)) / double(c.text.width);
  }
  if (sd.count("visual.proj")) {
    const at::Tensor& conv1 = require(sd, "visual.conv1.weight", 4, source);
    c.vision.width = conv1.size(0);
    c.vision.patch_size = conv1.size(-1);
    c.vision.layers = count_indices(sd, "visual.transformer.resblocks.", ".attn.in_proj_weight");
    const int64_t tokens = require(sd, "visual.positional_embedding", 2, source).size(0);
    const auto grid = static_cast<int64_t>(std::lround(std::sqrt(double(tokens - 1))));
    c.vision.image_size = c.vision.patch_size * grid;
    if (c.vision.layers > 0) {
      c.vision.mlp_ratio =
          double(require(sd, "visual.transformer.resblocks.0.mlp.c_fc.weight", 2, source).size(0)) / double(c.vision.width);
    }
  } else {
    for (int b = 1; b <= 4; ++b) c.vision.resnet_layers.push_back(count_indices(sd, str("visual.layer", b, ".")));
    c.vision.width = require(sd, "visual.layer1.0.conv1.weight", 4, source).size(0);
    const int64_t tokens = require(sd, "visual.attnpool.positional_embedding", 2, source).size(0);
    c.vision.image_size = 32 * static_cast<int64_t>(std::lround(std::sqrt(double(tokens - 1))));
  }
  // Validate the result with the same rules as a config file.
  try {
    ModelConfig checked = parse_model_config(to_json(c), source);
    checked.name = c.name;
    return checked;
  } catch (const Error& e) {
    fail(source, ": cannot infer a valid architecture from the state dict (", e.what(), "); pass a config");
  }
}

CLIP load_model(const std::string& path, const LoadOptions& options) {
  check_inference_precision(options.precision(), parse_device(options.device()).is_cpu());
  if (options.precision() != InferencePrecision::fp32 && options.dtype() != at::kFloat) {
    fail("--precision ", to_string(options.precision()), " runs on fp32 weights; load them as fp32");
  }
  // open_clip's `pretrained=` is a tag or a path: `ViT-B-32` with `openai` is OpenAI's release, fetched by name.
  std::error_code exists;
  if (!options.config() && is_pretrained_tag(path) && !std::filesystem::exists(path, exists)) {
    if (options.model_name().empty()) {
      fail("'", path, "' is one of open_clip's pretrained tags: name the model with it (--model ViT-B-32 ",
           "--pretrained ", path, "; the model's tags: clip::pretrained_tags)");
    }
    if (!options.config_path().empty()) fail("--config cannot be given with a pretrained tag (the tag decides)");
    return load_pretrained(options.model_name(), path, options);
  }
  Checkpoint checkpoint = read_checkpoint(path);
  ModelConfig config;
  std::string config_source;
  if (options.config()) {
    config = *options.config();
    config_source = "the given config (" + config.name + ")";
  } else if (!options.config_path().empty()) {
    config = load_model_config(options.config_path());
    config_source = options.config_path();
  } else if (!options.model_name().empty()) {
    config = registered_config(options.model_name());
    config_source = "the registry's " + options.model_name();
  } else if (checkpoint.config) {
    config = *checkpoint.config;
  } else {
    config = infer_model_config(checkpoint.state_dict, path);
  }
  // A model read from a folder finds its tokenizer's files there, whichever config describes it.
  if (checkpoint.config && config.text.tokenizer_dir.empty()) config.text.tokenizer_dir = checkpoint.config->text.tokenizer_dir;
  if (!config_source.empty() && checkpoint.quick_gelu && *checkpoint.quick_gelu != config.quick_gelu) {
    const auto name = [](bool quick) { return quick ? "QuickGELU" : "GELU"; };
    fail(path, ": the checkpoint (", format_name(checkpoint.format), ") was made with ", name(*checkpoint.quick_gelu),
         " but ", config_source, " says ", name(config.quick_gelu),
         "; the embeddings would be silently wrong. Fix quick_gelu in the config");
  }
  if (!config_source.empty() && checkpoint.config && !options.override_config()) {
    if (const std::vector<std::string> differ = config_differences(config, *checkpoint.config); !differ.empty()) {
      fail(path, ": ", config_source, " contradicts the config stored in the checkpoint (", name_list(differ, 4),
           "); drop --config/--model (the checkpoint knows its model), or pass --override-config if you mean it");
    }
  }
  if (const std::vector<std::string> bad = nonfinite_tensors(checkpoint.state_dict); !bad.empty()) {
    const std::string what = str(path, ": ", bad.size(), " weight tensors hold NaN or infinity (", name_list(bad), ")");
    if (options.strict()) fail(what, "; the file is damaged or from a diverged run");
    log_warning(what, "; outputs will be NaN (--strict refuses such files)");
  }
  if (options.verify()) {
    if (options.model_name().empty()) fail(path, ": --verify needs --model NAME to know which release to compare with");
    verify_release(options.model_name(), path);
  }
  CLIP model = [&] {
    const detail::SkipWeightInitialization loaded_next;  // load_state_dict sets every weight
    return CLIP(config);
  }();
  LoadStateDictOptions share;
  share.share_storage = true;  // the checkpoint's tensors are this model's alone from here on
  load_state_dict(*model, checkpoint.state_dict, path, share);
  convert_module(*model, parse_device(options.device()), options.dtype());
  model->eval();
  model->set_inference_precision(options.precision());
  return model;
}

void save_model(CLIPImpl& model, const std::string& path, at::ScalarType dtype) {
  TensorMap tensors = state_dict(model);
  for (auto& [name, t] : tensors) {
    if (t.is_floating_point()) t = t.to(dtype);
  }
  write_safetensors(path, tensors, {{"format", "pt"}, {"config", to_json(model.config())}});
}

}  // namespace clip
