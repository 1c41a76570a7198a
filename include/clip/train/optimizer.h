#pragma once
/// AdamW with open_clip's parameter groups, and the learning-rate schedule.
///
///   clip::AdamW opt(*model, clip::default_adamw_options(model->config()).lr(5e-4));
///   opt.set_lr(clip::cosine_lr(step, base_lr, warmup, total));
///   loss.backward(); opt.step(); opt.zero_grad();
///
/// Decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW. Parameters with fewer than 2 dimensions
/// and names containing `bn`, `ln`, `bias` or `logit_scale` get no weight decay (open_clip's rule). State is kept
/// per parameter name, so it can be saved and restored with the model's state dict.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <string>
#include <vector>

#include "clip/io/tensor_map.h"
#include "clip/model/config.h"

namespace torch::nn {
class Module;
}

namespace clip {

/// Options of AdamW.
struct AdamWOptions {
  TORCH_ARG(double, lr) = 5e-4;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.98;
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(double, weight_decay) = 0.2;
};

/// open_clip's defaults: lr 5e-4, weight decay 0.2; betas 0.9/0.98 and eps 1e-6 for ViTs, 0.9/0.999 and 1e-8
/// for ResNets.
AdamWOptions default_adamw_options(const ModelConfig& config);

/// open_clip's exclusion rule: no weight decay for this parameter.
bool excluded_from_weight_decay(const std::string& name, const at::Tensor& parameter);

/// AdamW over a module's trainable parameters (requires_grad at construction).
class AdamW {
 public:
  AdamW(torch::nn::Module& module, const AdamWOptions& options);

  /// One update from the current gradients; parameters without a gradient are skipped.
  void step();
  /// Sets every gradient to None.
  void zero_grad();
  void set_lr(double lr) { options_.lr(lr); }
  double lr() const { return options_.lr(); }
  int64_t steps_taken() const { return step_; }

  /// The state as named tensors: `<param>.exp_avg`, `<param>.exp_avg_sq`, and `step` (int64 scalar).
  TensorMap state_dict() const;
  /// Restores state_dict()'s output; every key and shape checked (clip::Error naming `source`).
  void load_state_dict(const TensorMap& state, const std::string& source);

 private:
  struct Param {
    std::string name;
    at::Tensor tensor;
    bool decay;
    at::Tensor exp_avg, exp_avg_sq;
  };
  std::vector<Param> params_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

/// open_clip's cosine schedule: linear warmup to base_lr over `warmup` steps ((step + 1) / warmup), then
/// 0.5 (1 + cos(pi (step - warmup) / (total - warmup))) base_lr.
double cosine_lr(int64_t step, double base_lr, int64_t warmup, int64_t total);

/// Constant after the same linear warmup.
double constant_lr(int64_t step, double base_lr, int64_t warmup);

}  // namespace clip
