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
///
/// Distributed: the normalized features of every rank are gathered (all_gather_with_grad), so the loss sees the
/// global batch; with `local_loss` each rank scores only its own rows against all columns (logits [b, B]
/// instead of [B, B], the same gradients). The GradientSynchronizer is armed for the last backward pass and
/// finished before returning, so .grad holds the global average.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "clip/model/clip_model.h"

namespace clip {

class Communicator;
class GradientSynchronizer;

/// How a step spans ranks (all null: one process).
struct DistributedStep {
  Communicator* comm = nullptr;
  GradientSynchronizer* sync = nullptr;
  bool local_loss = false;
};

/// Accumulates the gradients of the contrastive loss of (images, texts) into the model's .grad and returns the
/// loss (detached; with local_loss, this rank's share). `bf16_autocast` runs the forward passes under CUDA bf16
/// autocast.
at::Tensor contrastive_backward(CLIPImpl& model, const at::Tensor& images, const at::Tensor& texts,
                                int64_t accum_freq = 1, bool bf16_autocast = false,
                                const DistributedStep& dist = {});

/// Clamps logit_scale to [0, ln 100] in place (without grad), as the reference does after every optimizer step.
void clamp_logit_scale(CLIPImpl& model);

}  // namespace clip
