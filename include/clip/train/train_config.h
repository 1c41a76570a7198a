#pragma once
/// Every setting of a training run, read from JSON and overridden by command-line flags.
///
///   clip::TrainConfig config = clip::parse_train_args(argc, argv);   // --config F.json --batch-size 128 ...
///   std::cout << clip::to_json(config);
///
/// Each key of the JSON is also a flag (`batch_size` <-> `--batch-size`); unknown keys and flags are errors,
/// and a value of the wrong type names the key, the value and the source (file or flag).
#include <cstdint>
#include <string>
#include <vector>

namespace clip {

/// A training run's settings (defaults follow open_clip's).
struct TrainConfig {
  // Model
  std::string model;         ///< registry name (RN50, ViT-B-32, ...) or a config in configs/models
  std::string model_config;  ///< path to a model config JSON (instead of `model`)
  std::string init;          ///< checkpoint to start from (fine-tuning); any format load_model reads
  bool lock_image = false;   ///< freeze the image tower (LiT)
  bool grad_checkpointing = false;  ///< recompute Transformer blocks in the backward pass (less memory)

  // Data
  std::string train_data;    ///< a CSV/TSV of image path + caption, a labeled image folder, "synthetic", or
                             ///< WebDataset shards "dir/{00000..01023}.tar" (several joined by "::")
  // Shards (train_data names .tar files; see clip/data/shard_stream.h)
  int64_t train_num_samples = 0;   ///< samples per epoch over all ranks (0: from the shards' sizes.json)
  std::string train_data_weights;  ///< per-source sampling weights joined by "::" (with dataset_resampled)
  bool dataset_resampled = false;  ///< draw shards with replacement (any number of ranks and threads)
  int64_t shuffle_buffer = 1000;   ///< samples shuffled together per loader thread
  std::string json_caption_key = "caption";  ///< caption field of a sample's json when it has no txt
  double max_failure_fraction = 0.1;  ///< stop when more than this fraction of samples (or shards) fails
  bool jpeg_dct_scaling = false;   ///< decode large JPEGs at 1/2-1/8 size in the DCT domain (faster, not exact)
  std::string csv_img_key = "filepath";
  std::string csv_caption_key = "title";
  std::string csv_separator = "\t";
  std::string caption_templates = "simple";  ///< labeled folders: captions are these templates x class names
  std::string class_names;   ///< labeled folders: display names of the subfolders (see map_class_names)
  double val_split = 0.0;    ///< fraction of the training data held out for the retrieval evaluation
  std::string val_data;      ///< a CSV for the retrieval evaluation (instead of val_split)
  std::string zeroshot_data;  ///< a labeled folder for the zero-shot evaluation
  std::string zeroshot_templates = "openai_imagenet";
  std::string zeroshot_class_names;  ///< display names of zeroshot_data's subfolders
  int64_t synthetic_samples = 4096;  ///< samples per epoch of the synthetic data
  bool augment = true;       ///< RandomResizedCrop on training images
  double rrc_scale_min = 0.9;
  double rrc_scale_max = 1.0;
  int workers = 0;           ///< image decoding threads (0: one per core)

  // Optimization
  int64_t epochs = 1;
  int64_t max_steps = 0;     ///< stop after this many steps (0: run all epochs)
  int64_t stop_after = 0;    ///< end this invocation after this many steps, checkpointed, to be resumed (0: off)
  int64_t batch_size = 256;  ///< samples per rank per optimizer step (all micro-batches together)
  int64_t accum_freq = 1;    ///< micro-batches per step; the whole step's batch is every sample's negatives
  double lr = 5e-4;
  double weight_decay = 0.2;
  double beta1 = 0.9;
  double beta2 = 0.0;        ///< 0: the model's default (0.98 ViT, 0.999 ResNet)
  double eps = 0.0;          ///< 0: the model's default (1e-6 ViT, 1e-8 ResNet)
  int64_t warmup = 100;      ///< steps of linear warmup
  std::string schedule = "cosine";  ///< cosine | constant
  double grad_clip_norm = 0.0;      ///< 0: no clipping
  int64_t max_nonfinite = 10;       ///< stop after this many non-finite steps in a row

  // Distributed (one process per GPU; batch_size is per rank, the global batch world_size x batch_size)
  int nproc_per_node = 0;             ///< >1: clip_train starts this many local workers itself
  std::string dist_backend = "auto";  ///< auto (NCCL on CUDA, Gloo on CPU) | gloo | nccl
  int64_t dist_timeout = 1800;        ///< seconds a collective may wait for a missing rank
  bool local_loss = false;            ///< each rank scores its rows against all columns (logits [b, B])
  int64_t bucket_mb = 25;             ///< gradient all-reduce bucket size

  // Runtime
  std::string device = "cpu";
  std::string precision = "fp32";  ///< fp32 | bf16 (autocast on CUDA, fp32 master weights)
  int threads = 0;                 ///< LibTorch CPU threads (0: one per core)
  int64_t seed = 0;

  // Output
  std::string output_dir = "runs/clip";
  int64_t log_every = 10;           ///< steps between metric lines
  int64_t save_every = 0;           ///< steps between checkpoints (0: at the end of each epoch only)
  int64_t keep_checkpoints = 3;     ///< checkpoints kept (oldest deleted)
  int64_t eval_every = 0;           ///< steps between evaluations (0: at the end only)
  std::string resume;               ///< "latest" or a checkpoint path
  bool report = true;               ///< write report.html at the end
};

/// Parses JSON text; `source` names it in errors.
TrainConfig parse_train_config(const std::string& json_text, const std::string& source,
                               const TrainConfig& base = {});

/// The config as JSON (every key; parse_train_config reads it back).
std::string to_json(const TrainConfig& config);

/// `--config FILE` (optional) then every `--key value` flag over it; `--help` prints every flag with its
/// default and exits 0. Throws clip::Error for unknown flags or bad values.
TrainConfig parse_train_args(int argc, const char* const* argv);

/// Checks values that are wrong together (e.g. no model, batch not divisible by accum_freq) with clip::Error.
void validate(const TrainConfig& config);

}  // namespace clip
