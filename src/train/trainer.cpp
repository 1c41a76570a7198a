#include "clip/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>

#include "clip/data/image_folder.h"
#include "clip/data/shards.h"
#include "clip/dist/communicator.h"
#include "clip/dist/grad_sync.h"
#include "clip/dist/launch.h"
#include "clip/model/checkpoint.h"
#include "clip/model/model_tokenizer.h"
#include "clip/model/registry.h"
#include "clip/text/prompts.h"
#include "clip/train/evaluation.h"
#include "clip/train/optimizer.h"
#include "clip/io/tensor_map.h"
#include "clip/train/train_state.h"
#include "clip/util/blas.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/threads.h"
#include "clip/zeroshot/evaluate.h"
#include "train/data_source.h"
#include "train/shard_source.h"
#include "util/atomic_file.h"
#include "util/clock.h"
#include "util/device.h"
#include "util/memory.h"
#include "util/process.h"

namespace fs = std::filesystem;

namespace clip {

namespace {

std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "request_training_stop must be async-signal-safe");

void write_text(const std::string& path, const std::string& text) {
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

// With several ranks, "cuda" means this rank's GPU (LOCAL_RANK).
at::Device rank_device(const std::string& device, const DistEnv& env) {
  const at::Device d = parse_device(device);
  if (d.is_cuda() && !d.has_index() && env.world_size > 1) return at::Device(at::kCUDA, static_cast<int8_t>(env.local_rank));
  return d;
}

}  // namespace

void request_training_stop(int signal) noexcept {
  int none = 0;  // the first request is the one reported; later ones (a second signal during the save) change nothing
  g_stop_signal.compare_exchange_strong(none, signal > 0 ? signal : SIGTERM);
}

class Trainer::Impl {
 public:
  explicit Impl(TrainConfig config)
      : config_(std::move(config)), env_(detect_dist_env()), device_(rank_device(config_.runtime.device, env_)) {}

  std::unique_ptr<BatchSource> source_;
  std::shared_ptr<const Loss> loss_;
  std::vector<std::shared_ptr<TrainCallback>> callbacks_;
  CLIP model_{nullptr};
  bool ran_ = false;

  TrainResult run() {
    if (ran_) fail("Trainer::run: a Trainer runs once; make another for another run");
    ran_ = true;
    struct ClearStopRequest {  // however run() ends, a request does not carry over to the next one
      ~ClearStopRequest() { g_stop_signal.store(0); }
    } clear_stop_request;
    setup();
    TrainResult result;
    const int64_t per_epoch = source_->batches_per_epoch();
    if (per_epoch < 1) fail("the batch source has no batches per epoch");
    const OptimizerOptions& opt = config_.optimizer;
    total_steps_ = opt.epochs * per_epoch;
    if (opt.max_steps > 0) total_steps_ = std::min(total_steps_ > 0 ? total_steps_ : opt.max_steps, opt.max_steps);
    result.total_steps = total_steps_;
    message("clip_train: ", total_steps_, " steps (", per_epoch, " per epoch, batch ", batch_size_label(), " x ",
            world(), world() > 1 ? " ranks" : " rank", "), starting at step ", progress_.step);
    StartEvent start;
    start.first_step = progress_.step;
    start.total_steps = total_steps_;
    start.batches_per_epoch = per_epoch;
    start.world_size = world();
    start.resumed = resumed_;
    start.output_dir = config_.checkpoint.output_dir;
    start.config_json = to_json(config_);
    start.model_name = model_->config().name;
    start.global_batch = progress_.global_batch;
    for (const at::Tensor& p : model_->parameters()) {
      start.parameters += p.numel();
      if (p.requires_grad()) start.trainable_parameters += p.numel();
    }
    start.command_line = process_command_line();
    emit([&](TrainCallback& c) { c.on_start(start); });

    // This invocation ends at `stop_at`: the whole run, or earlier with stop_after (then resumed later).
    const int64_t stop_after = config_.checkpoint.stop_after;
    const int64_t stop_at = stop_after > 0 ? std::min(total_steps_, progress_.step + stop_after) : total_steps_;
    int64_t consecutive_nonfinite = 0;
    Window window;
    int stop_signal = 0;
    while (progress_.step < stop_at) {
      source_->start_epoch(progress_.epoch, progress_.batch_in_epoch);
      const int64_t step_at_epoch_start = progress_.step, batch_at_epoch_start = progress_.batch_in_epoch;
      std::string first_failure;  // of this epoch, for the error when no batch could be made
      while (progress_.step < stop_at) {
        if ((stop_signal = agreed_stop_signal()) != 0) break;
        const auto wait = Clock::now();
        std::optional<TrainBatch> batch = source_->next();
        window.wait += seconds_since(wait);
        if (!batch) break;
        ++progress_.batch_in_epoch;
        for (const auto& e : batch->errors) report_skip(e);
        if (first_failure.empty() && !batch->errors.empty()) first_failure = batch->errors.front();
        const RankRows rows = equalize_rows(*batch);
        window.skipped_images += rows.skipped;
        if (rows.fewest == 0 || rows.fewest * world() < 2) continue;  // nothing to contrast (on every rank alike)

        const double lr = opt.schedule == LrSchedule::cosine ? cosine_lr(progress_.step, opt.lr, opt.warmup, total_steps_)
                                                             : constant_lr(progress_.step, opt.lr, opt.warmup);
        optimizer_->set_lr(lr);
        const StepResult s = step(*batch);
        ++progress_.step;
        const int64_t samples = rows.fewest * world();
        progress_.samples_seen += samples;
        if (comm_) comm_->record_step(progress_.step);
        if (!s.finite) {
          ++progress_.nonfinite_skipped;
          ++consecutive_nonfinite;
          message("clip_train: step ", progress_.step, " skipped: non-finite ", std::isfinite(s.loss) ? "gradient" : "loss");
          if (consecutive_nonfinite >= opt.max_nonfinite) {
            fail("training diverged: ", consecutive_nonfinite, " non-finite steps in a row (at step ", progress_.step,
                 "); the last good checkpoint is ", last_checkpoint_.empty() ? "(none yet)" : last_checkpoint_,
                 ". Lower --lr, raise --warmup or set --grad-clip-norm");
          }
        } else {
          consecutive_nonfinite = 0;
          result.last_loss = s.loss;
          window.loss += s.loss;
          ++window.steps;
        }
        window.samples += double(samples);
        ++window.taken;
        StepEvent event;
        event.step = progress_.step;
        event.total_steps = total_steps_;
        event.epoch = progress_.epoch;
        event.lr = lr;
        event.samples = samples;
        event.result = s;
        emit([&](TrainCallback& c) { c.on_step(event); });

        if (progress_.step % config_.checkpoint.log_every == 0 || progress_.step == total_steps_) {
          report_window(window, s.loss, lr);
          window = Window();
        }
        if (config_.checkpoint.save_every > 0 && progress_.step % config_.checkpoint.save_every == 0) save();
        const int64_t eval_every = config_.evaluation.eval_every;
        if (eval_every > 0 && progress_.step % eval_every == 0 && progress_.step < total_steps_) evaluate();
      }
      if (stop_signal != 0) break;
      if (progress_.step == step_at_epoch_start && batch_at_epoch_start < per_epoch) {
        fail(data_name(), ": epoch ", progress_.epoch, " gave no usable batch (every batch had fewer than two "
             "readable images)", first_failure.empty() ? "" : "; the first failure: " + first_failure);
      }
      if (progress_.batch_in_epoch >= per_epoch || progress_.step < stop_at) {
        ++progress_.epoch;
        progress_.batch_in_epoch = 0;
        if (config_.checkpoint.save_every == 0 && progress_.step < stop_at) save();
      }
    }
    save();
    result.stop_signal = stop_signal;
    if (stop_signal != 0) {
      message("clip_train: stopped at step ", progress_.step, " of ", total_steps_, " on ", signal_name(stop_signal),
              "; checkpoint ", last_checkpoint_, "; continue with --resume latest");
    } else if (progress_.step < total_steps_) {
      message("clip_train: stopped at step ", progress_.step, " of ", total_steps_,
              " (--stop-after); continue with --resume latest");
    }
    if (progress_.step >= total_steps_ && main_rank()) {
      result.model = (fs::path(config_.checkpoint.output_dir) / "model.safetensors").string();
      save_model(*model_, result.model);
    }
    result.zeroshot_top1 = progress_.step < total_steps_ ? -1 : evaluate();
    result.peak_memory_bytes = report_peak_memory();
    result.steps = progress_.step;
    result.nonfinite_skipped = progress_.nonfinite_skipped;
    result.last_checkpoint = last_checkpoint_;
    emit([&](TrainCallback& c) { c.on_end(result); });
    return result;
  }

 private:
  struct Window {
    double loss = 0, wait = 0, samples = 0;
    int64_t steps = 0, taken = 0, skipped_images = 0;  // steps: the finite ones; taken: all
    Clock::time_point start = Clock::now();
  };

  // Calls every callback on rank 0.
  template <typename F>
  void emit(F&& f) {
    if (!main_rank()) return;
    for (const auto& c : callbacks_) f(*c);
  }

  template <typename... Args>
  void message(const Args&... args) {
    if (!main_rank() || callbacks_.empty()) return;
    const std::string line = str(args...);
    emit([&](TrainCallback& c) { c.on_message(line); });
  }

  std::string data_name() const {
    return config_.data.train_data.empty() ? std::string("the batch source") : config_.data.train_data;
  }

  std::string batch_size_label() const {
    return custom_source_ ? std::string("from the batch source") : std::to_string(config_.data.batch_size);
  }

  void setup() {
    validate(config_);
    if (!source_ && config_.data.train_data.empty()) {
      fail("no training data: set --train-data (CSV, labeled folder, shards or 'synthetic') or give the Trainer a "
           "BatchSource");
    }
    custom_source_ = source_ != nullptr;
    set_cpu_threads(config_.runtime.threads);
    CommunicatorOptions comm_options;
    comm_options.backend = config_.distributed.backend;
    comm_options.device = device_;
    comm_options.timeout = std::chrono::seconds(config_.distributed.timeout);
    comm_ = Communicator::create(env_, comm_options);
    if (comm_) {
      message("clip_train: ", world(), " ranks (", env_.launcher, "), rendezvous at ", env_.master_addr, ":",
              env_.master_port, ", global batch ", config_.data.batch_size * world());
    }
    warn_if_reference_blas();
    if (config_.runtime.precision == Precision::bf16 && !device_.is_cuda()) {
      fail("--precision bf16 is autocast on CUDA; on ", config_.runtime.device, " use fp32");
    }
    const std::string& out = config_.checkpoint.output_dir;
    // Another run's folder is never written over by accident (as open_clip refuses an existing experiment name).
    if (config_.checkpoint.resume.empty()) {
      if (const std::vector<std::string> earlier = run_files(out); !earlier.empty()) {
        if (!config_.checkpoint.overwrite) {
          std::vector<std::string> names;
          for (const std::string& f : earlier) names.push_back(fs::path(f).filename().string());
          fail(out, ": holds another run (", name_list(names), "); pass --resume latest to continue it, --overwrite ",
               "to replace it, or choose another --output-dir");
        }
        if (main_rank()) {
          for (const std::string& f : earlier) fs::remove(f);
          message("clip_train: --overwrite: removed the ", earlier.size(), " files of the earlier run in ", out);
        }
      }
    }
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) fail(out, ": cannot create the output folder (", ec.message(), ")");

    std::string resume_path;
    if (config_.checkpoint.resume == "latest" || config_.checkpoint.resume == "auto") {
      resume_path = latest_checkpoint(out);
      if (resume_path.empty()) message("clip_train: no checkpoint in ", out, " yet; starting fresh");
    } else if (!config_.checkpoint.resume.empty()) {
      resume_path = config_.checkpoint.resume;
    }

    at::manual_seed(static_cast<uint64_t>(config_.runtime.seed));
    build_model();
    AdamWOptions adamw = default_adamw_options(model_->config());
    const OptimizerOptions& opt = config_.optimizer;
    adamw.lr(opt.lr).weight_decay(opt.weight_decay).beta1(opt.beta1);
    if (opt.beta2 > 0) adamw.beta2(opt.beta2);
    if (opt.eps > 0) adamw.eps(opt.eps);
    const bool shard = config_.distributed.shard_optimizer && comm_;
    optimizer_ = std::make_unique<AdamW>(*model_, adamw, shard ? comm_.get() : nullptr);
    if (shard) {
      message("clip_train: optimizer state sharded over ", world(), " ranks (ZeRO-1): ",
              double(optimizer_->state_bytes()) / (1 << 20), " MiB on this rank");
    }
    if (!loss_ && config_.optimizer.loss == "siglip") loss_ = std::make_shared<SigLipLoss>();
    if (!loss_) loss_ = std::make_shared<InfoNCELoss>(config_.distributed.local_loss);

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
      continue_on_this_world(resume_path);
      saved_step_ = progress_.step;
      last_checkpoint_ = resume_path;
      resumed_ = true;
      message("clip_train: resumed from ", resume_path, " (step ", progress_.step, ", epoch ", progress_.epoch, ")");
    }
    progress_.world_size = world();
    progress_.global_batch = config_.data.batch_size * world();
    if (comm_) {
      // Every rank starts from rank 0's weights (and resumes from its checkpoint's).
      std::vector<at::Tensor> state;
      for (const auto& [name, t] : state_dict(*model_)) state.push_back(t);
      broadcast_module_state(*comm_, state);
      sync_ = std::make_unique<GradientSynchronizer>(*comm_, *model_, config_.distributed.bucket_mb << 20);
    }

    if (main_rank()) {
      const std::string resolved = to_json(config_);
      message("clip_train: resolved config:\n", resolved);
      write_text((fs::path(out) / "config.json").string(), resolved + "\n");
      write_text((fs::path(out) / "model_config.json").string(), to_json(model_->config()) + "\n");
    }
    build_data();
  }

  // A checkpoint written by another number of ranks. Parameters and the optimizer state are whole in every
  // checkpoint (sharded or not), so only the data position needs care: batch_in_epoch counts global batches of
  // the run that wrote it. The same global batch (e.g. 2 ranks x 4 -> 1 rank x 8) continues with exactly the
  // batches the old run would have taken; another global batch continues at the same sample of the epoch's
  // order when a whole number of new batches precedes it, and is refused otherwise.
  void continue_on_this_world(const std::string& path) {
    const int64_t global = config_.data.batch_size * world();
    const int64_t old_world = progress_.world_size, old_global = progress_.global_batch;  // setup() records ours
    if (old_global == 0 || (old_global == global && old_world == world())) return;
    if (old_global == global) {
      message("clip_train: ", path, " was written by ", old_world, " rank(s); continuing on ", world(),
              " with the same global batch of ", global, ": the same batches follow");
      return;
    }
    const int64_t sample = progress_.batch_in_epoch * old_global;
    if (sample % global != 0) {
      const std::string keep =
          old_global % world() == 0 ? str(" (--batch-size ", old_global / world(), " keeps it)") : std::string();
      fail(path, ": written with a global batch of ", old_global, " (", old_world, " x ", old_global / std::max<int64_t>(old_world, 1),
           "), stopped after sample ", sample, " of epoch ", progress_.epoch, ", which is not a whole number of batches of ",
           global, " (", world(), " x ", config_.data.batch_size, "); resume with the same global batch", keep);
    }
    progress_.batch_in_epoch = sample / global;
    message("clip_train: ", path, " was written with a global batch of ", old_global, "; continuing with ", global,
            " from sample ", sample, " of epoch ", progress_.epoch, " (batch ", progress_.batch_in_epoch,
            "); the step count and the schedule follow the new batch");
  }

  void build_model() {
    const ModelOptions& m = config_.model;
    ModelConfig config;
    if (!m.config.empty()) {
      config = load_model_config(m.config);
    } else if (!m.name.empty()) {
      config = registered_config(m.name);
    }
    const bool siglip = config_.optimizer.loss == "siglip";
    if (!m.init.empty()) {
      model_ = load_model(m.init, LoadOptions().config_path(m.config).model_name(m.name));
      if (siglip && !model_->logit_bias.defined()) {
        // Fine-tuning a CLIP checkpoint with the sigmoid loss: the same weights plus a bias at SigLIP's start.
        ModelConfig with_bias = model_->config();
        with_bias.init_logit_bias = -10.0;
        TensorMap weights = state_dict(*model_);
        weights["logit_bias"] = at::full({}, -10.0);
        CLIP model(with_bias);
        load_state_dict(*model, weights, m.init);
        model_ = model;
        message("clip_train: ", m.init, " has no logit bias; --loss siglip starts one at -10");
      }
    } else {
      if (siglip) {
        // The paper's and open_clip's start: temperature 10, bias -10 (unless the model config sets a bias).
        config.init_logit_scale = std::log(10.0);
        if (!config.init_logit_bias) config.init_logit_bias = -10.0;
      }
      model_ = CLIP(config);
    }
    if (!siglip && model_->logit_bias.defined()) {
      model_->logit_bias.requires_grad_(false);
      message("clip_train: the model's logit bias is not part of the InfoNCE loss; it is kept as it is");
    }
    convert_module(*model_, device_, at::kFloat);  // fp32 master weights; bf16 comes from autocast
    if (m.lock_image) {
      for (auto& p : model_->visual->parameters()) p.requires_grad_(false);
    }
    if (m.grad_checkpointing) model_->set_grad_checkpointing(true);
    message("clip_train: model ", model_->config().name, ", ", double(count_parameters(*model_)) / 1e6,
            "M parameters", m.lock_image ? " (image tower locked)" : "");
  }

  void build_data() {
    const ModelConfig& mc = model_->config();
    const DataOptions& d = config_.data;
    const EvaluationOptions& e = config_.evaluation;
    auto tokenizer = [&] {
      if (!tokenizer_) tokenizer_ = std::shared_ptr<const Tokenizer>(load_tokenizer(mc.text));
      return tokenizer_;
    };
    if (custom_source_) {
      if (e.val_split > 0) fail("--val-split holds out part of config.data; with an app's BatchSource use --val-data");
    } else if (d.train_data == "synthetic") {
      source_ = make_synthetic_source(mc, config_, env_.rank, world());
    } else if (looks_like_shards(d.train_data)) {
      source_ = make_shard_source(mc, config_, tokenizer(), env_.rank, world());
    } else {
      CaptionDataset data;
      if (fs::is_directory(d.train_data)) {
        data = caption_folder(d.train_data, load_prompt_set(d.caption_templates).templates, d.class_names);
      } else {
        data = read_caption_csv(d.train_data, d.csv_img_key, d.csv_caption_key, d.csv_separator);
      }
      if (e.val_split > 0) {
        auto [train, held] = split_dataset(data, e.val_split, uint64_t(config_.runtime.seed));
        data = std::move(train);
        validation_ = std::move(held);
      }
      message("clip_train: ", data.size(), " training samples from ", d.train_data);
      source_ = make_dataset_source(std::move(data), mc, config_, tokenizer(), env_.rank, world());
    }
    if (!progress_.data_position.empty()) source_->restore_position(progress_.data_position);
    if (!e.val_data.empty()) {
      validation_ = fs::is_directory(e.val_data)
                        ? caption_folder(e.val_data, load_prompt_set(d.caption_templates).templates, d.class_names)
                        : read_caption_csv(e.val_data, d.csv_img_key, d.csv_caption_key, d.csv_separator);
    }
    if (!e.zeroshot_data.empty() || validation_) tokenizer();
    if (!e.zeroshot_data.empty()) zeroshot_folder_ = scan_labeled_folder(e.zeroshot_data);
  }

  void set_train_mode() {
    model_->train();
    if (config_.model.lock_image) model_->visual->eval();  // a locked tower keeps its BatchNorm statistics
  }

  // This rank's peak memory; rank 0 names every rank's (one all-gather).
  int64_t report_peak_memory() {
    const int64_t mine = peak_memory_bytes(device_);
    std::string each = format_gib(mine);
    if (comm_) {
      const at::Tensor all = comm_->all_gather(at::full({1}, mine, at::kLong).to(comm_->device())).to(at::kCPU);
      each.clear();
      for (int64_t r = 0; r < all.size(0); ++r) each += str(r ? ", " : "", format_gib(all[r].item<int64_t>()));
    }
    message("clip_train: peak memory ", device_.is_cuda() ? "(CUDA allocator)" : "(resident)",
            world() > 1 ? " per rank: " : ": ", each);
    return mine;
  }

  // The stop request every rank acts on (0: none; else the signal of the lowest rank that has one). Ranks receive
  // a signal at different moments, so they agree before each step (one small all-gather) and stop at the same one.
  int agreed_stop_signal() {
    const int mine = g_stop_signal.load();
    if (!comm_) return mine;
    const at::Tensor all =
        comm_->all_gather(at::full({1}, static_cast<int64_t>(mine), at::kLong).to(comm_->device())).to(at::kCPU);
    for (int64_t r = 0; r < all.size(0); ++r) {
      if (all[r].item<int64_t>() != 0) return static_cast<int>(all[r].item<int64_t>());  // the lowest rank's
    }
    return 0;
  }

  static std::string signal_name(int signal) {
    switch (signal) {
      case SIGTERM: return "SIGTERM";
      case SIGUSR1: return "SIGUSR1";
      case SIGINT: return "SIGINT";
      default: return str("signal ", signal);
    }
  }

  struct RankRows {
    int64_t fewest = 0;   // the usable rows every rank trains on
    int64_t skipped = 0;  // unreadable samples, summed over ranks
  };

  // Every rank contrasts the same number of rows (the gathers and the ring exchange take equal shapes, and the
  // gradient average weighs ranks alike): when unreadable samples left a rank fewer, the others drop their last
  // rows to match, and rank 0 says so. One small all-gather per step; the step's own synchronization follows it.
  RankRows equalize_rows(TrainBatch& batch) {
    RankRows r;
    const int64_t mine = batch.images.size(0);
    r.fewest = mine;
    r.skipped = batch.skipped;
    if (!comm_) return r;
    const at::Tensor counts =
        comm_->all_gather(at::tensor({mine, batch.skipped}, at::kLong).view({1, 2}).to(comm_->device())).to(at::kCPU);
    r.fewest = counts.select(1, 0).min().item<int64_t>();
    r.skipped = counts.select(1, 1).sum().item<int64_t>();
    if (r.fewest < counts.select(1, 0).max().item<int64_t>()) {
      message("clip_train: step ", progress_.step + 1, ": a rank has only ", r.fewest, " readable samples; every rank "
              "trains on ", r.fewest, " (", counts.select(1, 0).sum().item<int64_t>() - r.fewest * world(),
              " readable samples left out, so that the ranks' batches stay equal)");
    }
    if (r.fewest < mine) {
      batch.images = batch.images.narrow(0, 0, r.fewest);
      batch.texts = batch.texts.narrow(0, 0, r.fewest);
    }
    return r;
  }

  // A sample this rank could not read: rank 0 reports through the callbacks, the others on their stderr.
  void report_skip(const std::string& error) {
    if (main_rank()) {
      message("clip_train: rank 0 skipped ", error);
    } else {
      log_warning("clip_train: rank ", env_.rank, " skipped ", error);
    }
  }

  // One optimizer step (clip/train/step.h: the same step clip_bench times).
  StepResult step(const TrainBatch& batch) {
    set_train_mode();
    const at::Tensor images = batch.images.to(device_, /*non_blocking=*/true);
    const at::Tensor texts = batch.texts.to(device_, /*non_blocking=*/true);
    StepOptions options;
    options.accum_freq = config_.optimizer.accum_freq;
    options.bf16_autocast = config_.runtime.precision == Precision::bf16 && device_.is_cuda();
    options.grad_clip_norm = config_.optimizer.grad_clip_norm;
    DistributedStep dist;
    dist.comm = comm_.get();
    dist.sync = sync_.get();
    return train_step(*model_, *optimizer_, *loss_, images, texts, options, dist);
  }

  bool main_rank() const { return env_.rank == 0; }
  int world() const { return env_.world_size; }

  void report_window(const Window& w, double last_loss, double lr) {
    const double elapsed = seconds_since(w.start);
    MetricsEvent m;
    m.step = progress_.step;
    m.epoch = progress_.epoch;
    m.loss = w.steps ? w.loss / double(w.steps) : last_loss;
    m.lr = lr;
    m.logit_scale = model_->logit_scale.exp().item<double>();
    if (model_->logit_bias.defined()) m.logit_bias = model_->logit_bias.item<double>();
    m.samples_per_s = w.samples / elapsed;
    m.data_wait = w.wait / elapsed;
    m.step_seconds = w.taken ? elapsed / double(w.taken) : 0;
    m.data_wait_seconds = w.taken ? w.wait / double(w.taken) : 0;
    m.skipped_images = w.skipped_images;
    m.nonfinite_skipped = progress_.nonfinite_skipped;
    emit([&](TrainCallback& c) { c.on_metrics(m); });
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
    const TensorMap optimizer_state = optimizer_->state_dict();  // sharded: gathered from every rank
    if (!main_rank()) return;
    // Weights that went non-finite (a diverged run) are never written over the last good checkpoint.
    if (const std::vector<std::string> bad = nonfinite_tensors(state_dict(*model_)); !bad.empty()) {
      fail("training diverged: at step ", progress_.step, " the weights hold NaN or infinity (", name_list(bad), "); ",
           "nothing was saved. The last good checkpoint is ", last_checkpoint_.empty() ? "(none yet)" : last_checkpoint_,
           ". Lower --lr, raise --warmup or set --grad-clip-norm");
    }
    const std::string path = checkpoint_path(config_.checkpoint.output_dir, progress_.step);
    save_train_checkpoint(path, *model_, optimizer_state, progress_, to_json(config_));
    last_checkpoint_ = path;
    prune_checkpoints(config_.checkpoint.output_dir, config_.checkpoint.keep_checkpoints);
    CheckpointEvent event{progress_.step, path};
    emit([&](TrainCallback& c) { c.on_checkpoint(event); });
  }

  // Zero-shot and retrieval evaluations; returns the zero-shot top-1 (or -1).
  double evaluate() {
    if (zeroshot_folder_.paths.empty() && !validation_) return -1;
    if (!main_rank()) {
      comm_->barrier();  // rank 0 evaluates; the others wait for it
      return -1;
    }
    EvalEvent event;
    event.step = progress_.step;
    event.epoch = progress_.epoch;
    double top1 = -1;
    model_->eval();
    const EvaluationOptions& e = config_.evaluation;
    const int64_t batch = std::min<int64_t>(config_.data.batch_size, 256);
    if (!zeroshot_folder_.paths.empty()) {
      const PromptSet prompts = load_prompt_set(e.zeroshot_templates);
      const std::vector<std::string> classes = e.zeroshot_class_names.empty()
                                                   ? zeroshot_folder_.classes
                                                   : map_class_names(zeroshot_folder_.classes, e.zeroshot_class_names);
      const ZeroShotClassifier classifier = ZeroShotClassifier::build(*model_, *tokenizer_, classes, prompts.templates);
      ZeroShotRunOptions o;
      o.batch_size = batch;
      o.threads = config_.data.workers;
      o.progress = false;
      o.report_skipped = false;
      o.examples_per_class = 1;
      auto summary = std::make_shared<ZeroShotSummary>(classify_folder(*model_, classifier, zeroshot_folder_, o));
      const ZeroShotSummary& s = *summary;
      top1 = s.top1;
      event.metrics["zeroshot_top1"] = s.top1;
      event.metrics["zeroshot_top5"] = s.topk;
      event.metrics["zeroshot_mean_per_class"] = s.mean_per_class;
      event.metrics["zeroshot_images"] = double(s.images);
      event.zeroshot = std::move(summary);
    }
    if (validation_) {
      const RetrievalMetrics r = evaluate_retrieval(*model_, *validation_, *tokenizer_, batch, config_.data.workers);
      const char* names[3] = {"r1", "r5", "r10"};
      for (int i = 0; i < 3; ++i) {
        event.metrics[std::string("image_to_text_") + names[i]] = r.image_to_text[size_t(i)];
        event.metrics[std::string("text_to_image_") + names[i]] = r.text_to_image[size_t(i)];
      }
      event.metrics["retrieval_pairs"] = double(r.pairs);
    }
    emit([&](TrainCallback& c) { c.on_eval(event); });
    set_train_mode();
    if (comm_) comm_->barrier();
    return top1;
  }

  TrainConfig config_;
  DistEnv env_;
  at::Device device_;
  bool custom_source_ = false;
  bool resumed_ = false;
  std::shared_ptr<Communicator> comm_;
  std::unique_ptr<GradientSynchronizer> sync_;
  std::unique_ptr<AdamW> optimizer_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<CaptionDataset> validation_;
  ImageFolder zeroshot_folder_;
  TrainProgress progress_;
  int64_t total_steps_ = 0;
  int64_t saved_step_ = -1;
  std::string last_checkpoint_;
};

Trainer::Trainer(TrainConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Trainer::~Trainer() = default;

Trainer& Trainer::set_batch_source(std::unique_ptr<BatchSource> source) {
  impl_->source_ = std::move(source);
  return *this;
}

Trainer& Trainer::set_loss(std::shared_ptr<const Loss> loss) {
  impl_->loss_ = std::move(loss);
  return *this;
}

Trainer& Trainer::add_callback(std::shared_ptr<TrainCallback> callback) {
  if (callback) impl_->callbacks_.push_back(std::move(callback));
  return *this;
}

TrainResult Trainer::run() { return impl_->run(); }

CLIP Trainer::model() const { return impl_->model_; }

TrainResult train(const TrainConfig& config) {
  Trainer trainer(config);
  const fs::path out(config.checkpoint.output_dir);
  auto metrics = std::make_shared<MetricsFile>((out / "metrics.jsonl").string());
  trainer.add_callback(metrics).add_callback(std::make_shared<ProgressLine>());
  std::shared_ptr<HtmlReport> report;
  if (config.checkpoint.report) {
    report = std::make_shared<HtmlReport>(*metrics, (out / "report.html").string());
    trainer.add_callback(report);
  }
  if (config.checkpoint.tensorboard) trainer.add_callback(std::make_shared<TensorBoardFile>((out / "tensorboard").string()));
  TrainResult result = trainer.run();
  result.metrics = metrics->path();
  if (report) result.report = report->path();
  return result;
}

}  // namespace clip
