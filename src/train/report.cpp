#include "clip/train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "clip/util/error.h"
#include "util/atomic_file.h"
#include "util/html.h"
#include "util/json.h"

namespace clip {
namespace {

using json = nlohmann::json;
using Series = std::vector<std::pair<double, double>>;  // (step, value)

std::string number(double v) {
  char buf[32];
  const double a = std::abs(v);
  std::snprintf(buf, sizeof buf, (a != 0 && (a < 1e-3 || a >= 1e5)) ? "%.2e" : "%.4g", v);
  return buf;
}

// One line chart: axes with min/max labels, the series as a polyline (points when few).
std::string chart(const std::string& title, const Series& series) {
  constexpr double W = 440, H = 220, L = 62, R = 12, T = 28, B = 34;
  std::string svg = "<figure><svg viewBox=\"0 0 440 220\" width=\"440\" height=\"220\" role=\"img\">";
  svg += "<text x=\"" + number(L) + "\" y=\"18\" class=\"t\">" + html_escape(title) + "</text>";
  if (series.empty()) return svg + "<text x=\"150\" y=\"110\">no data</text></svg></figure>";
  double x0 = series.front().first, x1 = series.front().first, y0 = series.front().second, y1 = y0;
  for (const auto& [x, y] : series) {
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (y0 == 0 ? 1 : std::abs(y0) * 0.1);
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  svg += "<line x1=\"" + number(L) + "\" y1=\"" + number(H - B) + "\" x2=\"" + number(W - R) + "\" y2=\"" + number(H - B) +
         "\" class=\"a\"/><line x1=\"" + number(L) + "\" y1=\"" + number(T) + "\" x2=\"" + number(L) + "\" y2=\"" +
         number(H - B) + "\" class=\"a\"/>";
  svg += "<text x=\"" + number(L - 4) + "\" y=\"" + number(T + 4) + "\" text-anchor=\"end\">" + number(y1) + "</text>";
  svg += "<text x=\"" + number(L - 4) + "\" y=\"" + number(H - B) + "\" text-anchor=\"end\">" + number(y0) + "</text>";
  svg += "<text x=\"" + number(L) + "\" y=\"" + number(H - 12) + "\">" + number(x0) + "</text>";
  svg += "<text x=\"" + number(W - R) + "\" y=\"" + number(H - 12) + "\" text-anchor=\"end\">step " + number(x1) + "</text>";
  std::string points;
  for (const auto& [x, y] : series) points += number(px(x)) + "," + number(py(y)) + " ";
  svg += "<polyline points=\"" + points + "\" class=\"l\"/>";
  if (series.size() <= 30) {
    for (const auto& [x, y] : series) svg += "<circle cx=\"" + number(px(x)) + "\" cy=\"" + number(py(y)) + "\" r=\"2.5\"/>";
  }
  svg += "</svg><figcaption>last: " + number(series.back().second) + "</figcaption></figure>";
  return svg;
}

}  // namespace

void write_report(const std::string& metrics_path, const std::string& html_path, const std::string& title,
                  const std::string& config_json) {
  std::ifstream in(metrics_path);
  if (!in) fail(metrics_path, ": cannot open the metrics to report");
  std::map<std::string, Series> train, eval;
  std::string line;
  int64_t lineno = 0;
  for (; std::getline(in, line); ++lineno) {
    if (line.empty()) continue;
    const json j = parse_json_or_discarded(line);
    if (!j.is_object()) continue;  // a line cut by a crash: the rest of the file still reports
    if (!j.contains("step") || !j["step"].is_number()) continue;
    const double step = j["step"].get<double>();
    auto& target = j.value("type", "") == "eval" ? eval : train;
    for (const auto& item : j.items()) {
      if (item.key() != "step" && item.key() != "type" && item.key() != "epoch" && item.value().is_number()) {
        target[item.key()].emplace_back(step, item.value().get<double>());
      }
    }
  }
  std::string html =
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
      "</title><style>body{font:14px sans-serif;margin:24px;color:#222}figure{display:inline-block;margin:8px}"
      "svg{background:#fafafa;border:1px solid #ddd}.a{stroke:#888}.l{fill:none;stroke:#1f6fb2;stroke-width:1.6}"
      "circle{fill:#1f6fb2}.t{font-weight:bold}text{font-size:11px}pre{background:#f4f4f4;padding:8px}</style>"
      "</head><body><h1>" +
      html_escape(title) + "</h1>";
  html += "<h2>Training</h2>";
  for (const char* key : {"loss", "lr", "logit_scale", "samples_per_s", "data_wait"}) {
    if (train.count(key)) html += chart(key, train[key]);
  }
  for (const auto& [key, series] : train) {
    if (key != "loss" && key != "lr" && key != "logit_scale" && key != "samples_per_s" && key != "data_wait") {
      html += chart(key, series);
    }
  }
  if (!eval.empty()) {
    html += "<h2>Evaluation</h2>";
    for (const auto& [key, series] : eval) html += chart(key, series);
  }
  html += "<h2>Settings</h2><pre>" + html_escape(config_json) + "</pre></body></html>\n";
  AtomicFile file(html_path);
  file.write(html.data(), html.size());
  file.commit();
}

}  // namespace clip
