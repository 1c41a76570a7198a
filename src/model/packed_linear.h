#pragma once
// Linear layers for inference on the CPU with weights packed once for MKL's GEMM (LibTorch 2.x with MKL): at the
// 50-row products of a ViT-B/32 image the packed product runs 1.3-1.4x faster than at::linear, with the same
// result (docs/performance.md). Only without autograd, on fp32 CPU tensors; everything else is at::linear.
// A pack is remade when its weight changes (another storage, or its version counter moved: an optimizer step,
// a load) or the product's row count does. It costs one more copy of each packed weight's memory.
#include <ATen/ATen.h>

#include <mutex>
#include <vector>

namespace clip {

class PackedLinears {
 public:
  /// x W^T + b; `slot` names the layer (one pack per slot).
  at::Tensor operator()(size_t slot, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

 private:
  struct Pack {
    at::Tensor packed;
    const void* data = nullptr;
    int64_t version = -1;
    int64_t rows = -1;
  };
  std::mutex mutex_;
  std::vector<Pack> packs_;
};

}  // namespace clip
