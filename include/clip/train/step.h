#pragma once
/// The forward and backward pass of one training step, with gradient accumulation.
///
///   at::Tensor loss = clip::contrastive_backward(*model, images, texts, /*accum_freq=*/4);
///   optimizer.step();
///
/// With accum_freq > 1 the batch is split into micro-batches: the features of all are computed without grad
/// and cached, then each micro-batch is re-run with grad and its loss is taken against the whole batch, so every
/// sample keeps the whole batch as negatives while only one micro-batch's activations are alive at a time
/// (open_clip's accum_freq). The gradients equal the full batch's (exactly, for models without BatchNorm):
/// unlike open_clip, the temperature's gradient is taken once, not once per micro-batch.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "clip/model/clip_model.h"

namespace clip {

/// Accumulates the gradients of the contrastive loss of (images, texts) into the model's .grad and returns the
/// loss (detached). `bf16_autocast` runs the forward passes under CUDA bf16 autocast.
at::Tensor contrastive_backward(CLIPImpl& model, const at::Tensor& images, const at::Tensor& texts,
                                int64_t accum_freq = 1, bool bf16_autocast = false);

}  // namespace clip
