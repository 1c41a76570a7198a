// clip_step_probe: one training step of libclip, for tests/reference/test_train_step.py to hold against open_clip's
// ClipLoss and torch.optim.AdamW with open_clip's parameter groups. Test-only; not installed.
//   clip_step_probe CHECKPOINT CONFIG BATCH OUTPUT LR WEIGHT_DECAY BETA1 BETA2 EPS [GRADS]
// BATCH: safetensors with "image" [B,3,R,R] and "text" [B,L]. OUTPUT: "loss" (scalar), "grad.<name>" (the first
// backward's gradients) and "step1.<name>" (every parameter after one AdamW step and the logit-scale clamp), in
// train mode, fp32, CPU. With GRADS (safetensors of "<name>" gradients), the step uses those gradients instead of its
// own (the optimizer alone, from the reference's gradients).
#include <cstdio>
#include <cstdlib>
#include <string>

#include <torch/torch.h>

#include "clip/io/safetensors.h"
#include "clip/model/checkpoint.h"
#include "clip/train/loss.h"
#include "clip/train/optimizer.h"
#include "clip/train/step.h"

int main(int argc, char** argv) {
  if (argc != 10 && argc != 11) {
    std::fprintf(stderr, "usage: clip_step_probe CHECKPOINT CONFIG BATCH OUTPUT LR WD BETA1 BETA2 EPS [GRADS]\n");
    return 2;
  }
  try {
    clip::CLIP model = clip::load_model(argv[1], clip::LoadOptions().config_path(argv[2]));
    model->train();
    const clip::TensorMap batch = clip::read_safetensors(argv[3]).tensors;
    const clip::AdamWOptions options = clip::AdamWOptions()
                                           .lr(std::atof(argv[5]))
                                           .weight_decay(std::atof(argv[6]))
                                           .beta1(std::atof(argv[7]))
                                           .beta2(std::atof(argv[8]))
                                           .eps(std::atof(argv[9]));
    clip::AdamW optimizer(*model, options);
    at::Tensor loss = clip::contrastive_loss(model->encode_image(batch.at("image")),
                                             model->encode_text(batch.at("text").to(torch::kLong)), model->logit_scale);
    loss.backward();
    clip::TensorMap out;
    out["loss"] = loss.detach().clone();
    for (const auto& item : model->named_parameters()) {
      if (item.value().grad().defined()) out["grad." + item.key()] = item.value().grad().clone();
    }
    if (argc == 11) {
      const clip::TensorMap given = clip::read_safetensors(argv[10]).tensors;
      for (const auto& item : model->named_parameters()) item.value().mutable_grad() = given.at(item.key()).clone();
    }
    optimizer.step();
    clip::clamp_logit_scale(*model);
    for (const auto& item : model->named_parameters()) out["step1." + item.key()] = item.value().detach().clone();
    clip::write_safetensors(argv[4], out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clip_step_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
