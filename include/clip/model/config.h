#pragma once
/// Model architecture, in open_clip's model-config JSON schema.
///
///   clip::ModelConfig cfg = clip::load_model_config("configs/models/ViT-B-32.json");
///
/// Keys: `embed_dim`, `quick_gelu`, `init_logit_scale`, `vision_cfg{image_size, layers, width, patch_size,
/// head_width, mlp_ratio}` (`layers` a list of four selects the ModifiedResNet), `text_cfg{context_length,
/// vocab_size, width, heads, layers, mlp_ratio, pool_type, eos_token_id, tokenizer}`, `preprocess_cfg{mean, std,
/// interpolation, resize_mode}`. open_clip keys that libclip does not implement are accepted only at their
/// default value; any other key, or a value of the wrong type, is an error naming the file, key and value.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clip/image/preprocess_options.h"
#include "clip/text/text_pool.h"

namespace clip {

/// The image tower: a ViT when `resnet_layers` is empty, else OpenAI's ModifiedResNet.
struct VisionConfig {
  int64_t image_size = 224;
  int64_t layers = 12;                 ///< ViT depth
  std::vector<int64_t> resnet_layers;  ///< blocks per stage [4] of the ModifiedResNet
  int64_t width = 768;                 ///< ViT width, or the ResNet's base width (64 for RN50)
  int64_t head_width = 64;
  double mlp_ratio = 4.0;
  int64_t patch_size = 16;

  bool is_resnet() const { return !resnet_layers.empty(); }
  /// Attention heads: width / head_width for a ViT; (32 * width) / head_width for the ResNet's attention pool.
  int64_t heads() const;
};

/// The text tower: a causal Transformer over token ids.
struct TextConfig {
  static constexpr const char* kClipBpe = "clip_bpe";
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t width = 512;
  int64_t heads = 8;
  int64_t layers = 12;
  double mlp_ratio = 4.0;
  TextPool pool = TextPool::argmax;
  int64_t eos_token_id = 49407;  ///< used by TextPool::first_eos
  /// `tokenizer`: "clip_bpe" (openai/CLIP's BPE), or the path of a SentencePiece `.model` (relative to the
  /// config's folder), which makes `pool_type` default to "eos" and needs `eos_token_id`. See load_tokenizer.
  std::string tokenizer = kClipBpe;
};

/// A whole CLIP model.
struct ModelConfig {
  std::string name;  ///< file stem or registry name; informational
  int64_t embed_dim = 512;
  bool quick_gelu = false;  ///< OpenAI's released models use QuickGELU: x * sigmoid(1.702 x)
  double init_logit_scale = 2.659260036932778;  ///< ln(1 / 0.07)
  /// SigLIP: the model has a learned logit bias (state dict key `logit_bias`) starting at this value (open_clip's
  /// `init_logit_bias`; -10 in the paper). Unset: CLIP, no bias.
  std::optional<double> init_logit_bias;
  double layer_norm_eps = 1e-5;
  VisionConfig vision;
  TextConfig text;
  /// How images become this model's input (open_clip's `preprocess_cfg`; OpenAI CLIP's by default). Its size
  /// is the tower's: the config readers set it to vision.image_size, and so does the CLIP model it builds.
  PreprocessOptions preprocess;
};

/// Parses open_clip-schema JSON text; `source` names it in errors (a file name).
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

/// Reads and parses a model-config JSON file; the config's name is the file's stem.
ModelConfig load_model_config(const std::string& path);

/// Serializes to open_clip-schema JSON (round-trips through parse_model_config).
std::string to_json(const ModelConfig& config);

/// Where two configs' architectures differ, as "vision_cfg.layers: 12 vs 6": every setting of to_json that
/// decides what the weights compute (not the name, the preprocessing, the initial logit scale or the text
/// pooling rule); numbers compared to 1e-6.
std::vector<std::string> config_differences(const ModelConfig& a, const ModelConfig& b);

}  // namespace clip
