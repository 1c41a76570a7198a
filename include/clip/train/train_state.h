#pragma once
/// Training checkpoints: everything needed to continue a run exactly, in one safetensors file.
///
///   clip::save_train_checkpoint(clip::checkpoint_path(dir, step), *model, optimizer.state_dict(), progress, config_json);
///   std::string latest = clip::latest_checkpoint(dir);   // "" when there is none
///
/// Tensors: `model.<name>` (the model's state dict), `optim.<name>.exp_avg|exp_avg_sq` and `optim.step`,
/// `rng.cpu` (the default CPU generator's state). Metadata: `clip_train_checkpoint`, `progress` (step, epoch,
/// position in the epoch, samples seen, skipped steps, the data source's position), `train_config` (the resolved run settings) and `config`
/// (the model config), so load_model and clip_zeroshot read a training checkpoint directly. Files are written
/// atomically: a crash or a full disk leaves the previous checkpoint intact.
#include <cstdint>
#include <string>
#include <vector>

#include "clip/io/tensor_map.h"
#include "clip/model/clip_model.h"
#include "clip/train/optimizer.h"

namespace clip {

/// Where a run is.
struct TrainProgress {
  int64_t step = 0;            ///< optimizer steps taken
  int64_t epoch = 0;           ///< current epoch (0-based)
  int64_t batch_in_epoch = 0;  ///< batches of `epoch` already consumed
  int64_t samples_seen = 0;
  int64_t nonfinite_skipped = 0;  ///< steps skipped for a non-finite loss or gradient, over the run
  std::string data_position;      ///< the data source's own record (shard stream positions, JSON); "" if none
  int64_t world_size = 0;         ///< ranks of the run that wrote it (0: not recorded, older checkpoints)
  int64_t global_batch = 0;       ///< samples per step over all ranks (batch_in_epoch counts these)
};

/// A checkpoint read back.
struct TrainCheckpoint {
  std::string path;
  TensorMap model;
  TensorMap optimizer;
  at::Tensor cpu_rng_state;
  TrainProgress progress;
  std::string train_config_json;
  std::string model_config_json;
};

/// `dir`/checkpoints/step_<8 digits>.safetensors
std::string checkpoint_path(const std::string& output_dir, int64_t step);

/// Writes a checkpoint atomically (temp file, fsync, rename); errors (a full disk) name the file.
/// `optimizer_state` is AdamW::state_dict()'s (with a sharded optimizer, a collective every rank takes part in
/// before one rank writes).
void save_train_checkpoint(const std::string& path, CLIPImpl& model, const TensorMap& optimizer_state,
                           const TrainProgress& progress, const std::string& train_config_json);

/// Reads a checkpoint written by save_train_checkpoint; errors name the file and what is missing.
TrainCheckpoint load_train_checkpoint(const std::string& path);

/// The newest checkpoint in `dir`/checkpoints that reads back, or "" when there is none. Stale temporary files
/// of interrupted writes are removed.
std::string latest_checkpoint(const std::string& output_dir);

/// The files of a run in `output_dir` (checkpoints/step_*.safetensors, metrics.jsonl, zeroshot_details.json,
/// model.safetensors, report.html); empty when it holds none.
std::vector<std::string> run_files(const std::string& output_dir);

/// Deletes all but the newest `keep` checkpoints.
void prune_checkpoints(const std::string& output_dir, int64_t keep);

}  // namespace clip
