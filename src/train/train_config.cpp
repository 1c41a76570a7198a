#include "clip/train/train_config.h"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <variant>

#include <nlohmann/json.hpp>

#include "clip/util/error.h"

namespace clip {
namespace {

using json = nlohmann::json;
using Field = std::variant<std::string*, int64_t*, int*, double*, bool*>;

struct Spec {
  const char* key;
  Field field;
  const char* help;
};

// The one table of settings: JSON keys, flags, help and (de)serialization all come from it.
std::vector<Spec> specs(TrainConfig& c) {
  return {
      {"model", &c.model, "registry name (RN50, ViT-B-32, ...), a config name in configs/models, or a config file (.json)"},
      {"model_config", &c.model_config, "model config JSON (instead of --model)"},
      {"init", &c.init, "checkpoint to start from (fine-tuning)"},
      {"lock_image", &c.lock_image, "freeze the image tower (LiT)"},
      {"grad_checkpointing", &c.grad_checkpointing, "recompute Transformer blocks in backward (less memory)"},
      {"train_data", &c.train_data,
       "CSV/TSV of image path + caption, labeled image folder, 'synthetic', or shards 'dir/{00000..00099}.tar' "
       "(several joined by '::')"},
      {"train_num_samples", &c.train_num_samples, "shards: samples per epoch, all ranks (0: from sizes.json)"},
      {"train_data_weights", &c.train_data_weights, "shards: sampling weight per source, joined by '::' (resampled)"},
      {"dataset_resampled", &c.dataset_resampled, "shards: draw shards with replacement (any number of ranks)"},
      {"shuffle_buffer", &c.shuffle_buffer, "shards: samples shuffled together per loader thread"},
      {"json_caption_key", &c.json_caption_key, "shards: caption field of a sample's json when it has no txt"},
      {"max_failure_fraction", &c.max_failure_fraction, "shards: stop when more than this fraction of samples fails"},
      {"jpeg_dct_scaling", &c.jpeg_dct_scaling, "shards: decode large JPEGs at 1/2-1/8 size (faster, not exact)"},
      {"csv_img_key", &c.csv_img_key, "CSV column of the image paths"},
      {"csv_caption_key", &c.csv_caption_key, "CSV column of the captions"},
      {"csv_separator", &c.csv_separator, "CSV separator (a tab by default, as open_clip)"},
      {"caption_templates", &c.caption_templates, "labeled folders: caption templates (set name or file)"},
      {"class_names", &c.class_names, "labeled folders: display names of the class subfolders"},
      {"val_split", &c.val_split, "fraction of the training data held out for retrieval evaluation"},
      {"val_data", &c.val_data, "CSV for retrieval evaluation (instead of val_split)"},
      {"zeroshot_data", &c.zeroshot_data, "labeled folder for zero-shot evaluation"},
      {"zeroshot_templates", &c.zeroshot_templates, "templates of the zero-shot evaluation"},
      {"zeroshot_class_names", &c.zeroshot_class_names, "display names of zeroshot_data's subfolders"},
      {"synthetic_samples", &c.synthetic_samples, "samples per epoch of the synthetic data"},
      {"augment", &c.augment, "RandomResizedCrop on training images"},
      {"rrc_scale_min", &c.rrc_scale_min, "RandomResizedCrop: smallest area fraction"},
      {"rrc_scale_max", &c.rrc_scale_max, "RandomResizedCrop: largest area fraction"},
      {"workers", &c.workers, "image decoding threads (0: one per core)"},
      {"epochs", &c.epochs, "passes over the training data"},
      {"max_steps", &c.max_steps, "stop after this many steps (0: all epochs)"},
      {"stop_after", &c.stop_after, "end this invocation after this many steps, checkpointed (a job time limit)"},
      {"batch_size", &c.batch_size, "samples per rank per optimizer step (the global batch is ranks x this)"},
      {"accum_freq", &c.accum_freq, "micro-batches per step (the full batch stays the negatives)"},
      {"lr", &c.lr, "peak learning rate"},
      {"weight_decay", &c.weight_decay, "AdamW weight decay"},
      {"beta1", &c.beta1, "AdamW beta1"},
      {"beta2", &c.beta2, "AdamW beta2 (0: 0.98 for ViTs, 0.999 for ResNets)"},
      {"eps", &c.eps, "AdamW epsilon (0: 1e-6 for ViTs, 1e-8 for ResNets)"},
      {"warmup", &c.warmup, "steps of linear warmup"},
      {"schedule", &c.schedule, "cosine | constant"},
      {"grad_clip_norm", &c.grad_clip_norm, "clip the gradient norm to this (0: off)"},
      {"max_nonfinite", &c.max_nonfinite, "stop after this many non-finite steps in a row"},
      {"nproc_per_node", &c.nproc_per_node, "start this many local worker processes (one per GPU)"},
      {"dist_backend", &c.dist_backend, "auto (NCCL on CUDA, Gloo on CPU) | gloo | nccl"},
      {"dist_timeout", &c.dist_timeout, "seconds a collective waits for a missing rank before failing"},
      {"local_loss", &c.local_loss, "each rank scores its own rows against all columns (less memory)"},
      {"bucket_mb", &c.bucket_mb, "gradient all-reduce bucket size in MB"},
      {"device", &c.device, "cpu, cuda or cuda:N (with several ranks, cuda means cuda:LOCAL_RANK)"},
      {"precision", &c.precision, "fp32 | bf16 (autocast on CUDA)"},
      {"threads", &c.threads, "LibTorch CPU threads (0: one per core)"},
      {"seed", &c.seed, "seed of initialization, shuffling and augmentation"},
      {"output_dir", &c.output_dir, "checkpoints, metrics.jsonl, config.json and report.html go here"},
      {"log_every", &c.log_every, "steps between metric lines"},
      {"save_every", &c.save_every, "steps between checkpoints (0: each epoch's end)"},
      {"keep_checkpoints", &c.keep_checkpoints, "checkpoints kept"},
      {"eval_every", &c.eval_every, "steps between evaluations (0: at the end)"},
      {"resume", &c.resume, "'latest' or a checkpoint path"},
      {"report", &c.report, "write report.html at the end"},
  };
}

std::string flag_name(const std::string& key) {
  std::string flag = "--" + key;
  for (char& ch : flag) ch = ch == '_' ? '-' : ch;
  return flag;
}

void set_from_json(const Spec& spec, const json& v, const std::string& source) {
  auto bad = [&](const char* expected) { fail(source, ": '", spec.key, "' must be ", expected, ", got ", v.dump()); };
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (!v.is_string()) bad("a string");
          *field = v.get<std::string>();
        } else if constexpr (std::is_same_v<T, bool>) {
          if (!v.is_boolean()) bad("true or false");
          *field = v.get<bool>();
        } else if constexpr (std::is_same_v<T, double>) {
          if (!v.is_number()) bad("a number");
          *field = v.get<double>();
        } else {
          if (!v.is_number_integer()) bad("an integer");
          *field = static_cast<T>(v.get<int64_t>());
        }
      },
      spec.field);
}

json value_of(const Spec& spec) {
  return std::visit([](auto* field) { return json(*field); }, spec.field);
}

// A flag's text to the field's type.
void set_from_text(const Spec& spec, const std::string& text) {
  const std::string source = flag_name(spec.key);
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *field = text;
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
            if (end == text.c_str() || *end != '\0' || errno != 0) fail(source, " ", text, ": expected an integer");
            *field = static_cast<T>(v);
          }
        }
      },
      spec.field);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the training config");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TrainConfig parse_train_config(const std::string& json_text, const std::string& source, const TrainConfig& base) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    fail(source, ": not valid JSON (", e.what(), ")");
  }
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

TrainConfig parse_train_args(int argc, const char* const* argv) {
  TrainConfig defaults;
  const std::vector<Spec> table = specs(defaults);
  CLI::App app{"clip_train: contrastive training of a CLIP model.\n"
               "Settings come from --config FILE.json, then from flags; every JSON key is also a flag\n"
               "(batch_size <-> --batch-size). The resolved config is printed and saved in output_dir."};
  std::string config_file;
  app.add_option("--config", config_file, "training config JSON (configs/train/*.json)")->check(CLI::ExistingFile);
  std::map<std::string, std::string> given;
  for (const Spec& spec : table) {
    const json def = value_of(spec);
    if (def.is_boolean()) {
      // A switch works bare (--lock-image) or with a value (--lock-image false). No default_str: CLI11 would
      // hand a bare switch its default as the value.
      app.add_option(flag_name(spec.key), given[spec.key], std::string(spec.help) + " (default " + def.dump() + ")")
          ->expected(0, 1)
          ->type_name("[BOOL]");
    } else {
      app.add_option(flag_name(spec.key), given[spec.key], spec.help)
          ->default_str(def.is_string() ? def.get<std::string>() : def.dump());
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success&) {
    std::cout << app.help();
    std::exit(0);
  } catch (const CLI::ParseError& e) {
    fail(e.what(), " (clip_train --help lists every flag)");
  }
  TrainConfig c;
  if (!config_file.empty()) c = parse_train_config(read_file(config_file), config_file);
  const std::vector<Spec> target = specs(c);
  for (size_t i = 0; i < table.size(); ++i) {
    if (app.get_option(flag_name(table[i].key))->count() == 0) continue;
    const std::string& text = given[table[i].key];
    const bool bare_switch = text.empty() && std::holds_alternative<bool*>(target[i].field);
    set_from_text(target[i], bare_switch ? "true" : text);
  }
  return c;
}

void validate(const TrainConfig& c) {
  if (c.model.empty() && c.model_config.empty() && c.init.empty()) {
    fail("no model: set --model NAME, --model-config FILE or --init CHECKPOINT");
  }
  if (c.train_data.empty()) fail("no training data: set --train-data (CSV, labeled folder or 'synthetic')");
  if (c.batch_size <= 0 || c.accum_freq <= 0 || c.batch_size % c.accum_freq != 0) {
    fail("--batch-size ", c.batch_size, " must be a positive multiple of --accum-freq ", c.accum_freq);
  }
  if (c.epochs <= 0 && c.max_steps <= 0) fail("--epochs or --max-steps must be positive");
  if (c.schedule != "cosine" && c.schedule != "constant") fail("--schedule ", c.schedule, ": expected cosine or constant");
  if (c.precision != "fp32" && c.precision != "bf16") fail("--precision ", c.precision, ": expected fp32 or bf16");
  if (c.lr <= 0 || c.weight_decay < 0 || c.grad_clip_norm < 0) fail("--lr must be positive, --weight-decay and --grad-clip-norm non-negative");
  if (c.val_split < 0 || c.val_split >= 1) fail("--val-split ", c.val_split, ": expected a fraction in [0, 1)");
  if (!(c.rrc_scale_min > 0 && c.rrc_scale_min <= c.rrc_scale_max && c.rrc_scale_max <= 1)) {
    fail("--rrc-scale-min/max: expected 0 < min <= max <= 1");
  }
  if (c.train_num_samples < 0 || c.shuffle_buffer < 0) fail("--train-num-samples and --shuffle-buffer must be >= 0");
  if (!(c.max_failure_fraction >= 0 && c.max_failure_fraction <= 1)) {
    fail("--max-failure-fraction ", c.max_failure_fraction, ": expected a fraction in [0, 1]");
  }
  if (c.keep_checkpoints < 1) fail("--keep-checkpoints must be at least 1");
  if (c.dist_timeout < 1 || c.bucket_mb < 1) fail("--dist-timeout and --bucket-mb must be positive");
  if (c.dist_backend != "auto" && c.dist_backend != "gloo" && c.dist_backend != "nccl") {
    fail("--dist-backend ", c.dist_backend, ": expected auto, gloo or nccl");
  }
  if (c.log_every < 1) fail("--log-every must be at least 1");
}

}  // namespace clip
