#pragma once
/// The interface both image towers (VisionTransformer, ModifiedResNet) implement.
///
///   std::shared_ptr<clip::VisionTowerImpl> tower = model->visual;
///   torch::Tensor features = tower->forward(images);   // [N, 3, R, R] -> [N, embed_dim]
#include <torch/nn/module.h>

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
};

}  // namespace clip
