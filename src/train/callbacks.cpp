#include "clip/train/callbacks.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "clip/train/report.h"
#include "clip/train/trainer.h"
#include "clip/util/error.h"
#include "clip/util/log.h"
#include "clip/util/progress.h"
#include "clip/zeroshot/evaluate.h"
#include "util/atomic_file.h"
#include "util/json.h"

namespace clip {

namespace {

double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

MetricsFile::MetricsFile(std::string path)
    : path_(std::move(path)),
      details_path_((std::filesystem::path(path_).parent_path() / "zeroshot_details.json").string()) {}

void MetricsFile::on_start(const StartEvent& event) {
  if (!event.resumed) {  // a resumed run appends to its metrics
    std::ofstream out(path_, std::ios::trunc);
    if (!out) fail(path_, ": cannot write the metrics file");
    std::error_code ignored;  // an overwritten run's details are not this one's
    std::filesystem::remove(details_path_, ignored);
  }
  append(dump_json({{"type", "start"},
                    {"step", event.first_step},
                    {"total_steps", event.total_steps},
                    {"batches_per_epoch", event.batches_per_epoch},
                    {"global_batch", event.global_batch},
                    {"world_size", event.world_size},
                    {"resumed", event.resumed},
                    {"model", event.model_name},
                    {"parameters", event.parameters},
                    {"trainable_parameters", event.trainable_parameters},
                    {"command", event.command_line},
                    {"time", unix_time()}}));
}

void MetricsFile::on_metrics(const MetricsEvent& m) {
  nlohmann::json line = {{"type", "train"},
                               {"step", m.step},
                               {"epoch", m.epoch},
                               {"loss", m.loss},
                               {"lr", m.lr},
                               {"logit_scale", m.logit_scale},
                               {"samples_per_s", m.samples_per_s},
                               {"data_wait", m.data_wait},
                               {"step_s", m.step_seconds},
                               {"data_wait_s", m.data_wait_seconds},
                               {"skipped_images", m.skipped_images},
                               {"nonfinite_skipped", m.nonfinite_skipped}};
  if (m.logit_bias) line["logit_bias"] = *m.logit_bias;
  line["time"] = unix_time();
  append(dump_json(line));
}

void MetricsFile::on_eval(const EvalEvent& e) {
  nlohmann::json line = {{"type", "eval"}, {"step", e.step}, {"epoch", e.epoch}};
  for (const auto& [name, value] : e.metrics) line[name] = value;
  line["time"] = unix_time();
  append(dump_json(line));
  if (!e.zeroshot) return;
  const ZeroShotSummary& z = *e.zeroshot;
  nlohmann::json details = {{"step", e.step},
                            {"epoch", e.epoch},
                            {"images", z.images},
                            {"skipped", z.skipped},
                            {"acc1", z.metrics.acc1},
                            {"mean_per_class_recall", z.metrics.mean_per_class_recall},
                            {"k", z.k},
                            {"topk_accuracy", z.topk},
                            {"classes", z.classes},
                            {"confusion", nlohmann::json::array()},
                            {"examples", nlohmann::json::array()}};
  for (const ConfusionCell& c : z.confusion) details["confusion"].push_back({c.truth, c.predicted, c.count});
  for (const ZeroShotExample& x : z.examples) {
    details["examples"].push_back({{"path", x.path}, {"label", x.label}, {"top", x.top}, {"p", x.probabilities}});
  }
  write_file_atomically(details_path_, dump_json(details));
}

void MetricsFile::append(const std::string& line) {
  std::ofstream out(path_, std::ios::app);
  out << line << "\n";
  if (!out) fail(path_, ": cannot append metrics (disk full?)");
}

ProgressLine::ProgressLine(std::string tool) : tool_(std::move(tool)) {}
ProgressLine::~ProgressLine() = default;

void ProgressLine::on_start(const StartEvent& event) {
  bar_ = std::make_unique<Progress>("train", event.total_steps, "step");
  bar_->advance(event.first_step);
}

void ProgressLine::on_step(const StepEvent& event) {
  if (!bar_) return;
  char note[96];
  std::snprintf(note, sizeof note, "loss %.4f lr %.2e", event.result.loss, event.lr);
  bar_->advance(1, note);
}

void ProgressLine::on_eval(const EvalEvent& e) {
  auto get = [&](const char* name) {
    const auto it = e.metrics.find(name);
    return it == e.metrics.end() ? -1.0 : it->second;
  };
  if (get("zeroshot_top1") >= 0) {
    std::fprintf(stderr, "\n%s: step %lld zero-shot top-1 %.2f%%, top-5 %.2f%% on %.0f images\n", tool_.c_str(),
                 static_cast<long long>(e.step), 100 * get("zeroshot_top1"), 100 * get("zeroshot_top5"),
                 get("zeroshot_images"));
  }
  if (get("image_to_text_r1") >= 0) {
    std::fprintf(stderr, "%s: step %lld retrieval on %.0f pairs: image->text R@1 %.3f, text->image R@1 %.3f\n",
                 tool_.c_str(), static_cast<long long>(e.step), get("retrieval_pairs"), get("image_to_text_r1"),
                 get("text_to_image_r1"));
  }
}

void ProgressLine::on_message(const std::string& line) {
  std::fprintf(stderr, "%s%s\n", bar_ ? "\n" : "", line.c_str());
}

void ProgressLine::on_end(const TrainResult& /*result*/) {
  if (bar_) bar_->finish();
  bar_.reset();
}

void HtmlReport::on_start(const StartEvent& event) {
  title_ = "clip_train: " + event.model_name;
  config_json_ = event.config_json;
}

void HtmlReport::on_eval(const EvalEvent& /*event*/) { write(); }
void HtmlReport::on_checkpoint(const CheckpointEvent& /*event*/) { write(); }
void HtmlReport::on_end(const TrainResult& /*result*/) { write(); }

void HtmlReport::write() const {
  ReportSources sources;
  sources.metrics = metrics_path_;
  sources.zeroshot_details = details_path_;
  sources.config_json = config_json_;
  sources.title = title_;
  try {
    write_report(sources, html_path_);
  } catch (const std::exception& e) {  // a report is for people: it never stops a run
    log_warning("report not written: ", error_message(e));
  }
}

}  // namespace clip
