#pragma once
/// A self-contained HTML report of a training run (inline SVG plots, no scripts, no network).
///
///   clip::write_report("runs/x/metrics.jsonl", "runs/x/report.html", "ViT-B-32 on my data", config_json);
#include <string>

namespace clip {

/// Reads metrics.jsonl (lines with "type": "train" or "eval") and writes plots of loss, learning rate, logit
/// scale, throughput and every evaluation metric, plus the run's settings, to `html_path` (atomically).
void write_report(const std::string& metrics_path, const std::string& html_path, const std::string& title,
                  const std::string& config_json);

}  // namespace clip
