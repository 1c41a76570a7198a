#pragma once
/// Contrastive training of a CLIP model as a library: settings in typed groups (clip/train/train_config.h),
/// batches from files or from the app (BatchSource), a Loss object, and callbacks that see every step.
///
///   clip::TrainConfig config;
///   config.model.name = "ViT-B-32";
///   config.data.batch_size = 256;
///   config.optimizer.epochs = 32;
///   config.checkpoint.output_dir = "runs/mine";
///   clip::Trainer trainer(config);
///   trainer.set_batch_source(std::make_unique<MyBatches>());      // or config.data.train_data = "train.csv"
///   trainer.add_callback(std::make_shared<MyLogger>());           // clip/train/callbacks.h
///   clip::TrainResult result = trainer.run();
///
///   clip::TrainResult same = clip::train(config);   // one call: the standard callbacks, data from config.data
///
/// The run: one process per GPU (torchrun / Slurm variables, clip/dist/launch.h); each step is clip::train_step
/// (clip/train/step.h) with the learning rate of the schedule; non-finite steps are skipped (the run stops after
/// `max_nonfinite` in a row, its last checkpoint intact); checkpoints, config.json and model.safetensors (the final
/// model, loadable alone) go to checkpoint.output_dir, and a run continues from one with checkpoint.resume.
/// Errors are clip::Error; the library never exits the process.
#include <cstdint>
#include <memory>
#include <string>

#include "clip/model/clip_model.h"
#include "clip/train/batch_source.h"
#include "clip/train/callbacks.h"
#include "clip/train/loss.h"
#include "clip/train/train_config.h"

namespace clip {

/// What a run did.
struct TrainResult {
  int64_t steps = 0;            ///< optimizer steps at the end (including resumed ones)
  int64_t total_steps = 0;      ///< the steps of the whole run (steps < total_steps: stopped by stop_after)
  int64_t nonfinite_skipped = 0;
  double last_loss = 0;
  std::string last_checkpoint;
  std::string model;            ///< model.safetensors: the final weights with their config (load_model reads it)
  std::string metrics;          ///< metrics.jsonl (clip::train; "" when no MetricsFile callback wrote one)
  std::string report;           ///< report.html (clip::train; "" when disabled)
  double zeroshot_top1 = -1;    ///< final zero-shot top-1 in [0, 1] (-1: no zero-shot data)
  int64_t peak_memory_bytes = -1;  ///< this rank's peak: CUDA's allocator on a GPU, resident memory on the CPU
  int stop_signal = 0;          ///< > 0: stopped early by request_training_stop(stop_signal), checkpointed
};

/// Asks the training in this process to stop: after the step in progress every rank agrees on the same step, a
/// checkpoint is written there (by rank 0; sharded state is gathered from every rank) and run() returns with
/// TrainResult::stop_signal set, so a later run with `resume = "latest"` continues exactly. Async-signal-safe (one
/// atomic store): call it from a SIGTERM or SIGUSR1 handler, as clip_train does. A request made before run()
/// reaches its first step stops it there; run() clears the request when it returns or throws (one arriving after
/// the last step, during the final save or evaluation, is dropped: the run is complete).
void request_training_stop(int signal) noexcept;

/// A training run. Set it up, then run() once.
class Trainer {
 public:
  explicit Trainer(TrainConfig config);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Batches from the app instead of config.data (with several ranks, this rank's share). Its batch size is its
  /// own; accum_freq must divide it.
  Trainer& set_batch_source(std::unique_ptr<BatchSource> source);
  /// The objective (default: InfoNCELoss, with config.distributed.local_loss).
  Trainer& set_loss(std::shared_ptr<const Loss> loss);
  /// Receives the run's events (rank 0 only), in the order added.
  Trainer& add_callback(std::shared_ptr<TrainCallback> callback);

  /// Trains to the end, for checkpoint.stop_after steps, or until request_training_stop(). Throws clip::Error for bad settings or data, and when
  /// training diverges.
  TrainResult run();

  /// The model being trained (null before run() has built it).
  CLIP model() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// The one-call form clip_train uses: a Trainer with data from config.data and the standard callbacks
/// (MetricsFile for `output_dir`/metrics.jsonl, ProgressLine, HtmlReport for `output_dir`/report.html when
/// config.checkpoint.report).
TrainResult train(const TrainConfig& config);

}  // namespace clip
