#include "clip/dist/grad_sync.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>

namespace clip {

GradientSynchronizer::GradientSynchronizer(Communicator& comm, torch::nn::Module& module, int64_t bucket_bytes)
    : comm_(comm) {
  std::vector<at::Tensor> trainable;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  // Reverse registration order approximates the order gradients are produced.
  std::reverse(trainable.begin(), trainable.end());
  std::vector<std::vector<size_t>> groups;
  int64_t bytes = bucket_bytes;
  for (size_t i = 0; i < trainable.size(); ++i) {
    const int64_t size = trainable[i].numel() * int64_t(trainable[i].element_size());
    const bool same_kind = !groups.empty() && trainable[groups.back().front()].options().type_equal(trainable[i].options());
    if (groups.empty() || bytes + size > bucket_bytes || !same_kind) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(i);
    bytes += size;
  }
  for (size_t b = 0; b < groups.size(); ++b) {
    Bucket bucket;
    int64_t numel = 0;
    for (size_t i : groups[b]) {
      params_.push_back({trainable[i], b, numel});
      bucket.params.push_back(params_.size() - 1);
      numel += trainable[i].numel();
    }
    bucket.flat = at::zeros({numel}, trainable[groups[b].front()].options());
    buckets_.push_back(std::move(bucket));
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    // A void hook observes the gradient and leaves it unchanged.
    params_[i].hook = params_[i].tensor.register_hook([this, i](const at::Tensor& grad) { on_gradient(i, grad); });
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  for (auto& p : params_) p.tensor.remove_hook(p.hook);
}

void GradientSynchronizer::arm() {
  armed_ = true;
  next_to_launch_ = 0;
  launched_in_backward_ = 0;
  for (auto& b : buckets_) {
    b.ready = 0;
    b.pending.reset();
  }
  for (auto& p : params_) p.ready = false;
}

void GradientSynchronizer::on_gradient(size_t index, const at::Tensor& grad) {
  if (!armed_) return;
  Param& p = params_[index];
  Bucket& bucket = buckets_[p.bucket];
  at::NoGradGuard no_grad;
  // The hook sees this pass's contribution before it is accumulated: add what earlier passes left in .grad.
  at::Tensor slot = bucket.flat.narrow(0, p.offset, p.tensor.numel()).view_as(p.tensor);
  if (p.tensor.grad().defined()) {
    at::add_out(slot, p.tensor.grad(), grad);
  } else {
    slot.copy_(grad);
  }
  if (!p.ready) {
    p.ready = true;
    if (++bucket.ready == bucket.params.size()) {
      const size_t before = next_to_launch_;
      launch_ready_buckets();
      launched_in_backward_ += next_to_launch_ - before;
    }
  }
}

void GradientSynchronizer::launch_ready_buckets() {
  while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].ready == buckets_[next_to_launch_].params.size()) {
    Bucket& b = buckets_[next_to_launch_++];
    b.pending = comm_.allreduce_sum_async(b.flat);
  }
}

void GradientSynchronizer::finish() {
  at::NoGradGuard no_grad;
  // Parameters that got no gradient in the last pass: what .grad holds (earlier passes), else zero.
  for (auto& p : params_) {
    if (p.ready) continue;
    Bucket& bucket = buckets_[p.bucket];
    at::Tensor slot = bucket.flat.narrow(0, p.offset, p.tensor.numel()).view_as(p.tensor);
    if (p.tensor.grad().defined()) {
      slot.copy_(p.tensor.grad());
    } else {
      slot.zero_();
    }
    p.ready = true;
    ++bucket.ready;
  }
  launch_ready_buckets();
  const double scale = 1.0 / comm_.size();
  for (auto& b : buckets_) {
    b.pending->wait();
    b.pending.reset();
    b.flat.mul_(scale);
  }
  for (auto& p : params_) {
    at::Tensor average = buckets_[p.bucket].flat.narrow(0, p.offset, p.tensor.numel()).view_as(p.tensor);
    if (p.tensor.grad().defined()) {
      p.tensor.mutable_grad().copy_(average);
    } else {
      p.tensor.mutable_grad() = average.clone();
    }
  }
  armed_ = false;
}

}  // namespace clip
