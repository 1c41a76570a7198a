#include "clip/train/train_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <variant>

#include <nlohmann/json.hpp>

#include "clip/util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace clip {
namespace {

using json = nlohmann::json;
using Field = std::variant<std::string*, int64_t*, int*, double*, bool*, LrSchedule*, Precision*>;

// "batch_size" -> "--batch-size".
std::string flag_of(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return "--" + key;
}

struct Spec {
  const char* key;
  Field field;
  const char* help;
};

// The one table of settings: JSON keys, flags, help and (de)serialization all come from it.
std::vector<Spec> specs(TrainConfig& c) {
  return {
      {"model", &c.model.name, "registry name (RN50, ViT-B-32, ...), a config name in configs/models, or a config file (.json)"},
      {"model_config", &c.model.config, "model config JSON (instead of --model)"},
      {"init", &c.model.init, "checkpoint to start from (fine-tuning)"},
      {"lock_image", &c.model.lock_image, "freeze the image tower (LiT)"},
      {"grad_checkpointing", &c.model.grad_checkpointing, "recompute Transformer blocks in backward (less memory)"},
      {"train_data", &c.data.train_data,
       "CSV/TSV of image path + caption, labeled image folder, 'synthetic', or shards 'dir/{00000..00099}.tar' "
       "(several joined by '::')"},
      {"train_num_samples", &c.data.train_num_samples, "shards: samples per epoch, all ranks (0: from sizes.json)"},
      {"train_data_weights", &c.data.train_data_weights, "shards: sampling weight per source, joined by '::' (resampled)"},
      {"dataset_resampled", &c.data.dataset_resampled, "shards: draw shards with replacement (any number of ranks)"},
      {"shuffle_buffer", &c.data.shuffle_buffer, "shards: samples shuffled together per loader thread"},
      {"json_caption_key", &c.data.json_caption_key, "shards: caption field of a sample's json when it has no txt"},
      {"max_failure_fraction", &c.data.max_failure_fraction, "shards: stop when more than this fraction of samples fails"},
      {"jpeg_dct_scaling", &c.data.jpeg_dct_scaling, "shards: decode large JPEGs at 1/2-1/8 size (faster, not exact)"},
      {"csv_img_key", &c.data.csv_img_key, "CSV column of the image paths"},
      {"csv_caption_key", &c.data.csv_caption_key, "CSV column of the captions"},
      {"csv_separator", &c.data.csv_separator, "CSV separator (a tab by default, as open_clip)"},
      {"caption_templates", &c.data.caption_templates, "labeled folders: caption templates (set name or file)"},
      {"class_names", &c.data.class_names, "labeled folders: display names of the class subfolders"},
      {"val_split", &c.evaluation.val_split, "fraction of the training data held out for retrieval evaluation"},
      {"val_data", &c.evaluation.val_data, "CSV for retrieval evaluation (instead of val_split)"},
      {"zeroshot_data", &c.evaluation.zeroshot_data, "labeled folder for zero-shot evaluation"},
      {"zeroshot_templates", &c.evaluation.zeroshot_templates, "templates of the zero-shot evaluation"},
      {"zeroshot_class_names", &c.evaluation.zeroshot_class_names, "display names of zeroshot_data's subfolders"},
      {"synthetic_samples", &c.data.synthetic_samples, "samples per epoch of the synthetic data"},
      {"augment", &c.data.augment, "RandomResizedCrop on training images"},
      {"rrc_scale_min", &c.data.rrc_scale_min, "RandomResizedCrop: smallest area fraction"},
      {"rrc_scale_max", &c.data.rrc_scale_max, "RandomResizedCrop: largest area fraction"},
      {"workers", &c.data.workers, "image decoding threads (0: one per core)"},
      {"epochs", &c.optimizer.epochs, "passes over the training data"},
      {"max_steps", &c.optimizer.max_steps, "stop after this many steps (0: all epochs)"},
      {"stop_after", &c.checkpoint.stop_after, "end this invocation after this many steps, checkpointed (a job time limit)"},
      {"batch_size", &c.data.batch_size, "samples per rank per optimizer step (the global batch is ranks x this)"},
      {"accum_freq", &c.optimizer.accum_freq, "micro-batches per step (the full batch stays the negatives)"},
      {"lr", &c.optimizer.lr, "peak learning rate"},
      {"weight_decay", &c.optimizer.weight_decay, "AdamW weight decay"},
      {"beta1", &c.optimizer.beta1, "AdamW beta1"},
      {"beta2", &c.optimizer.beta2, "AdamW beta2 (0: 0.98 for ViTs, 0.999 for ResNets)"},
      {"eps", &c.optimizer.eps, "AdamW epsilon (0: 1e-6 for ViTs, 1e-8 for ResNets)"},
      {"warmup", &c.optimizer.warmup, "steps of linear warmup"},
      {"schedule", &c.optimizer.schedule, "cosine | constant"},
      {"grad_clip_norm", &c.optimizer.grad_clip_norm, "clip the gradient norm to this (0: off)"},
      {"max_nonfinite", &c.optimizer.max_nonfinite, "stop after this many non-finite steps in a row"},
      {"loss", &c.optimizer.loss, "infonce (CLIP's contrastive loss) | siglip (sigmoid loss with a learned bias)"},
      {"nproc_per_node", &c.distributed.nproc_per_node, "start this many local worker processes (one per GPU)"},
      {"dist_backend", &c.distributed.backend, "auto (NCCL on CUDA, Gloo on CPU) | gloo | nccl"},
      {"dist_timeout", &c.distributed.timeout, "seconds a collective waits for a missing rank before failing"},
      {"local_loss", &c.distributed.local_loss, "each rank scores its own rows against all columns (less memory)"},
      {"bucket_mb", &c.distributed.bucket_mb, "gradient all-reduce bucket size in MB"},
      {"shard_optimizer", &c.distributed.shard_optimizer,
       "ZeRO-1: each rank keeps AdamW's state for 1/N of the parameters (checkpoints stay whole)"},
      {"device", &c.runtime.device, "cpu, cuda or cuda:N (with several ranks, cuda means cuda:LOCAL_RANK)"},
      {"precision", &c.runtime.precision, "fp32 | bf16 (autocast on CUDA)"},
      {"threads", &c.runtime.threads, "LibTorch CPU threads (0: one per core)"},
      {"seed", &c.runtime.seed, "seed of initialization, shuffling and augmentation"},
      {"output_dir", &c.checkpoint.output_dir, "checkpoints, metrics.jsonl, config.json and report.html go here"},
      {"log_every", &c.checkpoint.log_every, "steps between metric lines"},
      {"save_every", &c.checkpoint.save_every, "steps between checkpoints (0: each epoch's end)"},
      {"keep_checkpoints", &c.checkpoint.keep_checkpoints, "checkpoints kept"},
      {"eval_every", &c.evaluation.eval_every, "steps between evaluations (0: at the end)"},
      {"resume", &c.checkpoint.resume, "'latest' (or 'auto', the same: the newest checkpoint in --output-dir, else "
                                       "a fresh start) or a checkpoint path"},
      {"overwrite", &c.checkpoint.overwrite,
       "start afresh in an --output-dir that holds another run, deleting its checkpoints and metrics"},
      {"report", &c.checkpoint.report, "write report.html (at each checkpoint and evaluation, and at the end)"},
      {"tensorboard", &c.checkpoint.tensorboard, "also write TensorBoard event files to OUTPUT_DIR/tensorboard"},
      {"requeue_on_preempt", &c.checkpoint.requeue_on_preempt,
       "after SIGTERM/SIGUSR1 and the checkpoint, rank 0 runs 'scontrol requeue $SLURM_JOB_ID' (under Slurm)"},
  };
}

void set_from_json(const Spec& spec, const json& v, const std::string& source) {
  auto bad = [&](const char* expected) { fail(source, ": '", spec.key, "' must be ", expected, ", got ", v.dump()); };
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (!v.is_string()) bad("a string");
          *field = v.get<std::string>();
        } else if constexpr (std::is_same_v<T, LrSchedule>) {
          if (!v.is_string()) bad("\"cosine\" or \"constant\"");
          *field = parse_schedule(v.get<std::string>(), source + ": '" + spec.key + "'");
        } else if constexpr (std::is_same_v<T, Precision>) {
          if (!v.is_string()) bad("\"fp32\" or \"bf16\"");
          *field = parse_precision(v.get<std::string>(), source + ": '" + spec.key + "'");
        } else if constexpr (std::is_same_v<T, bool>) {
          if (!v.is_boolean()) bad("true or false");
          *field = v.get<bool>();
        } else if constexpr (std::is_same_v<T, double>) {
          if (!v.is_number()) bad("a number");
          *field = v.get<double>();
        } else {
          if (!v.is_number_integer()) bad("an integer");
          const bool too_big = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX);
          const int64_t x = too_big ? INT64_MAX : v.get<int64_t>();
          if (too_big || x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) {
            bad(str("an integer from ", std::numeric_limits<T>::min(), " to ", std::numeric_limits<T>::max()).c_str());
          }
          *field = static_cast<T>(x);
        }
      },
      spec.field);
}

json value_of(const Spec& spec) {
  return std::visit(
      [](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, LrSchedule>) {
          return json(schedule_name(*field));
        } else if constexpr (std::is_same_v<T, Precision>) {
          return json(precision_name(*field));
        } else {
          return json(*field);
        }
      },
      spec.field);
}

// A flag's text to the field's type.
void set_from_text(const Spec& spec, const std::string& text, const std::string& source) {
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *field = text;
        } else if constexpr (std::is_same_v<T, LrSchedule>) {
          *field = parse_schedule(text, source);
        } else if constexpr (std::is_same_v<T, Precision>) {
          *field = parse_precision(text, source);
        } else if constexpr (std::is_same_v<T, bool>) {
          if (text == "true" || text == "1" || text == "on") {
            *field = true;
          } else if (text == "false" || text == "0" || text == "off") {
            *field = false;
          } else {
            fail(source, " ", text, ": expected true or false");
          }
        } else {
          char* end = nullptr;
          errno = 0;
          if constexpr (std::is_same_v<T, double>) {
            const double v = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0' || errno != 0) fail(source, " ", text, ": expected a number");
            *field = v;
          } else {
            const long long v = std::strtoll(text.c_str(), &end, 10);
            if (end == text.c_str() || *end != '\0') fail(source, " ", text, ": expected an integer");
            if (errno != 0 || v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
              fail(source, " ", text, ": expected an integer from ", std::numeric_limits<T>::min(), " to ",
                   std::numeric_limits<T>::max());
            }
            *field = static_cast<T>(v);
          }
        }
      },
      spec.field);
}

}  // namespace

TrainConfig parse_train_config(const std::string& json_text, const std::string& source, const TrainConfig& base) {
  const json j = parse_json(json_text, source);
  if (!j.is_object()) fail(source, ": a training config is a JSON object");
  TrainConfig c = base;
  const std::vector<Spec> table = specs(c);
  for (const auto& item : j.items()) {
    const auto spec = std::find_if(table.begin(), table.end(), [&](const Spec& s) { return item.key() == s.key; });
    if (spec == table.end()) fail(source, ": unknown key '", item.key(), "' (clip_train --help lists every setting)");
    set_from_json(*spec, item.value(), source);
  }
  return c;
}

std::string to_json(const TrainConfig& config) {
  TrainConfig copy = config;
  json out = json::object();
  for (const Spec& spec : specs(copy)) out[spec.key] = value_of(spec);
  return out.dump(2);
}

TrainConfig load_train_config(const std::string& path, const TrainConfig& base) {
  return parse_train_config(read_file(path, "training config file"), path, base);
}

std::vector<TrainSetting> train_settings() {
  TrainConfig defaults;
  std::vector<TrainSetting> out;
  for (const Spec& spec : specs(defaults)) {
    const json def = value_of(spec);
    out.push_back({spec.key, spec.help, def.is_string() ? def.get<std::string>() : def.dump(), def.is_boolean()});
  }
  return out;
}

std::string train_setting(const TrainConfig& config, const std::string& key) {
  TrainConfig copy = config;  // specs() points into a config
  for (const Spec& spec : specs(copy)) {
    if (key != spec.key) continue;
    const json value = value_of(spec);
    return value.is_string() ? value.get<std::string>() : value.dump();
  }
  fail("unknown setting '", key, "' (clip_train --help lists every setting)");
}

void set_train_setting(TrainConfig& config, const std::string& key, const std::string& text,
                       const std::string& source) {
  const std::vector<Spec> table = specs(config);
  const auto spec = std::find_if(table.begin(), table.end(), [&](const Spec& s) { return key == s.key; });
  if (spec == table.end()) fail(source, ": unknown setting '", key, "' (clip_train --help lists every setting)");
  set_from_text(*spec, text, source);
}

const char* schedule_name(LrSchedule schedule) { return schedule == LrSchedule::cosine ? "cosine" : "constant"; }

LrSchedule parse_schedule(const std::string& name, const std::string& source) {
  if (name == "cosine") return LrSchedule::cosine;
  if (name == "constant") return LrSchedule::constant;
  fail(source, " ", name, ": expected cosine or constant");
}

const char* precision_name(Precision precision) { return precision == Precision::fp32 ? "fp32" : "bf16"; }

Precision parse_precision(const std::string& name, const std::string& source) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  fail(source, " ", name, ": expected fp32 or bf16");
}

InvalidSetting::InvalidSetting(std::string key, std::string value, std::string expected)
    : Error(str(flag_of(key), " ", value, ": expected ", expected)),
      key_(std::move(key)), value_(std::move(value)), expected_(std::move(expected)) {}

void validate(const TrainConfig& c) {
  // Every number finite: NaN passes every comparison below as false, so it is refused first, by name.
  TrainConfig copy = c;  // specs() points into a config
  for (const Spec& spec : specs(copy)) {
    if (const auto* v = std::get_if<double*>(&spec.field); v && !std::isfinite(**v)) {
      throw InvalidSetting(spec.key, str(**v), "a finite number");
    }
  }
  const auto require = [](bool ok, const char* key, auto value, const std::string& expected) {
    if (!ok) throw InvalidSetting(key, str(value), expected);
  };
  if (c.model.name.empty() && c.model.config.empty() && c.model.init.empty()) {
    fail("no model: set --model NAME, --model-config FILE or --init CHECKPOINT");
  }
  const DataOptions& d = c.data;
  const OptimizerOptions& o = c.optimizer;
  require(d.batch_size > 0, "batch_size", d.batch_size, "a positive integer");
  require(o.accum_freq > 0, "accum_freq", o.accum_freq, "a positive integer");
  require(d.batch_size % o.accum_freq == 0, "batch_size", d.batch_size,
          str("a multiple of --accum-freq ", o.accum_freq, " (the micro-batches split it evenly)"));
  require(o.epochs >= 0, "epochs", o.epochs, "an integer >= 0");
  require(o.max_steps >= 0, "max_steps", o.max_steps, "an integer >= 0");
  require(o.epochs > 0 || o.max_steps > 0, "epochs", o.epochs, "a positive integer when --max-steps is 0");
  require(o.warmup >= 0, "warmup", o.warmup, "an integer >= 0");
  require(o.max_nonfinite >= 1, "max_nonfinite", o.max_nonfinite, "an integer >= 1");
  require(o.loss == "infonce" || o.loss == "siglip", "loss", o.loss, "infonce or siglip");
  require(o.lr > 0 && o.lr <= 10, "lr", o.lr, "a number in (0, 10] (AdamW moves each weight by about lr per step)");
  require(o.weight_decay >= 0, "weight_decay", o.weight_decay, "a number >= 0");
  // AdamW's decoupled decay multiplies each weight by 1 - lr * weight_decay every step.
  require(o.lr * o.weight_decay < 1, "weight_decay", o.weight_decay,
          str("less than 1 / lr = ", 1 / o.lr, " at --lr ", o.lr,
              " (each step multiplies the weights by 1 - lr * weight_decay; lower one of them)"));
  require(o.grad_clip_norm >= 0, "grad_clip_norm", o.grad_clip_norm, "a number >= 0 (0: off)");
  require(o.beta1 >= 0 && o.beta1 < 1, "beta1", o.beta1, "a number in [0, 1)");
  require(o.beta2 >= 0 && o.beta2 < 1, "beta2", o.beta2, "a number in [0, 1) (0: the model's default)");
  require(o.eps >= 0 && o.eps <= 1, "eps", o.eps, "a number in [0, 1] (0: the model's default)");
  require(d.workers >= 0, "workers", d.workers, "an integer >= 0 (0: one per core)");
  require(c.runtime.threads >= 0, "threads", c.runtime.threads, "an integer >= 0 (0: one per core)");
  require(d.synthetic_samples >= 0, "synthetic_samples", d.synthetic_samples, "an integer >= 0");
  require(d.train_num_samples >= 0, "train_num_samples", d.train_num_samples, "an integer >= 0 (0: sizes.json)");
  require(d.shuffle_buffer >= 0, "shuffle_buffer", d.shuffle_buffer, "an integer >= 0");
  require(d.rrc_scale_min > 0 && d.rrc_scale_min <= 1, "rrc_scale_min", d.rrc_scale_min, "a fraction in (0, 1]");
  require(d.rrc_scale_max > 0 && d.rrc_scale_max <= 1, "rrc_scale_max", d.rrc_scale_max, "a fraction in (0, 1]");
  require(d.rrc_scale_min <= d.rrc_scale_max, "rrc_scale_min", d.rrc_scale_min,
          str("at most --rrc-scale-max ", d.rrc_scale_max));
  require(d.max_failure_fraction >= 0 && d.max_failure_fraction <= 1, "max_failure_fraction", d.max_failure_fraction,
          "a fraction in [0, 1]");
  const EvaluationOptions& e = c.evaluation;
  require(e.val_split >= 0 && e.val_split < 1, "val_split", e.val_split, "a fraction in [0, 1)");
  require(e.eval_every >= 0, "eval_every", e.eval_every, "an integer >= 0 (0: at the end)");
  const CheckpointOptions& k = c.checkpoint;
  require(k.stop_after >= 0, "stop_after", k.stop_after, "an integer >= 0 (0: off)");
  require(k.save_every >= 0, "save_every", k.save_every, "an integer >= 0 (0: each epoch's end)");
  require(k.keep_checkpoints >= 1, "keep_checkpoints", k.keep_checkpoints, "an integer >= 1");
  require(k.log_every >= 1, "log_every", k.log_every, "an integer >= 1");
  const DistributedOptions& dist = c.distributed;
  require(dist.nproc_per_node >= 0, "nproc_per_node", dist.nproc_per_node, "an integer >= 0");
  require(dist.timeout >= 1, "dist_timeout", dist.timeout, "a positive number of seconds");
  require(dist.bucket_mb >= 1, "bucket_mb", dist.bucket_mb, "a positive number of MB");
  require(dist.backend == "auto" || dist.backend == "gloo" || dist.backend == "nccl", "dist_backend", dist.backend,
          "auto, gloo or nccl");
}

}  // namespace clip
