#include "clip/train/step.h"

#include <ATen/ATen.h>

#include <cmath>

#include "clip/dist/communicator.h"
#include "clip/dist/grad_sync.h"
#include "clip/train/loss.h"
#include "util/torch_compat.h"

namespace clip {
namespace {

// The loss of one (micro-)step over this rank's features, across ranks when distributed.
at::Tensor step_loss(const at::Tensor& image, const at::Tensor& text, const at::Tensor& logit_scale,
                     const DistributedStep& dist) {
  if (dist.comm == nullptr) return contrastive_loss(image, text, logit_scale);
  const at::Tensor img = l2_normalize(image), txt = l2_normalize(text);
  const at::Tensor all_img = all_gather_with_grad(*dist.comm, img);
  const at::Tensor all_txt = all_gather_with_grad(*dist.comm, txt);
  const at::TensorOptions labels = img.options().dtype(at::kLong);
  if (dist.local_loss) {
    const int64_t b = img.size(0);
    return contrastive_loss_normalized(img, txt, all_img, all_txt, logit_scale.exp(),
                                       at::arange(b, labels) + dist.comm->rank() * b);
  }
  return contrastive_loss_normalized(all_img, all_txt, all_img, all_txt, logit_scale.exp(),
                                     at::arange(all_img.size(0), labels));
}

}  // namespace

at::Tensor contrastive_backward(CLIPImpl& model, const at::Tensor& images, const at::Tensor& texts, int64_t accum_freq,
                                bool bf16_autocast, const DistributedStep& dist) {
  TORCH_CHECK(accum_freq >= 1 && images.size(0) % accum_freq == 0, "batch of ", images.size(0),
              " does not split into ", accum_freq, " micro-batches");
  at::Tensor loss;
  if (accum_freq == 1) {
    {
      compat::AutocastGuard guard(bf16_autocast, at::kBFloat16);
      loss = step_loss(model.encode_image(images), model.encode_text(texts), model.logit_scale, dist);
    }
    if (dist.sync) dist.sync->arm();
    loss.backward();
  } else {
    const auto image_chunks = images.chunk(accum_freq);
    const auto text_chunks = texts.chunk(accum_freq);
    std::vector<at::Tensor> image_cache, text_cache;
    {
      at::NoGradGuard no_grad;
      compat::AutocastGuard guard(bf16_autocast, at::kBFloat16);
      for (size_t j = 0; j < image_chunks.size(); ++j) {
        image_cache.push_back(model.encode_image(image_chunks[j]));
        text_cache.push_back(model.encode_text(text_chunks[j]));
      }
    }
    for (size_t j = 0; j < image_chunks.size(); ++j) {
      const bool last = j + 1 == image_chunks.size();
      {
        compat::AutocastGuard guard(bf16_autocast, at::kBFloat16);
        std::vector<at::Tensor> all_images = image_cache, all_texts = text_cache;
        all_images[j] = model.encode_image(image_chunks[j]);
        all_texts[j] = model.encode_text(text_chunks[j]);
        // d loss / d logit_scale is the same in every micro-step: take it once, in the last one (whose backward
        // also carries the gradient all-reduce).
        const at::Tensor scale = last ? model.logit_scale : model.logit_scale.detach();
        loss = step_loss(at::cat(all_images), at::cat(all_texts), scale, dist);
      }
      if (last && dist.sync) dist.sync->arm();
      loss.backward();
    }
  }
  if (dist.sync) dist.sync->finish();
  return loss.detach();
}

void clamp_logit_scale(CLIPImpl& model) {
  at::NoGradGuard no_grad;
  model.logit_scale.clamp_(0, std::log(100.0));
}

}  // namespace clip
