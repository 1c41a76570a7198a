#include "clip/io/checkpoint.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "clip/io/safetensors.h"
#include "clip/util/error.h"

namespace clip {

CLIP load_model(const std::string& checkpoint, const LoadOptions& options) {
  if (!std::filesystem::exists(checkpoint)) fail(checkpoint, ": no such file");
  if (!looks_like_safetensors(checkpoint)) {
    fail(checkpoint, ": not a safetensors file; libclip reads safetensors checkpoints with plain keys "
                     "(visual.conv1.weight, ...)");
  }
  Safetensors file = read_safetensors(checkpoint);
  ModelConfig config;
  if (!options.config_path.empty()) {
    config = load_model_config(options.config_path);
  } else if (auto it = file.metadata.find("config"); it != file.metadata.end()) {
    config = parse_model_config(it->second, checkpoint + " (__metadata__.config)");
    config.name = std::filesystem::path(checkpoint).stem().string();
  } else {
    fail(checkpoint, ": holds no model config in its metadata; pass one (--config FILE.json)");
  }
  CLIP model(config);
  load_state_dict(*model, file.tensors, checkpoint);
  convert_module(*model, torch::Device(options.device), options.dtype);
  model->eval();
  return model;
}

void save_model(CLIPImpl& model, const std::string& path) {
  write_safetensors(path, state_dict(model), {{"format", "pt"}, {"config", to_json(model.config())}});
}

}  // namespace clip
