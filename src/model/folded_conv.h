#pragma once
// Convolution + BatchNorm for inference on the CPU: the BatchNorm (eval mode: its running statistics) folded into
// the convolution's weight and bias once, both kept channels-last, so that each block runs one convolution with a
// bias instead of a convolution, a normalization pass and a weight reorder (RN50 image tower at batch 1 on LibTorch
// 2.11, 2 threads: docs/performance.md). Only without autograd, on fp32/fp64 CPU tensors (or bf16 activations when
// the thread's inference precision is bf16: the fold is then kept in bf16) and with the BatchNorm in eval mode; everything else runs the modules themselves. The result differs from bn(conv(x)) by rounding alone
// (the fold is computed in fp64). A fold is remade when the convolution's weight changes (another storage, or its
// version counter moved: an optimizer step, a load) or any of the BatchNorm's four vectors does. Those are compared
// by value, a few hundred numbers per layer: a training-mode forward updates the running statistics inside the
// kernel without moving their version counters.
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include <array>
#include <mutex>
#include <vector>

namespace clip {

class FoldedConvBns {
 public:
  /// bn(conv(x)); `slot` names the pair (one fold per slot).
  at::Tensor operator()(size_t slot, torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x);

 private:
  struct Fold {
    at::Tensor weight, bias;
    const void* source_data = nullptr;      // the convolution's weight when folded
    int64_t source_version = -1;
    std::array<at::Tensor, 4> statistics;  // copies of the BatchNorm's weight, bias, running mean and variance
  };
  std::mutex mutex_;
  std::vector<Fold> folds_;
};

}  // namespace clip
