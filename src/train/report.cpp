#include "clip/train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "clip/util/error.h"
#include "train/report_chart.h"
#include "train/report_zeroshot.h"
#include "util/atomic_file.h"
#include "util/html.h"
#include "util/json.h"

namespace clip {
namespace {

using json = nlohmann::json;
using report::Chart;
using report::format_value;
using report::Point;
using report::Series;

// What metrics.jsonl says, steps logged again after a resume replacing the ones before.
struct RunLog {
  std::map<std::string, Series> train, eval;
  json start;                         // the last invocation's "start" line (null: a file from before they existed)
  std::vector<std::string> commands;  // each invocation's, in order, repeats left out
  int invocations = 0;
  double wall_seconds = 0;  // summed over the invocations whose lines carry times
  bool timed = false;
};

std::string string_of(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

int64_t int_of(const json& j, const char* key) {  // 0 when absent, not a number, or out of range
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return 0;
  const double v = j[key].get<double>();
  return std::isfinite(v) && std::abs(v) < 9e18 ? (j[key].is_number_integer() ? j[key].get<int64_t>() : int64_t(v)) : 0;
}

void add(Series& series, Point p) {
  while (!series.empty() && series.back().x >= p.x) series.pop_back();  // an interrupted invocation's later steps
  series.push_back(p);
}

RunLog read_log(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open the metrics to report");
  RunLog log;
  double first = NAN, last = NAN;  // the current invocation's start and latest time
  auto close_invocation = [&] {
    if (std::isfinite(first) && std::isfinite(last) && last >= first)
      log.wall_seconds += last - first, log.timed = true;
  };
  for (std::string line; std::getline(in, line);) {
    const json j = parse_json_or_discarded(line);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number()) continue;  // a line cut by a crash
    const double time = j.contains("time") && j["time"].is_number() ? j["time"].get<double>() : NAN;
    const std::string type = string_of(j, "type");
    if (type == "start") {
      // Steps past the checkpoint it resumes from were logged by an invocation whose work after it was lost.
      const double from = j["step"].get<double>();
      for (auto* series : {&log.train, &log.eval}) {
        for (auto& [key, points] : *series) {
          while (!points.empty() && points.back().x > from) points.pop_back();
        }
      }
      close_invocation();
      first = last = time;
      log.start = j;
      ++log.invocations;
      const std::string command = string_of(j, "command");
      if (!command.empty() && std::find(log.commands.begin(), log.commands.end(), command) == log.commands.end()) {
        log.commands.push_back(command);
      }
      continue;
    }
    if (std::isfinite(time)) last = time;
    const double step = j["step"].get<double>();
    auto& target = type == "eval" ? log.eval : log.train;
    for (const auto& item : j.items()) {
      const std::string& key = item.key();
      if (key == "step" || key == "type" || key == "epoch" || key == "time" || !item.value().is_number()) continue;
      add(target[key], {step, item.value().get<double>()});
    }
  }
  close_invocation();
  for (auto* series : {&log.train, &log.eval}) {  // a resume may have taken every point of one
    for (auto it = series->begin(); it != series->end();) it = it->second.empty() ? series->erase(it) : std::next(it);
  }
  return log;
}

// How an evaluation metric reads: its name for people, whether it is a fraction, the chart it joins.
struct MetricInfo {
  std::string label, group;
  bool fraction = false;
  int order = 1000;  // known metrics first, in this order
};

MetricInfo metric_info(const std::string& key) {
  static const std::vector<std::pair<std::string, MetricInfo>> known = {
      {"zeroshot_top1", {"zero-shot top-1", "zero-shot accuracy (%)", true}},
      {"zeroshot_top5", {"zero-shot top-5", "zero-shot accuracy (%)", true}},
      {"zeroshot_mean_per_class", {"zero-shot mean per-class recall", "zero-shot accuracy (%)", true}},
      {"zeroshot_images", {"zero-shot images", "", false}},
      {"image_to_text_r1", {"image→text recall@1", "image→text retrieval recall (%)", true}},
      {"image_to_text_r5", {"image→text recall@5", "image→text retrieval recall (%)", true}},
      {"image_to_text_r10", {"image→text recall@10", "image→text retrieval recall (%)", true}},
      {"text_to_image_r1", {"text→image recall@1", "text→image retrieval recall (%)", true}},
      {"text_to_image_r5", {"text→image recall@5", "text→image retrieval recall (%)", true}},
      {"text_to_image_r10", {"text→image recall@10", "text→image retrieval recall (%)", true}},
      {"retrieval_pairs", {"retrieval pairs", "", false}}};
  for (size_t i = 0; i < known.size(); ++i) {
    if (known[i].first == key) {
      MetricInfo info = known[i].second;
      info.order = int(i);
      return info;
    }
  }
  return {key, key, false};
}

std::vector<std::string> eval_keys(const RunLog& log) {
  std::vector<std::string> keys;
  for (const auto& [key, series] : log.eval) keys.push_back(key);
  std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
    return metric_info(a).order < metric_info(b).order;
  });
  return keys;
}

std::string eval_value(const std::string& key, double v) {
  const MetricInfo info = metric_info(key);
  if (!info.fraction && info.group.empty() && v == std::floor(v)) return report::format_count(int64_t(v));  // a count
  return format_value(v, info.fraction);
}

std::string duration(double seconds) {
  char buf[48];
  const int64_t s = std::llround(seconds);
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lld min %02lld s", (long long)(s / 60), (long long)(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld h %02lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
  }
  return buf;
}

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, n >= 1000000 ? "%.2f M" : "%.0f", n >= 1000000 ? double(n) / 1e6 : double(n));
  return buf;
}

std::string row(const std::string& name, const std::string& value) {
  return "<tr><th>" + name + "</th><td>" + value + "</td></tr>";
}

std::string summary(const RunLog& log, const json& config) {
  const json& s = log.start;
  std::string html = "<table class=\"summary\">";
  std::string model = html_escape(s.is_object() ? string_of(s, "model") : string_of(config, "model"));
  if (const int64_t p = int_of(s, "parameters"); p > 0) {
    const int64_t trainable = int_of(s, "trainable_parameters");
    model += ", " + millions(p) + " parameters" +
             (trainable == p ? "" : " (" + millions(trainable) + " trained, the rest locked)");
  }
  if (!model.empty()) html += row("model", model);
  std::string data = string_of(config, "train_data");
  data = data.empty() ? "batches from the application" : "<code>" + html_escape(data) + "</code>";
  if (const int64_t per_epoch = int_of(s, "batches_per_epoch"), batch = int_of(s, "global_batch"); per_epoch && batch) {
    data += ": " + report::format_count(per_epoch * batch) + " samples per epoch (" + report::format_count(per_epoch) +
            " steps of " + report::format_count(batch) + ")";
  }
  html += row("data", data);
  const auto loss = log.train.find("loss");
  const int64_t done = loss == log.train.end() ? 0 : int64_t(loss->second.back().x);
  std::string steps = report::format_count(done);
  if (const int64_t total = int_of(s, "total_steps"); total > 0) steps += " of " + report::format_count(total);
  if (const int64_t epochs = int_of(config, "epochs"); epochs > 0) steps += " (" + std::to_string(epochs) + " epochs)";
  if (const int64_t world = int_of(s, "world_size"); world > 0) {
    steps += ", " + std::to_string(world) + (world == 1 ? " process" : " processes");
  }
  if (log.invocations > 1) steps += ", in " + std::to_string(log.invocations) + " invocations (resumed)";
  html += row("steps", steps);
  if (log.timed) html += row("wall time", duration(log.wall_seconds) + " (training, evaluation and checkpoints)");
  if (const auto t = log.train.find("samples_per_s"); t != log.train.end() && !t->second.empty()) {
    double sum = 0;
    for (const Point& p : t->second) sum += p.y;
    html += row("throughput", format_value(sum / double(t->second.size()), false) +
                                  " samples/s (the mean of the logged windows; last " +
                                  format_value(t->second.back().y, false) + ")");
  }
  std::string final_metrics;
  for (const std::string& key : eval_keys(log)) {
    const Point& last = log.eval.at(key).back();
    final_metrics += (final_metrics.empty() ? "" : "<br>") + html_escape(metric_info(key).label) + ": <b>" +
                     eval_value(key, last.y) + "</b> at step " + report::format_count(int64_t(last.x));
  }
  if (!final_metrics.empty()) html += row("final evaluation", final_metrics);
  for (const std::string& command : log.commands) html += row("command", "<code>" + html_escape(command) + "</code>");
  if (const std::string out = string_of(config, "output_dir"); !out.empty()) {
    const std::string again = (std::filesystem::path(out) / "config.json").string();
    // config.json is the last invocation's: one that resumed from a given checkpoint, or stopped early on purpose,
    // would do so again.
    const std::string resume = string_of(config, "resume");
    const bool fresh = resume.empty() || resume == "latest" || resume == "auto";
    html += row("run it again", "<code>clip_train --config " + html_escape(again) + " --output-dir NEW_FOLDER" +
                                    (fresh ? "" : " --resume ''") +
                                    (int_of(config, "stop_after") != 0 ? " --stop-after 0" : "") +
                                    "</code> (config.json holds every setting)");
  }
  return html + "</table>";
}

std::string training_charts(const RunLog& log, const json& config) {
  auto series = [&](const char* key) {
    const auto it = log.train.find(key);
    return it == log.train.end() ? Series() : it->second;
  };
  auto any_nonzero = [](const Series& s) {
    return std::any_of(s.begin(), s.end(), [](const Point& p) { return p.y != 0; });
  };
  std::vector<Chart> charts;
  const std::string loss = string_of(config, "loss");
  charts.push_back({"training loss" + (loss.empty() ? std::string() : " (" + loss + ")"), {{"loss", series("loss")}}});
  charts.push_back({"learning rate", {{"lr", series("lr")}}});
  charts.push_back({"logit scale (inverse temperature)", {{"logit scale", series("logit_scale")}}});
  if (!series("logit_bias").empty()) charts.push_back({"logit bias", {{"logit bias", series("logit_bias")}}});
  charts.push_back({"throughput (samples/s)", {{"samples/s", series("samples_per_s")}}});
  if (Series wait = series("data_wait_s"); !wait.empty()) {
    // Milliseconds while every value is under a second: "0.4" reads better than "0.0004".
    const bool ms = std::all_of(wait.begin(), wait.end(), [](const Point& p) { return p.y < 1; });
    for (Point& p : wait) p.y *= ms ? 1000 : 1;
    charts.push_back(
        {ms ? "data wait (milliseconds per step)" : "data wait (seconds per step)", {{"data wait", wait}}});
  } else if (Series share = series("data_wait"); !share.empty()) {  // files from before data_wait_s
    for (Point& p : share) p.y *= 100;
    charts.push_back({"data wait (% of the time)", {{"data wait", share}}});
  }
  if (any_nonzero(series("skipped_images"))) {
    charts.push_back({"unreadable images skipped (per window)", {{"skipped", series("skipped_images")}}});
  }
  if (any_nonzero(series("nonfinite_skipped"))) {
    charts.push_back({"non-finite steps skipped (run total)", {{"skipped", series("nonfinite_skipped")}}});
  }
  std::string html = "<h2>Training</h2><div class=\"charts\">";
  for (const Chart& c : charts) {
    if (!c.lines.front().points.empty()) html += report::chart_svg(c);
  }
  return html + "</div>";
}

std::string evaluation(const RunLog& log) {
  if (log.eval.empty()) return "";
  const std::vector<std::string> keys = eval_keys(log);
  size_t points = 0;
  for (const auto& [key, series] : log.eval) points = std::max(points, series.size());
  std::string html = "<h2>Evaluation</h2>";
  if (points < 3) {  // a chart of one or two points says less than a table
    html += "<table class=\"evals\"><tr><th>metric</th><th>step</th><th>value</th></tr>";
    for (const std::string& key : keys) {
      for (const Point& p : log.eval.at(key)) {
        html += "<tr><td>" + html_escape(metric_info(key).label) + "</td><td class=\"n\">" +
                report::format_count(int64_t(p.x)) + "</td><td class=\"n\">" + eval_value(key, p.y) + "</td></tr>";
      }
    }
    return html + "</table>";
  }
  std::vector<Chart> charts;  // one per group, lines in the metrics' order
  for (const std::string& key : keys) {
    const MetricInfo info = metric_info(key);
    if (info.group.empty()) continue;  // counts (images, pairs) are in the summary's final evaluation
    auto it = std::find_if(charts.begin(), charts.end(), [&](const Chart& c) { return c.title == info.group; });
    if (it == charts.end()) it = charts.insert(charts.end(), Chart{info.group, {}, info.fraction});
    it->lines.push_back({info.label, log.eval.at(key)});
  }
  html += "<div class=\"charts\">";
  for (const Chart& c : charts) html += report::chart_svg(c);
  return html + "</div>";
}

const char* const kStyle =
    "body{font:14px system-ui,sans-serif;margin:24px auto;max-width:1180px;padding:0 16px;color:#222}"
    "h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}"
    "h3{font-size:15px;margin:18px 0 8px}code{font-size:12.5px;background:#f3f3f3;padding:1px 4px;border-radius:3px}"
    "table{border-collapse:collapse}th,td{padding:3px 8px;text-align:left;vertical-align:top}"
    ".summary th{color:#555;font-weight:600;white-space:nowrap}.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".evals td,.evals th,.pairs td,.pairs th,.perclass td,.perclass th{border-bottom:1px solid #eee}"
    ".charts{display:flex;flex-wrap:wrap;gap:8px}figure{margin:4px}.chart{width:482px}.chart svg{background:#fff;border:1px solid #ddd}"
    ".chart text{font-size:11px;fill:#333}.chart .t{font-size:13px;font-weight:600}.g{stroke:#e8e8e8}.a{stroke:#888}"
    ".chart figcaption{font-size:12px;color:#444;margin-top:2px}.key{display:inline-block;width:10px;height:10px;"
    "margin-right:4px;border-radius:2px}.note{color:#666;font-size:12px}.problem{color:#a00}"
    ".zs{display:flex;flex-wrap:wrap;gap:36px;align-items:flex-start}"
    ".barcell{width:160px}.bar{height:12px;background:#1f6fb2;border-radius:2px;margin-top:3px}"
    ".cmwrap{overflow-x:auto}.cm{font-size:12px}.cm td.cell{min-width:46px;height:34px;text-align:center;"
    "border:1px solid #fff;font-variant-numeric:tabular-nums}.cm small{display:block;font-size:10px;opacity:.85}"
    ".cm th.col{vertical-align:bottom;padding:2px}.cm th.col span{writing-mode:vertical-rl;transform:rotate(180deg);"
    "white-space:nowrap}.cm th.row{text-align:right;white-space:nowrap}.cm th.corner{font-weight:400;color:#666;"
    "vertical-align:bottom;text-align:right}"
    ".examples{display:flex;flex-wrap:wrap;gap:10px}.example{width:170px;margin:0;padding:6px;border:1px solid #ddd;"
    "border-top:4px solid #2b8a3e;border-radius:4px;font-size:12px}.example.wrong{border-top-color:#d9480f}"
    ".example .img{width:96px;height:96px;margin:0 auto 4px;display:flex;align-items:center;justify-content:center;"
    "background:#f3f3f3}.example img{max-width:96px;max-height:96px}.example img.px{width:96px;height:96px;"
    "image-rendering:pixelated}.example ol{margin:2px 0 0;padding-left:18px}.example .truth{font-weight:600}"
    ".example li.hit{color:#2b8a3e;font-weight:600}.p{color:#666}.missing{color:#a00;font-size:11px;padding:4px}"
    "pre{background:#f6f6f6;padding:10px;font-size:12px;overflow-x:auto}";

}  // namespace

void write_report(const ReportSources& sources, const std::string& html_path) {
  const RunLog log = read_log(sources.metrics);
  const json config = sources.config_json.empty() ? json() : parse_json_or_discarded(sources.config_json);
  const std::string title = html_escape(sources.title.empty() ? "clip_train report" : sources.title);
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>" +
      title + "</title><style>" + kStyle + "</style></head><body>\n<h1>" + title + "</h1>\n";
  html += summary(log, config) + "\n";
  html += training_charts(log, config) + "\n";
  html += evaluation(log) + "\n";
  int64_t last_step = 0;
  for (const auto* series : {&log.train, &log.eval}) {
    for (const auto& [key, points] : *series) last_step = std::max(last_step, int64_t(points.back().x));
  }
  html += report::zeroshot_section(sources.zeroshot_details, last_step) + "\n";
  if (!sources.config_json.empty()) html += "<h2>Settings</h2><pre>" + html_escape(sources.config_json) + "</pre>\n";
  html += "</body></html>\n";
  write_file_atomically(html_path, html);
}

}  // namespace clip
