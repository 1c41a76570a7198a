#pragma once
/// One training step: what clip_train does with each batch, and what clip_bench times in train mode.
///
///   clip::InfoNCELoss loss;
///   clip::StepResult r = clip::train_step(*model, optimizer, loss, images, texts);   // r.loss, r.grad_norm
///
/// train_step: zero the gradients; with several ranks, take rank 0's BatchNorm statistics (as DDP does); the
/// loss's gradients (contrastive_backward); the global gradient norm and one finiteness decision that every rank
/// shares (the one host synchronization per step); clipping; AdamW; the logit-scale clamp. A non-finite loss or
/// gradient skips the update and says so in the result.
///
/// contrastive_backward, the gradient part: with accum_freq > 1 the batch is split into micro-batches, the
/// features of all are computed without grad and cached, then each micro-batch is re-run with grad and its loss
/// is taken against the whole batch, so every sample keeps the whole batch as negatives while only one
/// micro-batch's activations are alive at a time (open_clip's accum_freq). The gradients equal the full batch's
/// (exactly, for models without BatchNorm): unlike open_clip, the temperature's gradient is taken once, not once
/// per micro-batch. Distributed: the loss sees the global batch (Loss, clip/train/loss.h); the
/// GradientSynchronizer is armed for the last backward pass and finished before returning, so .grad holds the
/// global average.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "clip/model/clip_model.h"
#include "clip/train/loss.h"

namespace clip {

class AdamW;
class Communicator;
class GradientSynchronizer;

/// How a step spans ranks (all null: one process).
struct DistributedStep {
  Communicator* comm = nullptr;
  GradientSynchronizer* sync = nullptr;
};

/// How a step runs.
struct StepOptions {
  int64_t accum_freq = 1;      ///< micro-batches per step (split as at::chunk does; any split gives the same gradients)
  bool bf16_autocast = false;  ///< forward passes under CUDA bf16 autocast (fp32 master weights)
  double grad_clip_norm = 0;   ///< clip the global gradient norm to this; 0: no clipping
};

/// What one step did; the same on every rank.
struct StepResult {
  double loss = 0;        ///< averaged over ranks (with a local loss, the ranks' shares averaged)
  double grad_norm = 0;   ///< global L2 norm of the gradients before clipping
  bool finite = true;     ///< false: the loss or a gradient was not finite and the update was skipped
};

/// Accumulates the gradients of `loss` on (images, texts) into the model's .grad and returns the loss
/// (detached; with a local loss, this rank's share).
at::Tensor contrastive_backward(CLIPImpl& model, const Loss& loss, const at::Tensor& images, const at::Tensor& texts,
                                const StepOptions& options = {}, const DistributedStep& dist = {});

/// One optimizer step, as described above. The optimizer's learning rate is the caller's to set.
StepResult train_step(CLIPImpl& model, AdamW& optimizer, const Loss& loss, const at::Tensor& images,
                      const at::Tensor& texts, const StepOptions& options = {}, const DistributedStep& dist = {});

/// Clamps logit_scale to [0, ln 100] in place (without grad), as the reference does after every optimizer step.
void clamp_logit_scale(CLIPImpl& model);

}  // namespace clip
