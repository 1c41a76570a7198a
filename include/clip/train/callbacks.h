#pragma once
/// What a training run reports, as it happens: every step, the metric windows, evaluations, checkpoints and
/// notes go to the callbacks a Trainer holds (on rank 0 only). clip::train() installs the standard three:
/// MetricsFile (metrics.jsonl), ProgressLine (stderr) and HtmlReport (report.html); an app adds its own.
///
///   struct Logger : clip::TrainCallback {
///     void on_step(const clip::StepEvent& e) override { std::printf("%lld %.4f\n", (long long)e.step, e.result.loss); }
///   };
///   trainer.add_callback(std::make_shared<Logger>());
#include <cstdint>
#include <ios>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "clip/train/step.h"

namespace clip {

struct TrainResult;
struct ZeroShotSummary;  // clip/zeroshot/evaluate.h

/// The run as it starts (after a resume: where it continues).
struct StartEvent {
  int64_t first_step = 0;         ///< the step it starts at (> 0 after a resume)
  int64_t total_steps = 0;        ///< the step it ends at when it runs to the end
  int64_t batches_per_epoch = 0;
  int world_size = 1;
  bool resumed = false;
  std::string output_dir;
  std::string config_json;        ///< the resolved settings (to_json(TrainConfig))
  std::string model_name;
  int64_t parameters = 0;            ///< the model's
  int64_t trainable_parameters = 0;  ///< those that train (a locked tower's do not)
  int64_t global_batch = 0;          ///< samples per step over all ranks
  std::string command_line;          ///< this process's arguments, shell-quoted ("" when unknown)
};

/// One optimizer step.
struct StepEvent {
  int64_t step = 0;        ///< steps taken, this one included
  int64_t total_steps = 0;
  int64_t epoch = 0;
  double lr = 0;           ///< the rate this step used
  int64_t samples = 0;     ///< global batch (all ranks)
  StepResult result;       ///< loss, gradient norm, finite
};

/// A window of steps (every log_every steps, and at the end): averages over its finite steps.
struct MetricsEvent {
  int64_t step = 0;
  int64_t epoch = 0;
  double loss = 0;
  double lr = 0;
  double logit_scale = 0;      ///< exp of the parameter (the inverse temperature)
  std::optional<double> logit_bias;  ///< SigLIP's learned bias (models that have one)
  double samples_per_s = 0;    ///< global samples per second
  double data_wait = 0;        ///< share of the window spent waiting for batches
  double step_seconds = 0;     ///< wall seconds per step (the window's time over its steps)
  double data_wait_seconds = 0;  ///< seconds per step spent waiting for batches
  int64_t skipped_images = 0;  ///< unreadable samples in the window
  int64_t nonfinite_skipped = 0;  ///< skipped steps over the whole run
};

/// An evaluation: its metrics by name ("zeroshot_top1", "image_to_text_r1", ...).
struct EvalEvent {
  int64_t step = 0;
  int64_t epoch = 0;
  std::map<std::string, double> metrics;
  /// the zero-shot evaluation in detail: classes, confusion matrix, example predictions (null: none was run)
  std::shared_ptr<const ZeroShotSummary> zeroshot;
};

/// A training checkpoint written.
struct CheckpointEvent {
  int64_t step = 0;
  std::string path;
};

/// Receives a run's events; every method does nothing unless overridden. Called on rank 0, from the training
/// thread, between steps: a slow callback slows training.
class TrainCallback {
 public:
  virtual ~TrainCallback() = default;
  virtual void on_start(const StartEvent& /*event*/) {}
  virtual void on_step(const StepEvent& /*event*/) {}
  virtual void on_metrics(const MetricsEvent& /*event*/) {}
  virtual void on_eval(const EvalEvent& /*event*/) {}
  virtual void on_checkpoint(const CheckpointEvent& /*event*/) {}
  /// A note for people: the plan, a resume, a skipped sample or step, a warning. One line, no newline.
  virtual void on_message(const std::string& /*line*/) {}
  virtual void on_end(const TrainResult& /*result*/) {}
};

/// metrics.jsonl: a {"type": "start", ...} line per invocation (StartEvent: model, parameters, steps, batch, command
/// line), a {"type": "train", ...} line per MetricsEvent and a {"type": "eval", ...} line per EvalEvent, each with
/// "time" (Unix seconds); what write_report and people's scripts read. A fresh run starts the file; a resumed one
/// appends. An evaluation with zero-shot also replaces zeroshot_details.json beside it (details_path(): classes,
/// confusion matrix, example predictions; the report's heatmap and examples). A failed write (a full disk) throws
/// clip::Error naming the file.
class MetricsFile : public TrainCallback {
 public:
  explicit MetricsFile(std::string path);
  const std::string& path() const { return path_; }
  const std::string& details_path() const { return details_path_; }
  void on_start(const StartEvent& event) override;
  void on_metrics(const MetricsEvent& event) override;
  void on_eval(const EvalEvent& event) override;

 private:
  void append(const std::string& line);
  std::string path_, details_path_;
};

/// TensorBoard event files (`--tensorboard`): FOLDER/events.out.tfevents.<time>.<host>.<pid>.clip_train, one
/// per invocation (a resumed run adds one; TensorBoard merges a folder's files), with open_clip's tags:
/// train/loss, train/lr, train/scale (the inverse temperature), train/samples_per_second, train/data_wait,
/// train/logit_bias (SigLIP) per metric window, and val/<metric> per evaluation. Written in the TFRecord format
/// by libclip itself (no TensorFlow, no protobuf library); each event is appended and flushed as it happens.
class TensorBoardFile : public TrainCallback {
 public:
  explicit TensorBoardFile(std::string folder);
  /// The event file (empty before on_start).
  const std::string& path() const { return path_; }
  void on_start(const StartEvent& event) override;
  void on_metrics(const MetricsEvent& event) override;
  void on_eval(const EvalEvent& event) override;

 private:
  void write_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  void append(const std::string& bytes, std::ios_base::openmode mode);
  std::string folder_, path_;
};

class Progress;

/// A progress bar of the steps on stderr (loss and rate on it), and every message and evaluation as a line.
class ProgressLine : public TrainCallback {
 public:
  explicit ProgressLine(std::string tool = "clip_train");
  ~ProgressLine() override;
  void on_start(const StartEvent& event) override;
  void on_step(const StepEvent& event) override;
  void on_eval(const EvalEvent& event) override;
  void on_message(const std::string& line) override;
  void on_end(const TrainResult& result) override;

 private:
  std::string tool_;
  std::unique_ptr<Progress> bar_;
};

/// report.html from a MetricsFile's metrics.jsonl and zeroshot_details.json (write_report, clip/train/report.h),
/// written again at every checkpoint and evaluation, so a run in progress can be looked at, and at the end. Add it
/// after the MetricsFile (callbacks are called in the order added: the files are then current). A report that
/// cannot be written is a warning on stderr, never the end of the run.
class HtmlReport : public TrainCallback {
 public:
  HtmlReport(const MetricsFile& metrics, std::string html_path)
      : metrics_path_(metrics.path()), details_path_(metrics.details_path()), html_path_(std::move(html_path)) {}
  const std::string& path() const { return html_path_; }
  void on_start(const StartEvent& event) override;
  void on_eval(const EvalEvent& event) override;
  void on_checkpoint(const CheckpointEvent& event) override;
  void on_end(const TrainResult& result) override;

 private:
  void write() const;
  std::string metrics_path_, details_path_, html_path_, title_, config_json_;
};

}  // namespace clip
