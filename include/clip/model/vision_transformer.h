#pragma once
/// The ViT image tower, named as the reference's `visual.*` keys.
///
///   clip::VisionTransformer vit(clip::VisionTransformerOptions(224, 32, 768, 12, 12, 512));
///   torch::Tensor features = vit(images);   // [N, 3, 224, 224] -> [N, 512]
///
/// conv1 (patchify, no bias) -> prepend `class_embedding` -> + `positional_embedding` -> `ln_pre` ->
/// `transformer` -> `ln_post` on the class token -> @ `proj`.
#include <torch/arg.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "clip/model/transformer.h"
#include "clip/model/vision_tower.h"

namespace clip {

/// Options of a VisionTransformer.
struct VisionTransformerOptions {
  VisionTransformerOptions(int64_t image_size, int64_t patch_size, int64_t width, int64_t layers, int64_t heads,
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
  TORCH_ARG(int64_t, output_dim);
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(Activation, activation) = Activation::gelu;
  TORCH_ARG(double, layer_norm_eps) = 1e-5;
  /// open_clip's `ls_init_value`: layer scale in every block, at this initial value
  TORCH_ARG(std::optional<double>, layer_scale) = std::nullopt;
};

/// Vision Transformer image encoder.
class VisionTransformerImpl : public VisionTowerImpl {
 public:
  explicit VisionTransformerImpl(const VisionTransformerOptions& options);
  torch::Tensor forward(const torch::Tensor& images) override;
  /// class/positional embeddings and proj ~ N(0, width^-0.5); the blocks keep PyTorch's default init, as in
  /// the reference.
  void initialize_parameters() override;
  int64_t image_size() const override { return options_.image_size(); }
  void set_grad_checkpointing(bool enabled) override { transformer->set_grad_checkpointing(enabled); }

  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding;       ///< [width]
  torch::Tensor positional_embedding;  ///< [grid^2 + 1, width]
  LayerNorm ln_pre{nullptr};
  Transformer transformer{nullptr};
  LayerNorm ln_post{nullptr};
  torch::Tensor proj;  ///< [width, output_dim]

 private:
  VisionTransformerOptions options_;
  std::shared_ptr<PackedLinears> packed_;  // reduced-precision inference of the patch embedding (packed_linear.h)
};
TORCH_MODULE(VisionTransformer);

}  // namespace clip
