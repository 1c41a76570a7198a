#pragma once
/// The CLIP model: an image tower, a text tower and the learned temperature.
///
///   clip::CLIP model(clip::load_model_config("configs/models/ViT-B-32.json"));
///   clip::load_state_dict(*model, clip::read_safetensors("ViT-B-32.safetensors").tensors, "ViT-B-32.safetensors");
///   auto out = model->forward(images, ids);   // out.logits_per_image: [N_images, N_texts]
///
/// named_parameters() is the reference's state-dict layout: `visual.*`, `token_embedding.weight`,
/// `positional_embedding`, `transformer.resblocks.*`, `ln_final.*`, `text_projection`, `logit_scale`; with
/// custom_text (SigLIP and other open_clip CustomTextCLIP configs) the text tower's under `text.`.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>

#include "clip/model/config.h"
#include "clip/model/precision.h"
#include "clip/model/text_transformer.h"
#include "clip/model/vision_tower.h"

namespace clip {

/// Features and logits of a batch of images against a batch of texts.
struct ClipOutput {
  torch::Tensor image_features;    ///< [N_images, embed_dim], projected, not normalized
  torch::Tensor text_features;     ///< [N_texts, embed_dim], projected, not normalized
  torch::Tensor logits_per_image;  ///< [N_images, N_texts] = exp(logit_scale) * cosine similarity (+ logit_bias)
  torch::Tensor logits_per_text;   ///< its transpose
};

/// Contrastive image-text model.
class CLIPImpl : public torch::nn::Module {
 public:
  explicit CLIPImpl(ModelConfig config);

  /// [N, 3, R, R] normalized images -> [N, embed_dim]; L2-normalized when `normalize`.
  torch::Tensor encode_image(const torch::Tensor& images, bool normalize = false);
  /// [N, L] int64 token ids -> [N, embed_dim]; L2-normalized when `normalize`.
  torch::Tensor encode_text(const torch::Tensor& ids, bool normalize = false);
  /// Both towers and the scaled cosine-similarity logits.
  ClipOutput forward(const torch::Tensor& images, const torch::Tensor& ids);
  /// Re-draws every parameter as the reference initializes it (open_clip's init_parameters; logit_scale =
  /// init_logit_scale, logit_bias = init_logit_bias). A new model is already initialized this way.
  void initialize_parameters();

  const ModelConfig& config() const { return config_; }

  /// The arithmetic encode_image, encode_text and forward use for inference on the CPU (clip/model/precision.h;
  /// fp32 by default). clip::Error, saying what to use instead, for bf16 on a CPU without native bf16, int8
  /// without a quantized engine, or either with the model on a GPU. The weights stay as they are.
  void set_inference_precision(InferencePrecision precision);
  InferencePrecision inference_precision() const { return precision_; }

  /// Grad checkpointing of both towers (the text Transformer and the image tower; clip::Error for a ResNet
  /// image tower, which cannot: VisionTowerImpl::set_grad_checkpointing).
  void set_grad_checkpointing(bool enabled);

  VisionTower visual{nullptr};
  TextTransformer text{nullptr};  ///< its parameters are registered at this module's top level
  torch::Tensor logit_scale;      ///< scalar; the temperature is exp(logit_scale)
  torch::Tensor logit_bias;       ///< scalar, SigLIP's learned bias (config().init_logit_bias); undefined for CLIP

 private:
  ModelConfig config_;
  InferencePrecision precision_ = InferencePrecision::fp32;
};
TORCH_MODULE(CLIP);

/// x / ||x||_2 along the last dimension (features to unit length, as the reference's `x / x.norm(dim=-1,
/// keepdim=True)`). The one normalization every path uses: encode_*(normalize), the loss, zero-shot, retrieval.
torch::Tensor l2_normalize(const torch::Tensor& x);

/// exp(logit_scale) * normalize(image_features) @ normalize(text_features)^T (+ logit_bias, SigLIP's, when
/// defined) and its transpose.
ClipOutput compute_logits(const torch::Tensor& image_features, const torch::Tensor& text_features,
                          const torch::Tensor& logit_scale, const torch::Tensor& logit_bias = {});

/// Moves every parameter and buffer to `device` and converts the floating-point ones to `dtype`, leaving
/// integer buffers (BatchNorm's num_batches_tracked) as they are, like Python's Module.to.
void convert_module(torch::nn::Module& module, const torch::Device& device, at::ScalarType dtype);

/// Number of elements over all parameters (not buffers).
int64_t count_parameters(const torch::nn::Module& module);

/// Identifies a model's weights, whatever file format or dtype they came from (an OpenAI .pt and its safetensors
/// conversion agree): SHA-256 (64 hex digits) over the architecture (the config without its name) and, for every
/// parameter and floating-point buffer, its name, shape and the fp32 values of up to 4096 evenly spaced elements
/// (all of them in smaller tensors). Training changes nearly every weight, so two trained models differ here; it
/// costs milliseconds, not a pass over the file. Used to refuse a search index made with another model.
std::string weights_fingerprint(const CLIPImpl& model);

}  // namespace clip
