#pragma once
/// HF transformers' CLIPModel layout: names, config, folders.
///
///   clip::ModelConfig cfg = clip::parse_hf_config(json_text, "config.json");
///   clip::TensorMap ours = clip::from_hf_state_dict(hf_tensors, cfg, "model.safetensors");
///   clip::save_hf_folder(*model, "out_dir");   // config.json + model.safetensors
///
/// HF splits attention into q_proj/k_proj/v_proj (ours: the reference's fused in_proj_weight/in_proj_bias),
/// stores projections as Linear weights (ours: [width, embed] matrices, the transpose), and pools text at the
/// first `eos_token_id` (or at argmax(ids) when that id is 2, HF's legacy rule).
#include <string>

#include "clip/io/tensor_map.h"
#include "clip/model/clip_model.h"

namespace clip {

/// An HF CLIPModel config.json to our config (activation, eps, pooling included); `source` names it in errors.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

/// Our config as an HF CLIPModel config.json; throws clip::Error for what HF cannot express (ResNet towers).
std::string to_hf_config(const ModelConfig& config);

/// HF tensor names to the reference's (q/k/v fused); every HF key must be used and every one of ours found.
TensorMap from_hf_state_dict(const TensorMap& hf, const ModelConfig& config, const std::string& source);

/// The reference's names to HF's (in_proj split into q/k/v).
TensorMap to_hf_state_dict(const TensorMap& ours, const ModelConfig& config);

/// Writes `dir`/config.json and `dir`/model.safetensors (creating `dir`), floating-point tensors in `dtype`.
void save_hf_folder(CLIPImpl& model, const std::string& dir, at::ScalarType dtype = at::kFloat);

}  // namespace clip
