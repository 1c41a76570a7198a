#include "clip/train/optimizer.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cmath>

#include "clip/util/error.h"
#include "util/torch_compat.h"

namespace clip {

AdamWOptions default_adamw_options(const ModelConfig& config) {
  AdamWOptions o;
  if (config.vision.is_resnet()) o.beta2(0.999).eps(1e-8);
  return o;
}

bool excluded_from_weight_decay(const std::string& name, const at::Tensor& parameter) {
  return parameter.dim() < 2 || name.find("bn") != std::string::npos || name.find("ln") != std::string::npos ||
         name.find("bias") != std::string::npos || name.find("logit_scale") != std::string::npos;
}

AdamW::AdamW(torch::nn::Module& module, const AdamWOptions& options) : options_(options) {
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    const at::Tensor& p = item.value();
    params_.push_back({item.key(), p, !excluded_from_weight_decay(item.key(), p), at::zeros_like(p, at::MemoryFormat::Preserve),
                       at::zeros_like(p, at::MemoryFormat::Preserve)});
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.tensor.mutable_grad() = at::Tensor();
}

void AdamW::step() {
  at::NoGradGuard no_grad;
  ++step_;
  const double beta1 = options_.beta1(), beta2 = options_.beta2(), lr = options_.lr();
  const double bias1 = 1 - std::pow(beta1, double(step_));
  const double bias2 = 1 - std::pow(beta2, double(step_));
  // Group by weight decay so each group is a handful of multi-tensor (foreach / fused) calls.
  for (const bool decay : {true, false}) {
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
    for (auto& p : params_) {
      if (p.decay != decay || !p.tensor.grad().defined()) continue;
      params.push_back(p.tensor);
      grads.push_back(p.tensor.grad());
      exp_avgs.push_back(p.exp_avg);
      exp_avg_sqs.push_back(p.exp_avg_sq);
    }
    if (params.empty()) continue;
    compat::adamw_step(params, grads, exp_avgs, exp_avg_sqs, lr, beta1, beta2, options_.eps(),
                       decay ? options_.weight_decay() : 0.0, bias1, bias2, step_);
  }
}

TensorMap AdamW::state_dict() const {
  TensorMap out;
  for (const auto& p : params_) {
    out[p.name + ".exp_avg"] = p.exp_avg;
    out[p.name + ".exp_avg_sq"] = p.exp_avg_sq;
  }
  out["step"] = at::full({}, step_, at::kLong);
  return out;
}

void AdamW::load_state_dict(const TensorMap& state, const std::string& source) {
  auto get = [&](const std::string& key, const at::Tensor& like) -> const at::Tensor& {
    auto it = state.find(key);
    if (it == state.end()) fail(source, ": optimizer state has no '", key, "'; was it saved for another model?");
    if (it->second.sizes() != like.sizes()) {
      fail(source, ": optimizer state '", key, "' has shape ", shape_string(it->second.sizes()), ", expected ",
           shape_string(like.sizes()));
    }
    return it->second;
  };
  auto step = state.find("step");
  if (step == state.end() || step->second.numel() != 1) fail(source, ": optimizer state has no 'step'");
  at::NoGradGuard no_grad;
  for (auto& p : params_) {
    const at::Tensor& m = get(p.name + ".exp_avg", p.exp_avg);
    const at::Tensor& v = get(p.name + ".exp_avg_sq", p.exp_avg_sq);
    p.exp_avg.copy_(m);
    p.exp_avg_sq.copy_(v);
  }
  step_ = step->second.item<int64_t>();
}

double cosine_lr(int64_t step, double base_lr, int64_t warmup, int64_t total) {
  if (step < warmup) return base_lr * double(step + 1) / double(warmup);
  const int64_t decay_steps = total - warmup;
  if (decay_steps <= 0) return base_lr;
  const double progress = std::min(1.0, double(step - warmup) / double(decay_steps));
  return 0.5 * (1 + std::cos(M_PI * progress)) * base_lr;
}

double constant_lr(int64_t step, double base_lr, int64_t warmup) {
  return step < warmup ? base_lr * double(step + 1) / double(warmup) : base_lr;
}

}  // namespace clip
