#pragma once
/// Loading a model from a checkpoint file.
///
///   clip::CLIP model = clip::load_model("vit_tiny.safetensors", {.config_path = "vit_tiny.json"});
///
/// Reads safetensors files with plain reference keys (`visual.conv1.weight`, ...); the architecture comes from
/// `config_path`, or from a config stored in the file's `__metadata__["config"]`. Other checkpoint formats are
/// refused with a message naming the formats that are read.
#include <ATen/core/ScalarType.h>

#include <string>

#include "clip/model/clip_model.h"

namespace clip {

/// Options of load_model.
struct LoadOptions {
  std::string config_path;               ///< open_clip-schema JSON; empty: from the checkpoint's metadata
  at::ScalarType dtype = at::kFloat;     ///< weights are converted to this dtype
  std::string device = "cpu";            ///< "cpu", "cuda", "cuda:1", ...
};

/// Builds the model described by the config and copies the checkpoint's weights into it (every key and shape
/// checked). The model is returned in eval mode. Errors name the file and what is wrong.
CLIP load_model(const std::string& checkpoint, const LoadOptions& options = {});

/// Writes a model's weights as safetensors with its config in `__metadata__["config"]`, so that load_model
/// needs no separate config file.
void save_model(CLIPImpl& model, const std::string& path);

}  // namespace clip
