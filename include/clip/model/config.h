#pragma once
/// Model architecture, in open_clip's model-config JSON schema.
///
///   clip::ModelConfig cfg = clip::load_model_config("configs/models/ViT-B-32.json");
///
/// Keys: `embed_dim`, `quick_gelu`, `init_logit_scale`, `init_logit_bias`, `custom_text`, `vision_cfg{image_size,
/// layers, width, patch_size, head_width, mlp_ratio, ls_init_value, act_kwargs, norm_kwargs, timm_model_name,
/// timm_pool, timm_proj, timm_proj_bias}` (`layers` a list of four selects the ModifiedResNet; a timm name selects
/// timm's ViT), `text_cfg{context_length, vocab_size, width, heads, layers, mlp_ratio, ls_init_value, pool_type,
/// eos_token_id, pad_id, no_causal_mask, proj_bias, act_kwargs, norm_kwargs, tokenizer}`, `preprocess_cfg{mean,
/// std, interpolation, resize_mode}`. open_clip keys that libclip does not implement are accepted only at their
/// default value; any other key, or a value of the wrong type, is an error naming the file, key and value.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clip/image/preprocess_options.h"
#include "clip/text/text_pool.h"

namespace clip {

/// The image tower: OpenAI's ModifiedResNet when `resnet_layers` is set, timm's ViT when `timm_model_name` is, else
/// OpenAI's ViT.
struct VisionConfig {
  int64_t image_size = 224;
  int64_t layers = 12;                 ///< ViT depth
  std::vector<int64_t> resnet_layers;  ///< blocks per stage [4] of the ModifiedResNet
  int64_t width = 768;                 ///< ViT width, or the ResNet's base width (64 for RN50)
  int64_t head_width = 64;
  double mlp_ratio = 4.0;
  int64_t patch_size = 16;
  std::optional<double> ls_init_value;   ///< layer scale (`ls_1.gamma`, `ls_2.gamma`) and its initial value
  bool gelu_tanh = false;                ///< GELU's tanh form (`act_kwargs: {"approximate": "tanh"}`)
  std::optional<double> layer_norm_eps;  ///< `norm_kwargs: {"eps": ...}`; unset: ModelConfig::layer_norm_eps

  /// open_clip's timm tower (`visual.trunk`, `visual.head`): a timm ViT name that libclip knows (the SigLIP and
  /// SigLIP 2 towers). The parser sets layers, width, patch_size, head_width, mlp_ratio, gelu_tanh and
  /// layer_norm_eps from the name, as timm does, and the settings below from the name and these keys.
  std::string timm_model_name;
  /// The timm layout without a name (libclip's key `timm_layout`: HF SigLIP folders, whose sizes need not be a
  /// timm model's): the shape comes from the usual keys, class_token and fc_norm from their own. Set for every
  /// timm tower, named or not.
  bool timm_layout = false;
  std::string timm_pool = "avg";     ///< "map" (SigLIP's attention pool), "avg" or "token"
  std::string timm_proj = "linear";  ///< "linear" (`visual.head.proj`, width -> embed_dim) or "none"
  bool timm_proj_bias = false;
  bool class_token = true;  ///< timm: the model has a class token (SigLIP's towers have none)
  bool fc_norm = false;     ///< timm: the final norm comes after mean pooling (`fc_norm`), not before (`norm`)

  bool is_resnet() const { return !resnet_layers.empty(); }
  bool is_timm() const { return timm_layout; }
  /// Attention heads: width / head_width for a ViT; (32 * width) / head_width for the ResNet's attention pool.
  int64_t heads() const;
};

/// The text tower: a Transformer over token ids, causal unless `causal` is false (SigLIP's).
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
  int64_t pad_id = 0;            ///< the id that fills a text up to context_length (the tokenizer's)
  bool causal = true;            ///< false: open_clip's `no_causal_mask` (every token sees every other)
  bool proj_bias = false;        ///< `text_projection` is a Linear with bias (`.weight` [E, W], `.bias`)
  bool projection = true;        ///< false: open_clip's `proj_type: none` (the pooled token is the feature)
  std::optional<double> ls_init_value;
  bool gelu_tanh = false;                ///< `act_kwargs: {"approximate": "tanh"}` (SigLIP 2)
  std::optional<double> layer_norm_eps;  ///< `norm_kwargs: {"eps": ...}`; unset: ModelConfig::layer_norm_eps
  /// `tokenizer`: "clip_bpe" (openai/CLIP's BPE), or the path of a SentencePiece `.model` (relative to the
  /// config's folder), which makes `pool_type` default to "eos" and needs `eos_token_id`. See load_tokenizer.
  std::string tokenizer = kClipBpe;
  /// open_clip's `hf_tokenizer_name` (SigLIP's, SigLIP 2's, MetaCLIP 2's: a tokenizer on the Hugging Face hub).
  /// load_tokenizer runs the SentencePiece ones (clip/model/model_tokenizer.h).
  std::string hf_tokenizer_name;
  /// open_clip's `tokenizer_kwargs.clean` for that tokenizer: "whitespace" (its default), "lower", "canonicalize"
  /// (the SigLIP configs'), or "none" (HF folders: their tokenizer as transformers runs it).
  std::string hf_tokenizer_clean = "whitespace";
  bool hf_tokenizer_strip_sep = false;  ///< `tokenizer_kwargs.strip_sep_token` (BERT-style tokenizers; not run)
  /// A folder holding the tokenizer's files (spiece.model or tokenizer.model, tokenizer_config.json): set when
  /// the model is read from such a folder, and looked in before the hub. Not part of the config's JSON.
  std::string tokenizer_dir;
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
  double layer_norm_eps = 1e-5;  ///< of every LayerNorm a tower does not set (norm_kwargs) itself
  /// open_clip's CustomTextCLIP layout: the text tower's parameters under `text.` (`text.token_embedding.weight`,
  /// ...) instead of at the top level. Every config with a timm image tower or a SigLIP text tower uses it.
  bool custom_text = false;
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
