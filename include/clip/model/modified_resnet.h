#pragma once
/// OpenAI's ModifiedResNet image tower (RN50, RN101, RN50x4, ...), named as the reference's `visual.*` keys.
///
///   clip::ModifiedResNet rn(clip::ModifiedResNetOptions({3, 4, 6, 3}, /*output_dim=*/1024, /*heads=*/32,
///                                                       /*image_size=*/224, /*width=*/64));
///   torch::Tensor features = rn(images);   // [N, 3, 224, 224] -> [N, 1024]
///
/// Differences from torchvision's ResNet: a 3-conv stem with an average pool instead of a max pool;
/// anti-aliased strided blocks (avgpool before the stride-1 conv, also in the downsample branch); and an
/// attention pool (QKV attention of the mean token over the grid) instead of global average pooling.
#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <vector>

#include "clip/model/vision_tower.h"

namespace clip {

class FoldedConvBns;
class PackedLinears;

/// Options of a ModifiedResNet.
struct ModifiedResNetOptions {
  ModifiedResNetOptions(std::vector<int64_t> layers, int64_t output_dim, int64_t heads, int64_t image_size,
                        int64_t width)
      : layers_(std::move(layers)), output_dim_(output_dim), heads_(heads), image_size_(image_size), width_(width) {}
  TORCH_ARG(std::vector<int64_t>, layers);  ///< Bottleneck blocks in each of the four stages
  TORCH_ARG(int64_t, output_dim);
  TORCH_ARG(int64_t, heads);  ///< attention-pool heads
  TORCH_ARG(int64_t, image_size);
  TORCH_ARG(int64_t, width);  ///< stem width; stage k has width * 2^k planes, 4x that out
};

/// Bottleneck block (expansion 4) with anti-aliased striding: conv1 1x1, conv2 3x3, avgpool(stride), conv3 1x1;
/// the residual goes through `downsample` (avgpool, `downsample.0` 1x1 conv, `downsample.1` BatchNorm) when
/// the stride or the width changes.
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};  ///< empty when the residual is the identity

 private:
  int64_t stride_;
  std::shared_ptr<FoldedConvBns> folded_;  // inference on the CPU (src/model/folded_conv.h)
};
TORCH_MODULE(Bottleneck);

/// Attention pooling: the grid's mean token attends over [mean; grid] + positional_embedding with separate
/// `q_proj`, `k_proj`, `v_proj`, then `c_proj` to the output dimension.
class AttentionPool2dImpl : public torch::nn::Module {
 public:
  AttentionPool2dImpl(int64_t spatial_dim, int64_t embed_dim, int64_t heads, int64_t output_dim);
  torch::Tensor forward(const torch::Tensor& x);  ///< [N, C, H, W] -> [N, output_dim]

  torch::Tensor positional_embedding;  ///< [spatial_dim^2 + 1, embed_dim]
  torch::nn::Linear k_proj{nullptr}, q_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};

 private:
  int64_t heads_;
  std::shared_ptr<PackedLinears> packed_;  // inference on the CPU (src/model/packed_linear.h)
};
TORCH_MODULE(AttentionPool2d);

/// The ModifiedResNet image encoder.
class ModifiedResNetImpl : public VisionTowerImpl {
 public:
  explicit ModifiedResNetImpl(const ModifiedResNetOptions& options);
  torch::Tensor forward(const torch::Tensor& images) override;
  /// Attention-pool projections ~ N(0, C^-0.5) and the last BatchNorm of every block zeroed, as the reference.
  void initialize_parameters() override;
  int64_t image_size() const override { return options_.image_size(); }
  /// Refused (clip::Error) when enabled: recomputing the BatchNorms in training mode would update their running
  /// statistics twice per step.
  void set_grad_checkpointing(bool enabled) override;

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  AttentionPool2d attnpool{nullptr};

 private:
  ModifiedResNetOptions options_;
  std::shared_ptr<FoldedConvBns> folded_;  // inference on the CPU (src/model/folded_conv.h)
};
TORCH_MODULE(ModifiedResNet);

}  // namespace clip
