#include "clip/train/step.h"

#include <ATen/ATen.h>

#include <cmath>

#include "clip/dist/communicator.h"
#include "clip/dist/grad_sync.h"
#include "clip/train/optimizer.h"
#include "util/torch_compat.h"

namespace clip {

at::Tensor contrastive_backward(CLIPImpl& model, const Loss& loss_fn, const at::Tensor& images,
                                const at::Tensor& texts, const StepOptions& options, const DistributedStep& dist) {
  const int64_t accum_freq = options.accum_freq;
  TORCH_CHECK(accum_freq >= 1, "accum_freq must be at least 1, got ", accum_freq);
  const bool bf16 = options.bf16_autocast;
  at::Tensor loss;
  if (accum_freq == 1) {
    {
      compat::AutocastGuard guard(bf16, at::kBFloat16);
      loss = loss_fn({model.encode_image(images), model.encode_text(texts), model.logit_scale, model.logit_bias},
                     dist.comm);
    }
    if (dist.sync) dist.sync->arm();
    loss.backward();
  } else {
    const auto image_chunks = images.chunk(accum_freq);
    const auto text_chunks = texts.chunk(accum_freq);
    std::vector<at::Tensor> image_cache, text_cache;
    {
      at::NoGradGuard no_grad;
      compat::AutocastGuard guard(bf16, at::kBFloat16);
      for (size_t j = 0; j < image_chunks.size(); ++j) {
        image_cache.push_back(model.encode_image(image_chunks[j]));
        text_cache.push_back(model.encode_text(text_chunks[j]));
      }
    }
    for (size_t j = 0; j < image_chunks.size(); ++j) {
      const bool last = j + 1 == image_chunks.size();
      {
        compat::AutocastGuard guard(bf16, at::kBFloat16);
        std::vector<at::Tensor> all_images = image_cache, all_texts = text_cache;
        all_images[j] = model.encode_image(image_chunks[j]);
        all_texts[j] = model.encode_text(text_chunks[j]);
        // d loss / d logit_scale (and d logit_bias) is the same in every micro-step: take it once, in the last one
        // (whose backward also carries the gradient all-reduce).
        const at::Tensor scale = last ? model.logit_scale : model.logit_scale.detach();
        const at::Tensor bias = last || !model.logit_bias.defined() ? model.logit_bias : model.logit_bias.detach();
        loss = loss_fn({at::cat(all_images), at::cat(all_texts), scale, bias}, dist.comm);
      }
      if (last && dist.sync) dist.sync->arm();
      loss.backward();
    }
  }
  if (dist.sync) dist.sync->finish();
  return loss.detach();
}

StepResult train_step(CLIPImpl& model, AdamW& optimizer, const Loss& loss_fn, const at::Tensor& images,
                      const at::Tensor& texts, const StepOptions& options, const DistributedStep& dist) {
  optimizer.zero_grad();
  if (dist.comm && !model.buffers().empty()) {
    broadcast_module_state(*dist.comm, model.buffers());  // BatchNorm statistics follow rank 0, as DDP's
  }
  const at::Tensor loss = contrastive_backward(model, loss_fn, images, texts, options, dist);
  std::vector<at::Tensor> grads;
  for (const auto& p : model.parameters()) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  const at::Tensor norm = at::stack(at::_foreach_norm(grads, 2)).norm();
  at::Tensor health = at::stack({loss.to(at::kFloat), norm.to(at::kFloat)});
  if (dist.comm) {
    // One decision on every rank: a non-finite value anywhere makes the sum non-finite.
    dist.comm->allreduce_sum(health);
    health = health / dist.comm->size();
  }
  health = health.to(at::kCPU);
  StepResult r;
  r.loss = health[0].item<double>();
  r.grad_norm = health[1].item<double>();
  r.finite = std::isfinite(r.loss) && std::isfinite(r.grad_norm);
  if (!r.finite) return r;
  if (options.grad_clip_norm > 0 && r.grad_norm > options.grad_clip_norm) {
    at::_foreach_mul_(grads, options.grad_clip_norm / (r.grad_norm + 1e-6));
  }
  optimizer.step();
  clamp_logit_scale(model);
  return r;
}

void clamp_logit_scale(CLIPImpl& model) {
  at::NoGradGuard no_grad;
  model.logit_scale.clamp_(0, std::log(100.0));
}

}  // namespace clip
