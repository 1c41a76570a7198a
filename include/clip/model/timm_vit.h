#pragma once
/// timm's VisionTransformer as open_clip wraps it (`TimmModel`: `visual.trunk.*`, `visual.head.*`): the image tower
/// of SigLIP and SigLIP 2, and of every open_clip config that names a timm ViT (`vision_cfg.timm_model_name`).
///
///   clip::TimmVisionTransformer vit(clip::TimmVisionTransformerOptions(224, 16, 768, 12, 12, 768));
///   torch::Tensor features = vit(images);   // [N, 3, 224, 224] -> [N, 768], pooled by the MAP head
///
/// trunk: `patch_embed.proj` (patchify, with bias) -> [`cls_token`] -> + `pos_embed` -> `blocks` -> `norm` ->
/// pooling: SigLIP's attention-pool head `attn_pool` (MAP: one learned query attends over the patch tokens, then
/// a residual MLP), the mean of the patch tokens (then `fc_norm` in place of `norm` where timm does so), or the class
/// token; head: an optional Linear `proj` to embed_dim.
#include <torch/arg.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <optional>

#include "clip/model/transformer.h"
#include "clip/model/vision_tower.h"

namespace clip {

/// How a timm ViT pools its tokens into one feature (open_clip's `timm_pool`).
enum class TimmPool {
  map,    ///< attention pooling with a learned latent query (`attn_pool`), SigLIP's head
  avg,    ///< mean of the patch tokens
  token,  ///< the class token
};

/// timm's AttentionPoolLatent with one latent query: `latent` [1, 1, D], `q`, `kv` (fused [2D, D]), `proj`, then
/// x + `mlp`(`norm`(x)). Tokens [N, L, D] -> [N, D].
class AttentionPoolLatentImpl : public torch::nn::Module {
 public:
  AttentionPoolLatentImpl(int64_t width, int64_t heads, double mlp_ratio, Activation activation, double layer_norm_eps);
  torch::Tensor forward(const torch::Tensor& tokens);

  torch::Tensor latent;
  torch::nn::Linear q{nullptr};
  torch::nn::Linear kv{nullptr};
  torch::nn::Linear proj{nullptr};
  LayerNorm norm{nullptr};
  Mlp mlp{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(AttentionPoolLatent);

/// Options of a TimmVisionTransformer. Defaults are SigLIP's towers (no class token, MAP head, no projection).
struct TimmVisionTransformerOptions {
  TimmVisionTransformerOptions(int64_t image_size, int64_t patch_size, int64_t width, int64_t layers, int64_t heads,
                               int64_t output_dim)
      : image_size_(image_size),
        patch_size_(patch_size),
        width_(width),
        layers_(layers),
        heads_(heads),
        output_dim_(output_dim) {}
  TORCH_ARG(int64_t, image_size);
  TORCH_ARG(int64_t, patch_size);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(int64_t, heads);
  /// the feature size: width unless `projection` adds `head.proj`
  TORCH_ARG(int64_t, output_dim);
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(Activation, activation) = Activation::gelu;
  TORCH_ARG(double, layer_norm_eps) = 1e-6;  ///< timm's LayerNorm default
  TORCH_ARG(bool, class_token) = false;
  TORCH_ARG(TimmPool, pool) = TimmPool::map;
  /// the final norm after pooling (`fc_norm`) instead of before it (`norm`); timm does so for mean pooling unless
  /// the model says otherwise (SigLIP's `_gap` towers do)
  TORCH_ARG(bool, fc_norm) = false;
  /// open_clip's `timm_proj: linear`: a Linear `head.proj` from width to output_dim
  TORCH_ARG(bool, projection) = false;
  TORCH_ARG(bool, projection_bias) = false;
  TORCH_ARG(std::optional<double>, layer_scale) = std::nullopt;
};

/// A timm ViT image tower.
class TimmVisionTransformerImpl : public VisionTowerImpl {
 public:
  explicit TimmVisionTransformerImpl(const TimmVisionTransformerOptions& options);
  torch::Tensor forward(const torch::Tensor& images) override;
  /// The blocks and projections as Transformer::initialize_parameters; `pos_embed`, `cls_token` and the MAP
  /// latent ~ N(0, 0.02) (timm draws truncated normals; a from-scratch run does not depend on the difference).
  void initialize_parameters() override;
  int64_t image_size() const override { return options_.image_size(); }
  void set_grad_checkpointing(bool enabled) override { transformer->set_grad_checkpointing(enabled); }
  /// The blocks are registered at the trunk's top level (`trunk.blocks`), not under `transformer`: its mode follows.
  void train(bool on = true) override;

  torch::nn::Module& trunk() { return *trunk_; }

  torch::nn::Conv2d patch_embed{nullptr};  ///< `trunk.patch_embed.proj`
  torch::Tensor cls_token;                 ///< [1, 1, width]; undefined without a class token
  torch::Tensor pos_embed;                 ///< [1, tokens, width]
  Transformer transformer{nullptr};        ///< its blocks are `trunk.blocks.N`
  LayerNorm norm{nullptr};                 ///< `trunk.norm` or `trunk.fc_norm`
  AttentionPoolLatent attn_pool{nullptr};  ///< `trunk.attn_pool` (TimmPool::map)
  torch::nn::Linear head{nullptr};         ///< `head.proj` (projection)

 private:
  TimmVisionTransformerOptions options_;
  std::shared_ptr<torch::nn::Module> trunk_;
};
TORCH_MODULE(TimmVisionTransformer);

}  // namespace clip
