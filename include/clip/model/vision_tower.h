#pragma once
/// The interface both image towers (VisionTransformer, ModifiedResNet) implement.
///
///   clip::VisionTower tower = model->visual;
///   torch::Tensor features = tower->forward(images);   // [N, 3, R, R] -> [N, embed_dim]
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace clip {

/// An image encoder: normalized images [N, 3, R, R] to projected features [N, embed_dim].
class VisionTowerImpl : public torch::nn::Module {
 public:
  virtual ~VisionTowerImpl() = default;
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  /// The reference's initialization of this tower's parameters.
  virtual void initialize_parameters() = 0;
  /// The input resolution R the positional embeddings were built for.
  virtual int64_t image_size() const = 0;
  /// Recompute activations in the backward pass instead of keeping them (less memory, ~30% more compute).
  /// Throws clip::Error for a tower that cannot (the ModifiedResNet: recomputing its BatchNorms in training
  /// mode would update their running statistics twice per step).
  virtual void set_grad_checkpointing(bool enabled) = 0;
};

/// A holder of either tower (ModuleHolder: `visual->forward(x)`, `visual.ptr()`).
TORCH_MODULE(VisionTower);

}  // namespace clip
