#include "clip/train/optimizer.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cmath>
#include <map>

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

AdamW::AdamW(torch::nn::Module& module, const AdamWOptions& options, Communicator* shard, int64_t gather_elements)
    : options_(options), shard_(shard != nullptr && shard->size() > 1 ? shard : nullptr),
      gather_elements_(gather_elements) {
  if (gather_elements < 1) fail("AdamW: gather_elements must be positive, got ", gather_elements);
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
  if (shard_ && !all_.empty()) gather_parameters();
}

// Calls f(param, first element of its span, first element of the range, count) for each entry of `list` (sorted,
// each spanning [offset + begin, offset + begin + length) of the flat layout) overlapping [begin, begin + count).
template <typename F>
void AdamW::for_each_overlap(const std::vector<Param>& list, int64_t begin, int64_t count, F&& f) {
  const auto start = [](const Param& p) { return p.offset + p.begin; };
  auto it = std::upper_bound(list.begin(), list.end(), begin, [&](int64_t at, const Param& p) { return at < start(p); });
  if (it != list.begin()) --it;
  for (; it != list.end() && start(*it) < begin + count; ++it) {
    const int64_t from = std::max(begin, start(*it)), to = std::min(begin + count, start(*it) + it->length);
    if (from < to) f(*it, from - start(*it), from - begin, to - from);
  }
}

// Every rank's updated share to every rank, a slice of each share at a time: the buffers in flight stay near
// gather_elements_ elements however large the model, instead of a second copy of it.
void AdamW::gather_parameters() {
  const int64_t ranks = shard_->size(), lo = shard_->rank() * shard_size_;
  const int64_t slice = std::max<int64_t>(1, gather_elements_ / ranks);
  for (int64_t at = 0; at < shard_size_; at += slice) {
    const int64_t count = std::min(slice, shard_size_ - at);
    at::Tensor mine = at::zeros({count}, all_.front().tensor.options().requires_grad(false));
    for_each_overlap(all_, lo + at, count, [&](const Param& p, int64_t in_param, int64_t in_range, int64_t n) {
      mine.narrow(0, in_range, n).copy_(p.tensor.view(-1).narrow(0, in_param, n));
    });
    const at::Tensor all = shard_->all_gather(mine);
    for (int64_t r = 0; r < ranks; ++r) {
      if (r == shard_->rank()) continue;
      const at::Tensor theirs = all.narrow(0, r * count, count);
      for_each_overlap(all_, r * shard_size_ + at, count, [&](const Param& p, int64_t in_param, int64_t in_range, int64_t n) {
        p.tensor.view(-1).narrow(0, in_param, n).copy_(theirs.narrow(0, in_range, n));
      });
    }
  }
}

TensorMap AdamW::state_dict() const {
  TensorMap out;
  if (shard_ && !all_.empty()) {
    // Every rank's moments, a slice of each share at a time, straight into the whole-state tensors.
    std::map<std::string, at::Tensor> m, v;
    for (const auto& p : all_) {
      m[p.name] = at::zeros(p.tensor.sizes(), p.tensor.options().requires_grad(false));
      v[p.name] = at::zeros(p.tensor.sizes(), p.tensor.options().requires_grad(false));
    }
    const int64_t ranks = shard_->size(), lo = shard_->rank() * shard_size_;
    const int64_t slice = std::max<int64_t>(1, gather_elements_ / (2 * ranks));
    for (int64_t at = 0; at < shard_size_; at += slice) {
      const int64_t count = std::min(slice, shard_size_ - at);
      at::Tensor mine = at::zeros({2 * count}, all_.front().tensor.options().requires_grad(false));
      for_each_overlap(params_, lo + at, count, [&](const Param& p, int64_t in_part, int64_t in_range, int64_t n) {
        mine.narrow(0, in_range, n).copy_(p.exp_avg.narrow(0, in_part, n));
        mine.narrow(0, count + in_range, n).copy_(p.exp_avg_sq.narrow(0, in_part, n));
      });
      const at::Tensor all = shard_->all_gather(mine);
      for (int64_t r = 0; r < ranks; ++r) {
        const int64_t base = r * 2 * count;
        for_each_overlap(all_, r * shard_size_ + at, count, [&](const Param& p, int64_t in_param, int64_t in_range, int64_t n) {
          m.at(p.name).view(-1).narrow(0, in_param, n).copy_(all.narrow(0, base + in_range, n));
          v.at(p.name).view(-1).narrow(0, in_param, n).copy_(all.narrow(0, base + count + in_range, n));
        });
      }
    }
    for (const auto& p : all_) {
      out[p.name + ".exp_avg"] = m.at(p.name);
      out[p.name + ".exp_avg_sq"] = v.at(p.name);
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
