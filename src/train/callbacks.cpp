#include "clip/train/callbacks.h"

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "clip/train/report.h"
#include "clip/train/trainer.h"
#include "clip/util/error.h"
#include "clip/util/progress.h"
#include "util/json.h"

namespace clip {

void MetricsFile::on_start(const StartEvent& event) {
  if (event.resumed) return;  // a resumed run appends to its metrics
  std::ofstream out(path_, std::ios::trunc);
  if (!out) fail(path_, ": cannot write the metrics file");
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
                               {"skipped_images", m.skipped_images},
                               {"nonfinite_skipped", m.nonfinite_skipped}};
  if (m.logit_bias) line["logit_bias"] = *m.logit_bias;
  append(dump_json(line));
}

void MetricsFile::on_eval(const EvalEvent& e) {
  nlohmann::json line = {{"type", "eval"}, {"step", e.step}, {"epoch", e.epoch}};
  for (const auto& [name, value] : e.metrics) line[name] = value;
  append(dump_json(line));
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

void HtmlReport::on_end(const TrainResult& /*result*/) { write_report(metrics_path_, html_path_, title_, config_json_); }

}  // namespace clip
