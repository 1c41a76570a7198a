#include "clip/train/optimizer.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cmath>

#include "clip/dist/communicator.h"
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

AdamW::AdamW(torch::nn::Module& module, const AdamWOptions& options, Communicator* shard)
    : options_(options), shard_(shard != nullptr && shard->size() > 1 ? shard : nullptr) {
  int64_t offset = 0;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    const at::Tensor& p = item.value();
    Param param{item.key(), p, !excluded_from_weight_decay(item.key(), p), {}, {}, offset, 0, p.numel()};
    offset += p.numel();
    if (!shard_) {
      param.exp_avg = at::zeros_like(p, at::MemoryFormat::Preserve);
      param.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Preserve);
      params_.push_back(std::move(param));
      continue;
    }
    if (!p.is_contiguous() || p.scalar_type() != at::kFloat) {
      fail("--shard-optimizer needs contiguous fp32 parameters; ", item.key(), " is not");
    }
    all_.push_back(param);
  }
  if (!shard_) return;
  const int64_t ranks = shard_->size();
  shard_size_ = (offset + ranks - 1) / ranks;
  const int64_t lo = shard_->rank() * shard_size_, hi = std::min(offset, lo + shard_size_);
  for (const Param& p : all_) {
    const int64_t from = std::max(lo, p.offset), to = std::min(hi, p.offset + p.length);
    if (from >= to) continue;
    Param part = p;
    part.begin = from - p.offset;
    part.length = to - from;
    part.exp_avg = at::zeros({part.length}, p.tensor.options().requires_grad(false));
    part.exp_avg_sq = at::zeros({part.length}, p.tensor.options().requires_grad(false));
    params_.push_back(std::move(part));
  }
}

int64_t AdamW::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& p : params_) bytes += (p.exp_avg.numel() + p.exp_avg_sq.numel()) * int64_t(p.exp_avg.element_size());
  return bytes;
}

// Sharded: this rank's parts (in params_ order, its share of the flat layout, padded) from every rank, end to
// end: the flat layout of all parameters, padded at the end.
at::Tensor AdamW::gather_flat(const std::vector<at::Tensor>& parts) const {
  at::Tensor mine = at::zeros({shard_size_}, all_.front().tensor.options().requires_grad(false));
  int64_t at = 0;
  for (const at::Tensor& part : parts) {
    mine.narrow(0, at, part.numel()).copy_(part.reshape(-1));
    at += part.numel();
  }
  return shard_->all_gather(mine);
}

void AdamW::zero_grad() {
  for (auto& p : shard_ ? all_ : params_) p.tensor.mutable_grad() = at::Tensor();
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
      if (shard_) {
        params.push_back(p.tensor.view(-1).narrow(0, p.begin, p.length));
        grads.push_back(p.tensor.grad().reshape(-1).narrow(0, p.begin, p.length));
      } else {
        params.push_back(p.tensor);
        grads.push_back(p.tensor.grad());
      }
      exp_avgs.push_back(p.exp_avg);
      exp_avg_sqs.push_back(p.exp_avg_sq);
    }
    if (params.empty()) continue;
    compat::adamw_step(params, grads, exp_avgs, exp_avg_sqs, lr, beta1, beta2, options_.eps(),
                       decay ? options_.weight_decay() : 0.0, bias1, bias2, step_);
  }
  if (!shard_ || all_.empty()) return;
  // Every rank's updated share, to every rank.
  std::vector<at::Tensor> mine;
  for (const auto& p : params_) mine.push_back(p.tensor.view(-1).narrow(0, p.begin, p.length));
  const at::Tensor flat = gather_flat(mine);
  for (const auto& p : all_) p.tensor.view(-1).copy_(flat.narrow(0, p.offset, p.length));
}

TensorMap AdamW::state_dict() const {
  TensorMap out;
  if (shard_ && !all_.empty()) {
    std::vector<at::Tensor> m, v;
    for (const auto& p : params_) {
      m.push_back(p.exp_avg);
      v.push_back(p.exp_avg_sq);
    }
    const at::Tensor all_m = gather_flat(m), all_v = gather_flat(v);
    for (const auto& p : all_) {
      out[p.name + ".exp_avg"] = all_m.narrow(0, p.offset, p.length).view(p.tensor.sizes()).clone();
      out[p.name + ".exp_avg_sq"] = all_v.narrow(0, p.offset, p.length).view(p.tensor.sizes()).clone();
    }
    out["step"] = at::full({}, step_, at::kLong);
    return out;
  }
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
    const at::Tensor& m = get(p.name + ".exp_avg", p.tensor);
    const at::Tensor& v = get(p.name + ".exp_avg_sq", p.tensor);
    p.exp_avg.copy_(m.reshape(-1).narrow(0, p.begin, p.length).view_as(p.exp_avg));
    p.exp_avg_sq.copy_(v.reshape(-1).narrow(0, p.begin, p.length).view_as(p.exp_avg_sq));
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
