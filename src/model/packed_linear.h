#pragma once
// Linear layers for inference on the CPU, each layer's weights prepared once for the precision the thread runs
// (clip/model/precision.h):
// - fp32: packed for MKL's GEMM (LibTorch 2.x with MKL): at the 50-row products of a ViT-B/32 image the packed
//   product runs 1.3-1.4x faster than at::linear, with the same result (docs/performance.md);
// - int8: quantized per output channel (symmetric) and packed by LibTorch's quantized engine (oneDNN), run as
//   dynamic quantized linear layers (the input quantized per call, per tensor); fp32 in and out;
// - bf16: a bf16 copy of the weight and bias; the input is cast to bf16 and the output back to its dtype.
// Only without autograd, on fp32 CPU tensors; everything else is at::linear. A layer's preparation is remade
// when its weight or bias changes (another storage, or its version counter moved: an optimizer step, a load), the
// precision does, or (MKL's packs) the product's row count does. It costs one more copy of each weight (a
// quarter of it for int8, half for bf16).
#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "clip/model/precision.h"

namespace clip {

/// The quantized engine that packs int8 weights: oneDNN where this LibTorch has it (on this project's AVX-512 machine
/// it measured fastest on LibTorch 1.13 and 2.11, docs/performance.md), else x86, else FBGEMM; nullopt with none
/// (int8_available() in clip/model/precision.h asks this).
std::optional<at::QEngine> preferred_int8_engine();

class PackedLinears {
 public:
  /// x W^T + b; `slot` names the layer (one preparation per slot).
  at::Tensor operator()(size_t slot, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

  /// out_scale (in_scale x W^T + b), with both scales folded into the slot's prepared weights: for the reduced
  /// precisions only (int8, bf16), where a layer's weights are a copy anyway. The scales of a slot never change.
  at::Tensor scaled(size_t slot, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double in_scale,
                    double out_scale);

 private:
  struct Int8Weights;  // LibTorch's packed quantized weights (src/model/packed_linear.cpp)
  struct Pack {
    InferencePrecision precision = InferencePrecision::fp32;
    at::Tensor packed;                     // fp32: MKL's packed weight; bf16: the weight in bf16
    at::Tensor bias;                       // bf16: the bias in bf16
    std::shared_ptr<Int8Weights> int8;     // int8
    const void* data = nullptr;       // the weight it was made from
    int64_t version = -1;
    const void* bias_data = nullptr;  // and the bias (int8 and bf16 hold a copy of it)
    int64_t bias_version = -1;
    int64_t rows = -1;
  };
  at::Tensor run(size_t slot, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double in_scale,
                 double out_scale);

  std::mutex mutex_;
  std::vector<Pack> packs_;
};

}  // namespace clip
