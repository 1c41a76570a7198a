#pragma once
/// Contrastive training of a CLIP model: the whole run from a TrainConfig.
///
///   clip::TrainConfig config = clip::parse_train_args(argc, argv);
///   clip::TrainResult result = clip::train(config);
///
/// One process; the step is symmetric InfoNCE over the batch (all micro-batches of a step are each other's
/// negatives), AdamW with open_clip's parameter groups, cosine or constant schedule after warmup, logit scale
/// clamped to [0, ln 100], non-finite steps skipped (the run stops after `max_nonfinite` in a row, its last
/// checkpoint intact). Checkpoints, metrics.jsonl, config.json, model.safetensors (the final model, loadable
/// alone) and report.html go to `output_dir`.
#include <cstdint>
#include <string>

#include "clip/train/train_config.h"

namespace clip {

/// What a run did.
struct TrainResult {
  int64_t steps = 0;            ///< optimizer steps at the end (including resumed ones)
  int64_t nonfinite_skipped = 0;
  double last_loss = 0;
  std::string last_checkpoint;
  std::string model;            ///< model.safetensors: the final weights with their config (load_model reads it)
  std::string metrics;          ///< metrics.jsonl
  std::string report;           ///< report.html ("" when disabled)
  double zeroshot_top1 = -1;    ///< final zero-shot top-1 in [0, 1] (-1: no zero-shot data)
};

/// Runs training as the config says. Throws clip::Error for bad settings or data, and when training diverges.
TrainResult train(const TrainConfig& config);

}  // namespace clip
