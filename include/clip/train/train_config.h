#pragma once
/// Every setting of a training run, in typed groups; the same settings as flat JSON keys and command-line flags.
///
///   clip::TrainConfig config;                          // open_clip's defaults
///   config.model.name = "ViT-B-32";
///   config.data.train_data = "train.csv";
///   config.optimizer.schedule = clip::LrSchedule::cosine;
///   config = clip::parse_train_config(R"({"batch_size": 128, "lr": 1e-4})", "inline", config);
///   std::cout << clip::to_json(config);                // {"model": "ViT-B-32", "batch_size": 128, ...}
///
/// The JSON is flat, one key per setting (the names clip_train's flags and configs/train/*.json use:
/// `batch_size` <-> `--batch-size`); unknown keys are errors, and a value of the wrong type names the key, the
/// value and the source. train_settings() lists every key with its help and default, for a flag parser.
#include <cstdint>
#include <string>
#include <vector>

#include "clip/util/error.h"

namespace clip {

/// The learning-rate schedule after the linear warmup.
enum class LrSchedule {
  cosine,    ///< open_clip's cosine decay to 0 at the last step
  constant,  ///< the peak rate to the end
};

/// The arithmetic of the forward and backward passes.
enum class Precision {
  fp32,  ///< everything in fp32
  bf16,  ///< CUDA bf16 autocast over fp32 master weights
};

/// What to train.
struct ModelOptions {
  std::string name;                 ///< registry name (RN50, ViT-B-32, ...) or a config in configs/models
  std::string config;               ///< path to a model config JSON (instead of `name`)
  std::string init;                 ///< checkpoint to start from (fine-tuning); any format load_model reads
  bool lock_image = false;          ///< freeze the image tower (LiT)
  bool grad_checkpointing = false;  ///< recompute Transformer blocks in the backward pass (less memory)
};

/// The training data, when the trainer reads it itself (an app can instead hand Trainer a BatchSource).
struct DataOptions {
  std::string train_data;  ///< a CSV/TSV of image path + caption, a labeled image folder, "synthetic", or
                           ///< WebDataset shards "dir/{00000..01023}.tar" (several joined by "::")
  int64_t batch_size = 256;  ///< samples per rank per optimizer step (all micro-batches together)
  // Shards (train_data names .tar files; see clip/data/shard_stream.h)
  int64_t train_num_samples = 0;   ///< samples per epoch over all ranks (0: from the shards' sizes.json)
  std::string train_data_weights;  ///< per-source sampling weights joined by "::" (with dataset_resampled)
  bool dataset_resampled = false;  ///< draw shards with replacement (any number of ranks and threads)
  int64_t shuffle_buffer = 1000;   ///< samples shuffled together per loader thread
  std::string json_caption_key = "caption";  ///< caption field of a sample's json when it has no txt
  double max_failure_fraction = 0.1;  ///< stop when more than this fraction of samples (or shards) fails
  bool jpeg_dct_scaling = false;   ///< decode large JPEGs at 1/2-1/8 size in the DCT domain (faster, not exact)
  // CSV files and labeled folders
  std::string csv_img_key = "filepath";
  std::string csv_caption_key = "title";
  std::string csv_separator = "\t";
  std::string caption_templates = "simple";  ///< labeled folders: captions are these templates x class names
  std::string class_names;   ///< labeled folders: display names of the subfolders (see map_class_names)
  int64_t synthetic_samples = 4096;  ///< samples per epoch of the synthetic data
  // Images
  bool augment = true;       ///< RandomResizedCrop on training images
  double rrc_scale_min = 0.9;
  double rrc_scale_max = 1.0;
  int workers = 0;           ///< image decoding threads (0: one per core)
};

/// How the weights move, and for how long.
struct OptimizerOptions {
  int64_t epochs = 1;
  int64_t max_steps = 0;     ///< stop after this many steps (0: run all epochs)
  int64_t accum_freq = 1;    ///< micro-batches per step; the whole step's batch is every sample's negatives
  double lr = 5e-4;          ///< the peak learning rate
  double weight_decay = 0.2;
  double beta1 = 0.9;
  double beta2 = 0.0;        ///< 0: the model's default (0.98 ViT, 0.999 ResNet)
  double eps = 0.0;          ///< 0: the model's default (1e-6 ViT, 1e-8 ResNet)
  int64_t warmup = 100;      ///< steps of linear warmup
  LrSchedule schedule = LrSchedule::cosine;
  double grad_clip_norm = 0.0;  ///< 0: no clipping
  int64_t max_nonfinite = 10;   ///< stop after this many non-finite steps in a row
  /// The objective: "infonce" (CLIP's) or "siglip" (sigmoid loss with a learned bias; a new model starts at logit
  /// scale ln 10 and bias -10, a checkpoint without a bias gets one at -10).
  std::string loss = "infonce";
};

/// Where the arithmetic runs.
struct RuntimeOptions {
  std::string device = "cpu";            ///< cpu, cuda or cuda:N (with several ranks, cuda means cuda:LOCAL_RANK)
  Precision precision = Precision::fp32;
  int threads = 0;                       ///< LibTorch CPU threads (0: one per core)
  int64_t seed = 0;                      ///< initialization, shuffling and augmentation
};

/// One process per GPU; data.batch_size is per rank, the global batch world_size x batch_size.
struct DistributedOptions {
  int nproc_per_node = 0;        ///< >1: clip_train starts this many local workers itself
  std::string backend = "auto";  ///< auto (NCCL on CUDA, Gloo on CPU) | gloo | nccl
  int64_t timeout = 1800;        ///< seconds a collective may wait for a missing rank
  bool local_loss = false;       ///< each rank scores its rows against all columns (logits [b, B])
  int64_t bucket_mb = 25;        ///< gradient all-reduce bucket size
  bool shard_optimizer = false;  ///< ZeRO-1: each rank keeps AdamW's state for 1/N of the parameters
};

/// What is written, where, and how a run continues.
struct CheckpointOptions {
  std::string output_dir = "runs/clip";  ///< checkpoints, metrics.jsonl, config.json, model.safetensors, report
  int64_t save_every = 0;          ///< steps between checkpoints (0: at the end of each epoch only)
  int64_t keep_checkpoints = 3;    ///< checkpoints kept (oldest deleted)
  std::string resume;              ///< "latest" (or "auto": the same) or a checkpoint path; latest with none starts afresh
  bool overwrite = false;          ///< start afresh in an output_dir that holds another run, deleting its files
  int64_t stop_after = 0;          ///< end this invocation after this many steps, checkpointed (0: off)
  int64_t log_every = 10;          ///< steps between metric lines (MetricsEvent)
  bool report = true;              ///< write report.html at each checkpoint and evaluation and at the end (clip::train)
  bool tensorboard = false;        ///< also write TensorBoard event files to output_dir/tensorboard
  bool requeue_on_preempt = false; ///< clip_train, stopped by a signal under Slurm: `scontrol requeue $SLURM_JOB_ID`
};

/// Evaluations during and after training.
struct EvaluationOptions {
  double val_split = 0.0;    ///< fraction of the training data held out for the retrieval evaluation
  std::string val_data;      ///< a CSV for the retrieval evaluation (instead of val_split)
  std::string zeroshot_data;  ///< a labeled folder for the zero-shot evaluation
  std::string zeroshot_templates = "openai_imagenet";
  std::string zeroshot_class_names;  ///< display names of zeroshot_data's subfolders
  int64_t eval_every = 0;    ///< steps between evaluations (0: at the end only)
};

/// A training run's settings (defaults follow open_clip's).
struct TrainConfig {
  ModelOptions model;
  DataOptions data;
  OptimizerOptions optimizer;
  RuntimeOptions runtime;
  DistributedOptions distributed;
  CheckpointOptions checkpoint;
  EvaluationOptions evaluation;
};

/// Parses JSON text over `base`; `source` names it in errors.
TrainConfig parse_train_config(const std::string& json_text, const std::string& source,
                               const TrainConfig& base = {});

/// Reads a JSON file over `base`.
TrainConfig load_train_config(const std::string& path, const TrainConfig& base = {});

/// The config as flat JSON (every key; parse_train_config reads it back).
std::string to_json(const TrainConfig& config);

/// One setting as a flag parser sees it.
struct TrainSetting {
  std::string key;            ///< the JSON key ("batch_size"); the flag is "--batch-size"
  std::string help;
  std::string default_value;  ///< as text ("256", "cosine", "true")
  bool is_switch = false;     ///< a bool: a bare flag means true
};

/// Every setting, in the order clip_train --help lists them.
std::vector<TrainSetting> train_settings();

/// One setting's value as text ("256", "cosine", "true"); clip::Error for an unknown key.
std::string train_setting(const TrainConfig& config, const std::string& key);

/// Sets one setting from text (a flag's value); throws clip::Error naming `source` for an unknown key or a value
/// of the wrong type.
void set_train_setting(TrainConfig& config, const std::string& key, const std::string& text,
                       const std::string& source);

/// A setting with a value training cannot use: which (the JSON key), the value as text, and what it must be. Its
/// message names the flag: "--beta1 -1: expected a number in [0, 1)"; a tool that read the value from a config file
/// can say so instead (clip_train does).
class InvalidSetting : public Error {
 public:
  InvalidSetting(std::string key, std::string value, std::string expected);
  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }
  const std::string& expected() const { return expected_; }

 private:
  std::string key_, value_, expected_;
};

/// Checks every setting before work starts, one at a time: finite numbers, ranges, and values that are wrong
/// together (a batch not divisible by accum_freq, weight decay that would flip weights' signs at this lr). Throws
/// InvalidSetting for the first bad one, clip::Error when no model is given.
void validate(const TrainConfig& config);

/// "cosine" | "constant", and back (clip::Error naming `source` for anything else).
const char* schedule_name(LrSchedule schedule);
LrSchedule parse_schedule(const std::string& name, const std::string& source = "schedule");
/// "fp32" | "bf16", and back.
const char* precision_name(Precision precision);
Precision parse_precision(const std::string& name, const std::string& source = "precision");

}  // namespace clip
