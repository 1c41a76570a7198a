#include "clip/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "clip/data/image_folder.h"
#include "clip/dist/communicator.h"
#include "clip/dist/grad_sync.h"
#include "clip/dist/launch.h"
#include "clip/data/shards.h"
#include "clip/model/checkpoint.h"
#include "clip/model/model_tokenizer.h"
#include "clip/model/registry.h"
#include "clip/model/vision_transformer.h"
#include "clip/train/evaluation.h"
#include "clip/train/optimizer.h"
#include "clip/train/report.h"
#include "clip/train/step.h"
#include "clip/train/train_state.h"
#include "clip/util/blas.h"
#include "clip/util/error.h"
#include "clip/util/progress.h"
#include "clip/util/threads.h"
#include "clip/zeroshot/evaluate.h"
#include "clip/text/prompts.h"
#include "train/data_source.h"
#include "train/shard_source.h"
#include "util/atomic_file.h"
#include "util/torch_compat.h"

namespace fs = std::filesystem;

namespace clip {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void write_text(const std::string& path, const std::string& text) {
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

class Trainer {
 public:
  explicit Trainer(TrainConfig config)
      : config_(std::move(config)), env_(detect_dist_env()), device_(rank_device(config_.device, env_)) {}

  TrainResult run() {
    setup();
    TrainResult result;
    result.metrics = metrics_path_;
    const int64_t per_epoch = source_->batches_per_epoch();
    total_steps_ = config_.epochs * per_epoch;
    if (config_.max_steps > 0) total_steps_ = std::min(total_steps_ > 0 ? total_steps_ : config_.max_steps, config_.max_steps);
    if (main_rank()) {
      std::fprintf(stderr, "clip_train: %lld steps (%lld per epoch, batch %lld x %d rank%s), starting at step %lld\n",
                   static_cast<long long>(total_steps_), static_cast<long long>(per_epoch),
                   static_cast<long long>(config_.batch_size), world(), world() > 1 ? "s" : "",
                   static_cast<long long>(progress_.step));
    }

    // This invocation ends at `stop_at`: the whole run, or earlier with --stop-after (then resumed later).
    const int64_t stop_at =
        config_.stop_after > 0 ? std::min(total_steps_, progress_.step + config_.stop_after) : total_steps_;
    std::optional<Progress> bar;
    if (main_rank()) {
      bar.emplace("train", total_steps_, "step");
      bar->advance(progress_.step);
    }
    int64_t consecutive_nonfinite = 0;
    double window_loss = 0, window_wait = 0, window_samples = 0;
    int64_t window_steps = 0, window_skipped_images = 0;
    auto window_start = Clock::now();
    while (progress_.step < stop_at) {
      source_->start_epoch(progress_.epoch, progress_.batch_in_epoch);
      const int64_t step_at_epoch_start = progress_.step, batch_at_epoch_start = progress_.batch_in_epoch;
      while (progress_.step < stop_at) {
        const auto wait = Clock::now();
        std::optional<TrainBatch> batch = source_->next();
        window_wait += seconds_since(wait);
        if (!batch) break;
        ++progress_.batch_in_epoch;
        for (const auto& e : batch->errors) std::fprintf(stderr, "clip_train: rank %d skipped %s\n", env_.rank, e.c_str());
        window_skipped_images += batch->skipped;
        if (batch->images.size(0) < 2) continue;  // nothing to contrast

        const double lr = config_.schedule == "cosine"
                              ? cosine_lr(progress_.step, config_.lr, config_.warmup, total_steps_)
                              : constant_lr(progress_.step, config_.lr, config_.warmup);
        optimizer_->set_lr(lr);
        const StepResult s = step(*batch);
        ++progress_.step;
        progress_.samples_seen += batch->images.size(0) * world();
        if (comm_) comm_->record_step(progress_.step);
        if (!s.finite) {
          ++progress_.nonfinite_skipped;
          ++consecutive_nonfinite;
          if (main_rank()) {
            std::fprintf(stderr, "\nclip_train: step %lld skipped: non-finite %s\n",
                         static_cast<long long>(progress_.step), std::isfinite(s.loss) ? "gradient" : "loss");
          }
          if (consecutive_nonfinite >= config_.max_nonfinite) {
            fail("training diverged: ", consecutive_nonfinite, " non-finite steps in a row (at step ", progress_.step,
                 "); the last good checkpoint is ", last_checkpoint_.empty() ? "(none yet)" : last_checkpoint_,
                 ". Lower --lr, raise --warmup or set --grad-clip-norm");
          }
        } else {
          consecutive_nonfinite = 0;
          result.last_loss = s.loss;
          window_loss += s.loss;
          ++window_steps;
        }
        window_samples += double(batch->images.size(0) * world());
        if (bar) {
          char note[96];
          std::snprintf(note, sizeof note, "loss %.4f lr %.2e", s.loss, lr);
          bar->advance(1, note);
        }

        if (progress_.step % config_.log_every == 0 || progress_.step == total_steps_) {
          const double elapsed = seconds_since(window_start);
          log_train(window_steps ? window_loss / double(window_steps) : s.loss, lr, window_samples / elapsed,
                    window_wait / elapsed, window_skipped_images);
          window_loss = window_wait = window_samples = 0;
          window_steps = window_skipped_images = 0;
          window_start = Clock::now();
        }
        if (config_.save_every > 0 && progress_.step % config_.save_every == 0) save();
        if (config_.eval_every > 0 && progress_.step % config_.eval_every == 0 && progress_.step < total_steps_) {
          evaluate();
        }
      }
      if (progress_.step == step_at_epoch_start && batch_at_epoch_start < per_epoch) {
        fail(config_.train_data, ": epoch ", progress_.epoch, " gave no usable batch (every batch had fewer than two "
             "readable images)");
      }
      if (progress_.batch_in_epoch >= per_epoch || progress_.step < stop_at) {
        ++progress_.epoch;
        progress_.batch_in_epoch = 0;
        if (config_.save_every == 0 && progress_.step < stop_at) save();
      }
    }
    if (bar) bar->finish();
    save();
    if (progress_.step < total_steps_ && main_rank()) {
      std::fprintf(stderr, "clip_train: stopped at step %lld of %lld (--stop-after); continue with --resume latest\n",
                   static_cast<long long>(progress_.step), static_cast<long long>(total_steps_));
    }
    if (progress_.step >= total_steps_ && main_rank()) {
      result.model = (fs::path(config_.output_dir) / "model.safetensors").string();
      save_model(*model_, result.model);
    }
    const double top1 = progress_.step < total_steps_ ? -1 : evaluate();
    result.steps = progress_.step;
    result.nonfinite_skipped = progress_.nonfinite_skipped;
    result.last_checkpoint = last_checkpoint_;
    result.zeroshot_top1 = top1;
    if (config_.report && main_rank()) {
      result.report = (fs::path(config_.output_dir) / "report.html").string();
      write_report(metrics_path_, result.report, "clip_train: " + model_->config().name, to_json(config_));
    }
    return result;
  }

 private:
  void setup() {
    validate(config_);
    set_cpu_threads(config_.threads);
    CommunicatorOptions comm_options;
    comm_options.backend = config_.dist_backend;
    comm_options.device = device_;
    comm_options.timeout = std::chrono::seconds(config_.dist_timeout);
    comm_ = Communicator::create(env_, comm_options);
    if (comm_ && main_rank()) {
      std::fprintf(stderr, "clip_train: %d ranks (%s), rendezvous at %s:%d, global batch %lld\n", world(),
                   env_.launcher.c_str(), env_.master_addr.c_str(), env_.master_port,
                   static_cast<long long>(config_.batch_size * world()));
    }
    warn_if_reference_blas();
    if (config_.precision == "bf16" && !device_.is_cuda()) {
      fail("--precision bf16 is autocast on CUDA; on ", config_.device, " use fp32");
    }
    std::error_code ec;
    fs::create_directories(config_.output_dir, ec);
    if (ec) fail(config_.output_dir, ": cannot create the output folder (", ec.message(), ")");
    metrics_path_ = (fs::path(config_.output_dir) / "metrics.jsonl").string();

    std::string resume_path;
    if (config_.resume == "latest") {
      resume_path = latest_checkpoint(config_.output_dir);
      if (resume_path.empty() && main_rank()) std::fprintf(stderr, "clip_train: no checkpoint in %s yet; starting fresh\n", config_.output_dir.c_str());
    } else if (!config_.resume.empty()) {
      resume_path = config_.resume;
    }

    at::manual_seed(static_cast<uint64_t>(config_.seed));
    build_model();
    AdamWOptions adamw = default_adamw_options(model_->config());
    adamw.lr(config_.lr).weight_decay(config_.weight_decay).beta1(config_.beta1);
    if (config_.beta2 > 0) adamw.beta2(config_.beta2);
    if (config_.eps > 0) adamw.eps(config_.eps);
    optimizer_ = std::make_unique<AdamW>(*model_, adamw);
    loss_ = std::make_unique<InfoNCELoss>(config_.local_loss);

    if (!resume_path.empty()) {
      const TrainCheckpoint ck = load_train_checkpoint(resume_path);
      load_state_dict(*model_, ck.model, resume_path);
      optimizer_->load_state_dict(ck.optimizer, resume_path);
      if (ck.cpu_rng_state.defined()) {
        at::Generator generator = at::detail::getDefaultCPUGenerator();
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_state(ck.cpu_rng_state);
      }
      progress_ = ck.progress;
      saved_step_ = progress_.step;
      last_checkpoint_ = resume_path;
      if (main_rank()) {
        std::fprintf(stderr, "clip_train: resumed from %s (step %lld, epoch %lld)\n", resume_path.c_str(),
                     static_cast<long long>(progress_.step), static_cast<long long>(progress_.epoch));
      }
    } else if (main_rank()) {
      // A fresh run starts a fresh metrics file.
      std::ofstream(metrics_path_, std::ios::trunc).close();
    }
    if (comm_) {
      // Every rank starts from rank 0's weights (and resumes from its checkpoint's).
      std::vector<at::Tensor> state;
      for (const auto& [name, t] : state_dict(*model_)) state.push_back(t);
      broadcast_module_state(*comm_, state);
      sync_ = std::make_unique<GradientSynchronizer>(*comm_, *model_, config_.bucket_mb << 20);
    }

    if (main_rank()) {
      const std::string resolved = to_json(config_);
      std::fprintf(stderr, "clip_train: resolved config:\n%s\n", resolved.c_str());
      write_text((fs::path(config_.output_dir) / "config.json").string(), resolved + "\n");
      write_text((fs::path(config_.output_dir) / "model_config.json").string(), to_json(model_->config()) + "\n");
    }
    build_data();
  }

  void build_model() {
    ModelConfig config;
    if (!config_.model_config.empty()) {
      config = load_model_config(config_.model_config);
    } else if (!config_.model.empty()) {
      config = registered_config(config_.model);
    }
    if (!config_.init.empty()) {
      model_ = load_model(config_.init, LoadOptions().config_path(config_.model_config).model_name(config_.model));
    } else {
      model_ = CLIP(config);
    }
    convert_module(*model_, device_, at::kFloat);  // fp32 master weights; bf16 comes from autocast
    if (config_.lock_image) {
      for (auto& p : model_->visual->parameters()) p.requires_grad_(false);
    }
    if (config_.grad_checkpointing) {
      model_->text->transformer->set_grad_checkpointing(true);
      if (auto* vit = dynamic_cast<VisionTransformerImpl*>(model_->visual.get())) {
        vit->transformer->set_grad_checkpointing(true);
      }
    }
    if (main_rank()) {
      std::fprintf(stderr, "clip_train: model %s, %.2fM parameters%s\n", model_->config().name.c_str(),
                   double(count_parameters(*model_)) / 1e6, config_.lock_image ? " (image tower locked)" : "");
    }
  }

  void build_data() {
    const ModelConfig& mc = model_->config();
    if (config_.train_data == "synthetic") {
      source_ = make_synthetic_source(mc, config_, env_.rank, world());
    } else if (looks_like_shards(config_.train_data)) {
      tokenizer_ = std::shared_ptr<const Tokenizer>(load_tokenizer(mc.text));
      source_ = make_shard_source(mc, config_, tokenizer_, env_.rank, world());
    } else {
      tokenizer_ = std::shared_ptr<const Tokenizer>(load_tokenizer(mc.text));
      CaptionDataset data;
      if (fs::is_directory(config_.train_data)) {
        data = caption_folder(config_.train_data, load_prompt_set(config_.caption_templates).templates, config_.class_names);
      } else {
        data = read_caption_csv(config_.train_data, config_.csv_img_key, config_.csv_caption_key, config_.csv_separator);
      }
      if (config_.val_split > 0) {
        auto [train, held] = split_dataset(data, config_.val_split, uint64_t(config_.seed));
        data = std::move(train);
        validation_ = std::move(held);
      }
      if (main_rank()) {
        std::fprintf(stderr, "clip_train: %zu training samples from %s\n", data.size(), config_.train_data.c_str());
      }
      source_ = make_dataset_source(std::move(data), mc, config_, tokenizer_, env_.rank, world());
    }
    if (!progress_.data_position.empty()) source_->restore_position(progress_.data_position);
    if (!config_.val_data.empty()) {
      validation_ = fs::is_directory(config_.val_data)
                        ? caption_folder(config_.val_data, load_prompt_set(config_.caption_templates).templates,
                                         config_.class_names)
                        : read_caption_csv(config_.val_data, config_.csv_img_key, config_.csv_caption_key,
                                           config_.csv_separator);
    }
    if ((!config_.zeroshot_data.empty() || validation_) && !tokenizer_) {
      tokenizer_ = std::shared_ptr<const Tokenizer>(load_tokenizer(mc.text));
    }
    if (!config_.zeroshot_data.empty()) zeroshot_folder_ = scan_labeled_folder(config_.zeroshot_data);
  }

  void set_train_mode() {
    model_->train();
    if (config_.lock_image) model_->visual->eval();  // a locked tower keeps its BatchNorm statistics
  }

  // One optimizer step (clip/train/step.h: the same step clip_bench times).
  StepResult step(const TrainBatch& batch) {
    set_train_mode();
    const at::Tensor images = batch.images.to(device_, /*non_blocking=*/true);
    const at::Tensor texts = batch.texts.to(device_, /*non_blocking=*/true);
    StepOptions options;
    options.accum_freq = config_.accum_freq;
    options.bf16_autocast = config_.precision == "bf16" && device_.is_cuda();
    options.grad_clip_norm = config_.grad_clip_norm;
    DistributedStep dist;
    dist.comm = comm_.get();
    dist.sync = sync_.get();
    return train_step(*model_, *optimizer_, *loss_, images, texts, options, dist);
  }

  bool main_rank() const { return env_.rank == 0; }
  int world() const { return env_.world_size; }

  // With several ranks, "cuda" means this rank's GPU (LOCAL_RANK).
  static at::Device rank_device(const std::string& device, const DistEnv& env) {
    at::Device d(device);
    if (d.is_cuda() && !d.has_index() && env.world_size > 1) return at::Device(at::kCUDA, static_cast<int8_t>(env.local_rank));
    return d;
  }

  void log_train(double loss, double lr, double samples_per_s, double wait_share, int64_t skipped_images) {
    const json line = {{"type", "train"},
                       {"step", progress_.step},
                       {"epoch", progress_.epoch},
                       {"loss", loss},
                       {"lr", lr},
                       {"logit_scale", model_->logit_scale.exp().item<double>()},
                       {"samples_per_s", samples_per_s},
                       {"data_wait", wait_share},
                       {"skipped_images", skipped_images},
                       {"nonfinite_skipped", progress_.nonfinite_skipped}};
    append_metrics(line);
  }

  void append_metrics(const json& line) {
    if (!main_rank()) return;
    std::ofstream out(metrics_path_, std::ios::app);
    out << line.dump() << "\n";
    if (!out) fail(metrics_path_, ": cannot append metrics (disk full?)");
  }

  // Every rank calls this at the same steps: the data positions are gathered, rank 0 writes.
  void save() {
    if (saved_step_ == progress_.step) return;  // already written at this step
    saved_step_ = progress_.step;
    progress_.data_position = source_->position();
    if (comm_) {
      // One record per rank (shard streams differ by rank): a JSON array when any rank has one.
      const std::vector<std::string> all = comm_->all_gather_strings(progress_.data_position);
      const bool any = std::any_of(all.begin(), all.end(), [](const std::string& p) { return !p.empty(); });
      std::string joined;
      for (const auto& p : all) joined += (joined.empty() ? "[" : ",") + (p.empty() ? std::string("null") : p);
      progress_.data_position = any ? joined + "]" : "";
    }
    if (!main_rank()) return;
    const std::string path = checkpoint_path(config_.output_dir, progress_.step);
    save_train_checkpoint(path, *model_, *optimizer_, progress_, to_json(config_));
    last_checkpoint_ = path;
    prune_checkpoints(config_.output_dir, config_.keep_checkpoints);
  }

  // Zero-shot and retrieval evaluations; returns the zero-shot top-1 (or -1).
  double evaluate() {
    if (zeroshot_folder_.paths.empty() && !validation_) return -1;
    if (!main_rank()) {
      comm_->barrier();  // rank 0 evaluates; the others wait for it
      return -1;
    }
    json line = {{"type", "eval"}, {"step", progress_.step}, {"epoch", progress_.epoch}};
    double top1 = -1;
    model_->eval();
    if (!zeroshot_folder_.paths.empty()) {
      const PromptSet prompts = load_prompt_set(config_.zeroshot_templates);
      const std::vector<std::string> classes =
          config_.zeroshot_class_names.empty() ? zeroshot_folder_.classes
                                               : map_class_names(zeroshot_folder_.classes, config_.zeroshot_class_names);
      const ZeroShotClassifier classifier = ZeroShotClassifier::build(*model_, *tokenizer_, classes, prompts.templates);
      ZeroShotRunOptions o;
      o.batch_size = std::min<int64_t>(config_.batch_size, 256);
      o.threads = config_.workers;
      o.progress = false;
      o.report_skipped = false;
      const ZeroShotSummary s = classify_folder(*model_, classifier, zeroshot_folder_, o);
      top1 = s.top1;
      line["zeroshot_top1"] = s.top1;
      line["zeroshot_top5"] = s.topk;
      line["zeroshot_mean_per_class"] = s.mean_per_class;
      std::fprintf(stderr, "\nclip_train: step %lld zero-shot top-1 %.2f%%, top-5 %.2f%% on %lld images\n",
                   static_cast<long long>(progress_.step), 100 * s.top1, 100 * s.topk, static_cast<long long>(s.images));
    }
    if (validation_) {
      const RetrievalMetrics r = evaluate_retrieval(*model_, *validation_, *tokenizer_,
                                                    std::min<int64_t>(config_.batch_size, 256), config_.workers);
      const char* names[3] = {"r1", "r5", "r10"};
      for (int i = 0; i < 3; ++i) {
        line[std::string("image_to_text_") + names[i]] = r.image_to_text[size_t(i)];
        line[std::string("text_to_image_") + names[i]] = r.text_to_image[size_t(i)];
      }
      std::fprintf(stderr, "clip_train: step %lld retrieval on %lld pairs: image->text R@1 %.3f, text->image R@1 %.3f\n",
                   static_cast<long long>(progress_.step), static_cast<long long>(r.pairs), r.image_to_text[0],
                   r.text_to_image[0]);
    }
    append_metrics(line);
    set_train_mode();
    if (comm_) comm_->barrier();
    return top1;
  }

  TrainConfig config_;
  DistEnv env_;
  at::Device device_;
  std::shared_ptr<Communicator> comm_;
  std::unique_ptr<GradientSynchronizer> sync_;
  CLIP model_{nullptr};
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<Loss> loss_;
  std::unique_ptr<BatchSource> source_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<CaptionDataset> validation_;
  ImageFolder zeroshot_folder_;
  TrainProgress progress_;
  int64_t total_steps_ = 0;
  int64_t saved_step_ = -1;
  std::string metrics_path_;
  std::string last_checkpoint_;
};

}  // namespace

TrainResult train(const TrainConfig& config) { return Trainer(config).run(); }

}  // namespace clip
