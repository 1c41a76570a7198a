#include "clip/train/step.h"

#include <ATen/ATen.h>

#include "clip/train/loss.h"
#include "util/torch_compat.h"

namespace clip {

at::Tensor contrastive_backward(CLIPImpl& model, const at::Tensor& images, const at::Tensor& texts, int64_t accum_freq,
                                bool bf16_autocast) {
  TORCH_CHECK(accum_freq >= 1 && images.size(0) % accum_freq == 0, "batch of ", images.size(0),
              " does not split into ", accum_freq, " micro-batches");
  if (accum_freq == 1) {
    at::Tensor loss;
    {
      compat::AutocastGuard guard(bf16_autocast, at::kBFloat16);
      loss = contrastive_loss(model.encode_image(images), model.encode_text(texts), model.logit_scale);
    }
    loss.backward();
    return loss.detach();
  }
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
  at::Tensor loss;
  for (size_t j = 0; j < image_chunks.size(); ++j) {
    {
      compat::AutocastGuard guard(bf16_autocast, at::kBFloat16);
      std::vector<at::Tensor> all_images = image_cache, all_texts = text_cache;
      all_images[j] = model.encode_image(image_chunks[j]);
      all_texts[j] = model.encode_text(text_chunks[j]);
      // d loss / d logit_scale is the same in every micro-step: take it once.
      const at::Tensor scale = j == 0 ? model.logit_scale : model.logit_scale.detach();
      loss = contrastive_loss(at::cat(all_images), at::cat(all_texts), scale);
    }
    loss.backward();
  }
  return loss.detach();
}

}  // namespace clip
