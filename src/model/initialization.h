#pragma once
// Whether constructing a model draws its initial weights. load_model builds the model under a
// SkipWeightInitialization guard: the checkpoint overwrites every parameter and buffer right after, so drawing
// ViT-B/32's 151M random numbers first would only cost time (about a second on a 2-core CPU; the cold start,
// docs/performance.md). Model-layer code.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace clip::detail {

/// False while a SkipWeightInitialization guard lives on this thread.
bool initializing_weights();

/// While it lives, models built on this thread leave their own weights uninitialized (torch::empty).
class SkipWeightInitialization {
 public:
  SkipWeightInitialization();
  ~SkipWeightInitialization();
  SkipWeightInitialization(const SkipWeightInitialization&) = delete;
  SkipWeightInitialization& operator=(const SkipWeightInitialization&) = delete;

 private:
  bool previous_;
};

/// scale * randn(shape), drawn exactly as the reference draws it; uninitialized under SkipWeightInitialization.
at::Tensor scaled_randn(at::IntArrayRef shape, double scale);

/// torch::nn::Linear / Conv2d as LibTorch builds them (its own initialization, the same random draws); under
/// SkipWeightInitialization the same modules with uninitialized weights (LibTorch's constructors always draw).
torch::nn::Linear linear(int64_t in, int64_t out, bool bias = true);
torch::nn::Conv2d conv2d(const torch::nn::Conv2dOptions& options);

}  // namespace clip::detail
