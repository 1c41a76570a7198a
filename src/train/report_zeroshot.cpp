#include "train/report_zeroshot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <vector>

#include "clip/util/error.h"
#include "image/thumbnail.h"
#include "train/report_chart.h"
#include "util/file.h"
#include "util/html.h"
#include "util/json.h"

namespace clip::report {
namespace {

constexpr size_t kHeatmapClasses = 40;  // more: the classes most involved in mistakes
constexpr size_t kPerClassRows = 60;    // more: the worst and the best
constexpr size_t kExampleClasses = 24;  // more: the classes with the lowest accuracy
constexpr int kThumbnail = 96;          // pixels, the longer side (never enlarged)

struct Example {
  std::string path;
  int64_t label = 0;
  std::vector<int64_t> top;
  std::vector<double> p;
};

struct Cell {
  size_t truth = 0, predicted = 0;
  int64_t count = 0;
};

struct Details {
  int64_t step = 0, images = 0, skipped = 0;
  double acc1 = 0;
  std::vector<std::string> classes;
  std::vector<Cell> cells;            // the confusion matrix's non-zero cells
  std::vector<int64_t> total, right;  // per true class: its images, and those predicted right
  std::vector<Example> examples;
};

double number_or_nan(const nlohmann::json& j) {  // NaN is written as null (JSON has no NaN)
  return j.is_null() ? NAN : j.get<double>();
}

// zeroshot_details.json read and checked against itself (classes and counts in range).
Details parse_details(const std::string& path) {
  const nlohmann::json j = parse_json(read_file(path, "zero-shot details file"), path);
  Details d;
  d.step = j.at("step").get<int64_t>();
  d.images = j.at("images").get<int64_t>();
  d.skipped = j.value("skipped", int64_t(0));
  d.acc1 = number_or_nan(j.at("acc1"));
  d.classes = j.at("classes").get<std::vector<std::string>>();
  const int64_t n = int64_t(d.classes.size());
  if (n == 0) fail("no classes");
  d.total.assign(size_t(n), 0);
  d.right.assign(size_t(n), 0);
  for (const auto& cell : j.at("confusion")) {  // [truth, predicted, count]
    const auto c = cell.get<std::vector<int64_t>>();
    if (c.size() != 3 || c[0] < 0 || c[0] >= n || c[1] < 0 || c[1] >= n || c[2] < 0) {
      fail("a confusion matrix cell that is not [true class, predicted class, count] of ", n, " classes: ", cell.dump());
    }
    if (c[2] == 0) continue;
    d.cells.push_back({size_t(c[0]), size_t(c[1]), c[2]});
    d.total[size_t(c[0])] += c[2];
    if (c[0] == c[1]) d.right[size_t(c[0])] += c[2];
  }
  for (const auto& e : j.at("examples")) {
    Example x{e.at("path").get<std::string>(), e.at("label").get<int64_t>(), e.at("top").get<std::vector<int64_t>>(),
              {}};
    for (const auto& p : e.at("p")) x.p.push_back(number_or_nan(p));
    if (x.label < 0 || x.label >= n || x.top.empty() || x.top.size() != x.p.size()) {
      fail("an example that is not one: ", x.path);
    }
    for (const int64_t t : x.top) {
      if (t < 0 || t >= n) fail("an example predicting class ", t, " of ", n, ": ", x.path);
    }
    d.examples.push_back(std::move(x));
  }
  return d;
}

std::string percent(int64_t part, int64_t whole) {
  return whole > 0 ? format_value(double(part) / double(whole), true) : "n/a";
}

std::string short_percent(int64_t part, int64_t whole) {  // "11.7%": in a heatmap cell
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", whole > 0 ? 100.0 * double(part) / double(whole) : 0.0);
  return buf;
}

// Classes with images, ordered by accuracy (worst first; equal: by index).
std::vector<size_t> by_accuracy(const Details& d) {
  std::vector<size_t> order;
  for (size_t c = 0; c < d.classes.size(); ++c) {
    if (d.total[c] > 0) order.push_back(c);
  }
  auto accuracy = [&](size_t c) { return double(d.right[c]) / double(d.total[c]); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return accuracy(a) < accuracy(b); });
  return order;
}

std::string per_class_table(const Details& d) {
  const std::vector<size_t> order = by_accuracy(d);
  std::string html =
      "<h3>Accuracy per class, worst first</h3><table class=\"perclass\"><tr><th>class</th><th></th>"
      "<th>top-1</th><th>right / images</th></tr>";
  const size_t head = order.size() <= kPerClassRows ? order.size() : kPerClassRows * 2 / 3;
  const size_t tail = order.size() <= kPerClassRows ? 0 : kPerClassRows - head;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == head && tail > 0) {
      html += "<tr><td colspan=\"4\" class=\"note\">&hellip; " + format_count(int64_t(order.size() - head - tail)) +
              " classes in between &hellip;</td></tr>";
      i = order.size() - tail;
    }
    const size_t c = order[i];
    const int64_t total = d.total[c], right = d.right[c];
    char width[16];
    std::snprintf(width, sizeof width, "%.1f", 100.0 * double(right) / double(total));
    html += "<tr><td>" + html_escape(d.classes[c]) +
            "</td><td class=\"barcell\"><div class=\"bar\" style=\"width:" + width + "%\"></div></td><td class=\"n\">" +
            percent(right, total) + "</td><td class=\"n\">" + format_count(right) + " / " + format_count(total) +
            "</td></tr>";
  }
  const size_t empty = d.classes.size() - order.size();
  if (empty > 0)
    html +=
        "<tr><td colspan=\"4\" class=\"note\">" + format_count(int64_t(empty)) + " classes without images</td></tr>";
  return html + "</table>";
}

// The classes drawn: all of them, or the kHeatmapClasses most involved in mistakes (in their own order).
std::vector<size_t> heatmap_classes(const Details& d) {
  std::vector<size_t> all(d.classes.size());
  std::iota(all.begin(), all.end(), size_t(0));
  if (all.size() <= kHeatmapClasses) return all;
  std::vector<int64_t> mistakes(all.size(), 0);
  for (const Cell& c : d.cells) {
    if (c.truth != c.predicted) mistakes[c.truth] += c.count, mistakes[c.predicted] += c.count;
  }
  std::stable_sort(all.begin(), all.end(), [&](size_t a, size_t b) { return mistakes[a] > mistakes[b]; });
  all.resize(kHeatmapClasses);
  std::sort(all.begin(), all.end());
  return all;
}

std::string heatmap(const Details& d) {
  const std::vector<size_t> shown = heatmap_classes(d);
  const bool small = shown.size() <= 12;  // room for the row percentage in each cell
  std::string html =
      "<h3>Confusion matrix</h3><p class=\"note\">Rows: the true class; columns: the top-1 prediction. "
      "Each cell holds its count" +
      std::string(small ? " and its share of the row" : "") +
      "; its shade is that share (blue: right, red: mistaken). Hover over a cell for both.";
  if (shown.size() < d.classes.size()) {
    html += " The " + std::to_string(shown.size()) + " of " + format_count(int64_t(d.classes.size())) +
            " classes most involved in mistakes are shown.";
  }
  html += "</p><div class=\"cmwrap\"><table class=\"cm\"><tr><th class=\"corner\">true \\ predicted</th>";
  for (const size_t c : shown) html += "<th class=\"col\"><span>" + html_escape(d.classes[c]) + "</span></th>";
  html += "</tr>";
  std::vector<size_t> position(d.classes.size(), shown.size());  // shown.size(): not shown
  for (size_t i = 0; i < shown.size(); ++i) position[shown[i]] = i;
  std::vector<int64_t> counts(shown.size() * shown.size(), 0);
  for (const Cell& c : d.cells) {
    if (position[c.truth] < shown.size() && position[c.predicted] < shown.size()) {
      counts[position[c.truth] * shown.size() + position[c.predicted]] = c.count;
    }
  }
  for (const size_t t : shown) {
    const int64_t total = d.total[t];
    html += "<tr><th class=\"row\">" + html_escape(d.classes[t]) + "</th>";
    for (const size_t p : shown) {
      const int64_t n = counts[position[t] * shown.size() + position[p]];
      const double share = total > 0 ? double(n) / double(total) : 0;
      const double alpha = std::sqrt(share);  // small shares stay visible
      char style[96];
      std::snprintf(style, sizeof style, "background:rgba(%s,%.3f)%s", t == p ? "31,111,178" : "217,72,15", alpha,
                    alpha > 0.62 ? ";color:#fff" : "");
      html += "<td class=\"cell\" style=\"" + std::string(style) + "\" title=\"true " + html_escape(d.classes[t]) +
              ", predicted " + html_escape(d.classes[p]) + ": " + format_count(n) + " of " + format_count(total) +
              " (" + percent(n, total) + ")\">" + format_count(n) +
              (small && n > 0 ? "<small>" + short_percent(n, total) + "</small>" : "") + "</td>";
    }
    html += "</tr>";
  }
  return html + "</table></div>";
}

std::string confused_pairs(const Details& d) {
  std::vector<Cell> pairs;
  for (const Cell& c : d.cells) {
    if (c.truth != c.predicted) pairs.push_back(c);
  }
  if (pairs.empty()) return "";
  std::stable_sort(pairs.begin(), pairs.end(), [](const Cell& a, const Cell& b) { return a.count > b.count; });
  if (pairs.size() > 10) pairs.resize(10);
  std::string html =
      "<h3>Most confused</h3><table class=\"pairs\"><tr><th>true class</th><th>predicted as</th>"
      "<th>images</th><th>of the true class</th></tr>";
  for (const Cell& x : pairs) {
    html += "<tr><td>" + html_escape(d.classes[x.truth]) + "</td><td>" + html_escape(d.classes[x.predicted]) +
            "</td><td class=\"n\">" + format_count(x.count) + "</td><td class=\"n\">" +
            percent(x.count, d.total[x.truth]) + "</td></tr>";
  }
  return html + "</table>";
}

std::string examples(const Details& d) {
  if (d.examples.empty()) return "";
  // Which classes: all, or the kExampleClasses with the lowest accuracy.
  std::vector<size_t> classes = by_accuracy(d);
  if (classes.size() > kExampleClasses) classes.resize(kExampleClasses);
  std::vector<bool> wanted(d.classes.size(), false);
  for (const size_t c : classes) wanted[c] = true;
  std::vector<const Example*> shown;
  std::vector<std::string> paths;
  for (const Example& x : d.examples) {
    if (!wanted[size_t(x.label)]) continue;
    shown.push_back(&x);
    paths.push_back(x.path);
  }
  const std::vector<detail::Thumbnail> thumbnails = detail::jpeg_thumbnails(paths, kThumbnail);
  std::string html =
      "<h3>Examples</h3><p class=\"note\">Test images with their top-3 predictions: for each class, "
      "the first image classified right and the first classified wrong";
  if (classes.size() < d.classes.size()) html += " (the " + std::to_string(classes.size()) + " weakest classes)";
  html += ". Hover over an image for its file.</p><div class=\"examples\">";
  for (size_t i = 0; i < shown.size(); ++i) {
    const Example& x = *shown[i];
    const bool right = x.top.front() == x.label;
    const detail::Thumbnail& t = thumbnails[i];
    html += "<figure class=\"example " + std::string(right ? "right" : "wrong") + "\" title=\"" + html_escape(x.path) +
            "\"><div class=\"img\">";
    if (t.jpeg.empty()) {
      html += "<span class=\"missing\">" + html_escape(t.problem) + "</span>";
    } else {
      const bool tiny = std::max(t.width, t.height) < kThumbnail / 2;  // e.g. 28 x 28: drawn as pixels, not a blur
      html += "<img class=\"thumb" + std::string(tiny ? " px" : "") + "\" alt=\"" + html_escape(x.path) + "\" src=\"" +
              data_uri("image/jpeg", t.jpeg) + "\">";
    }
    html += "</div><figcaption><div class=\"truth\">" + std::string(right ? "&#10003; " : "&#10007; ") +
            html_escape(d.classes[size_t(x.label)]) + "</div><ol>";
    for (size_t k = 0; k < std::min<size_t>(3, x.top.size()); ++k) {
      html += "<li" + std::string(x.top[k] == x.label ? " class=\"hit\"" : "") + ">" +
              html_escape(d.classes[size_t(x.top[k])]) + " <span class=\"p\">" + format_probability(x.p[k]) +
              "</span></li>";
    }
    html += "</ol></figcaption></figure>";
  }
  return html + "</div>";
}

}  // namespace

std::string zeroshot_section(const std::string& details_path, int64_t last_step) {
  std::error_code ec;
  if (details_path.empty() || !std::filesystem::exists(details_path, ec)) return "";
  Details d;
  try {
    d = parse_details(details_path);
  } catch (const std::exception& e) {
    return "<h2>Zero-shot classification</h2><p class=\"problem\">" + html_escape(details_path) +
           ": not shown, the file does not hold a zero-shot evaluation (" + html_escape(error_message(e)) + ")</p>";
  }
  if (d.step > last_step) {
    return "<h2>Zero-shot classification</h2><p class=\"note\">The last zero-shot evaluation (step " +
           format_count(d.step) + ") is of steps that the run went back on when it resumed from an earlier "
           "checkpoint; its next evaluation replaces it.</p>";
  }
  const int64_t total = std::accumulate(d.total.begin(), d.total.end(), int64_t(0));
  std::string html = "<h2 id=\"zeroshot\">Zero-shot classification at step " + format_count(d.step) +
                     "</h2><p>Top-1 <b>" + format_value(d.acc1, true) + "</b> on " + format_count(total) +
                     " images of " + format_count(int64_t(d.classes.size())) + " classes";
  if (d.skipped > 0) html += " (" + format_count(d.skipped) + " unreadable, skipped)";
  html += ".</p><div class=\"zs\"><div>" + per_class_table(d) + confused_pairs(d) + "</div><div>" + heatmap(d) +
          "</div></div>" + examples(d);
  return html;
}

}  // namespace clip::report
