#pragma once
/// A training run's report as one self-contained HTML file (inline SVG and CSS; no scripts, no network), for people
/// to open in a browser.
///
///   clip::write_report({"runs/x/metrics.jsonl", "runs/x/zeroshot_details.json", config_json, "my run"},
///                      "runs/x/report.html");
///
/// What it shows: a summary (model and parameters, data, steps, wall time, throughput, the final evaluation, the
/// command line and how to run it again); training charts (loss, learning rate, logit scale, throughput in
/// samples/s, data wait in seconds per step), each with ticks, gridlines, its unit and last value, long runs averaged
/// down to a few hundred points; evaluations as a table while there are fewer than three, then as charts (accuracy
/// axes fixed to 0-100%); the last zero-shot evaluation in detail (accuracy per class, the confusion matrix as a
/// heatmap, the most confused pairs, example test images with their top-3 predictions); the run's settings.
#include <string>

namespace clip {

/// The files a report is made from (MetricsFile writes the first two; clip::train puts them in the output folder).
struct ReportSources {
  std::string metrics;           ///< metrics.jsonl; required
  std::string zeroshot_details;  ///< zeroshot_details.json; "" or absent: no zero-shot section
  std::string config_json;       ///< the run's resolved settings (to_json(TrainConfig)); "" when unknown
  std::string title;
};

/// Writes the report to `html_path` atomically. Lines of metrics.jsonl that are not JSON (one cut by a crash) are
/// passed over; steps logged again after a resume replace the earlier ones. Throws clip::Error naming the file when
/// the metrics cannot be read or the report cannot be written.
void write_report(const ReportSources& sources, const std::string& html_path);

}  // namespace clip
