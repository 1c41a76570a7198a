#include "train/report_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "util/html.h"

namespace clip::report {
namespace {

constexpr double kWidth = 480, kHeight = 250, kLeft = 60, kRight = 18, kTop = 30, kBottom = 40;
constexpr size_t kMaxPoints = 400;    // per line: enough for any screen, small for a long run
constexpr size_t kMarkedPoints = 40;  // up to this many points each get a dot (with the value on hover)
const char* const kColors[] = {"#1f6fb2", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#5c636a"};

std::string num(double v) {  // an SVG coordinate
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// A tick label: as many decimals as the tick step needs; thousands as "k" when the step is that large.
std::string tick_label(double v, double step, bool fraction) {
  char buf[32];
  if (fraction) {
    std::snprintf(buf, sizeof buf, "%.0f%%", 100 * v);
  } else if (std::abs(v) >= 1e4 && step >= 1e3) {
    std::snprintf(buf, sizeof buf, "%gk", v / 1e3);
  } else if (step > 0 && step < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.1e", v);
  } else {
    const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(v) < step * 1e-6 ? 0.0 : v);
  }
  return buf;
}

}  // namespace

Series downsample(const Series& series, size_t max_points, size_t* per_point) {
  const size_t group = series.size() <= max_points ? 1 : (series.size() + max_points - 1) / max_points;
  if (per_point) *per_point = group;
  if (group == 1) return series;
  Series out;
  for (size_t begin = 0; begin < series.size(); begin += group) {
    const size_t end = std::min(series.size(), begin + group);
    Point mean;
    for (size_t i = begin; i < end; ++i) mean.x += series[i].x, mean.y += series[i].y;
    mean.x /= double(end - begin), mean.y /= double(end - begin);
    out.push_back(mean);
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  // A flat series (averaging may leave it a rounding error away from flat): a range around its value.
  if (!(hi - lo > 1e-9 * std::max(std::abs(lo), std::abs(hi)))) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / magnitude;
  const double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * magnitude;
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9);
  const int64_t count = std::min<int64_t>(100, int64_t(std::ceil(hi / step - 1e-9) - first));
  for (int64_t i = 0; i <= count; ++i) ticks.push_back((first + double(i)) * step);
  return ticks;
}

std::string format_value(double value, bool fraction) {
  char buf[48];
  if (!std::isfinite(value)) return std::isnan(value) ? "n/a" : value > 0 ? "inf" : "-inf";
  if (fraction) {
    std::snprintf(buf, sizeof buf, "%.2f%%", 100 * value);
  } else {
    const double a = std::abs(value);
    std::snprintf(buf, sizeof buf, (a != 0 && (a < 1e-3 || a >= 1e6)) ? "%.3g" : "%.4g", value);
  }
  return buf;
}

std::string format_count(int64_t count) {
  const std::string digits = std::to_string(count < 0 ? -count : count);
  std::string out = count < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_probability(double p) {
  if (p > 0 && p < 1e-4) return "&lt;0.01%";
  if (p < 1 && p > 0.9999) return "&gt;99.99%";
  return format_value(p, true);
}

std::string chart_svg(const Chart& chart) {
  std::string svg = "<figure class=\"chart\"><svg viewBox=\"0 0 " + num(kWidth) + " " + num(kHeight) + "\" width=\"" +
                    num(kWidth) + "\" height=\"" + num(kHeight) + "\" role=\"img\" aria-label=\"" +
                    html_escape(chart.title) + "\"><text x=\"" + num(kLeft) + "\" y=\"18\" class=\"t\">" +
                    html_escape(chart.title) + "</text>";
  std::vector<Series> drawn;
  std::vector<Point> last;  // the last logged value of each line (drawn points may be means)
  size_t merged = 1;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Line& line : chart.lines) {
    size_t per_point = 1;
    Series points;
    for (const Point& p : line.points) {
      if (std::isfinite(p.x) && std::isfinite(p.y)) points.push_back(p);  // a NaN loss cannot be drawn
    }
    drawn.push_back(downsample(points, kMaxPoints, &per_point));
    last.push_back(points.empty() ? Point() : points.back());
    merged = std::max(merged, per_point);
    for (const Point& p : drawn.back()) {
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
    }
  }
  if (!(x0 <= x1)) return svg + "<text x=\"180\" y=\"125\">no data</text></svg></figure>";
  if (chart.fraction) y0 = 0, y1 = 1;  // accuracy never leaves [0, 100%]
  const std::vector<double> xt = nice_ticks(x0 == x1 ? x0 - 1 : x0, x0 == x1 ? x1 + 1 : x1, 6);
  const std::vector<double> yt =
      chart.fraction ? std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0} : nice_ticks(y0, y1, 5);
  const double ax0 = xt.front(), ax1 = xt.back(), ay0 = yt.front(), ay1 = yt.back();
  auto px = [&](double x) { return kLeft + (x - ax0) / (ax1 - ax0) * (kWidth - kLeft - kRight); };
  auto py = [&](double y) { return kHeight - kBottom - (y - ay0) / (ay1 - ay0) * (kHeight - kTop - kBottom); };
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double y : yt) {
    svg += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kWidth - kRight) + "\" y1=\"" + num(py(y)) + "\" y2=\"" +
           num(py(y)) + "\" class=\"g\"/><text x=\"" + num(kLeft - 5) + "\" y=\"" + num(py(y) + 4) +
           "\" text-anchor=\"end\">" + tick_label(y, ystep, chart.fraction) + "</text>";
  }
  for (double x : xt) {
    svg += "<line x1=\"" + num(px(x)) + "\" x2=\"" + num(px(x)) + "\" y1=\"" + num(kTop) + "\" y2=\"" +
           num(kHeight - kBottom) + "\" class=\"g\"/><text x=\"" + num(px(x)) + "\" y=\"" +
           num(kHeight - kBottom + 15) + "\" text-anchor=\"middle\">" + tick_label(x, xstep, false) + "</text>";
  }
  svg += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kWidth - kRight) + "\" y1=\"" + num(kHeight - kBottom) +
         "\" y2=\"" + num(kHeight - kBottom) + "\" class=\"a\"/><line x1=\"" + num(kLeft) + "\" x2=\"" + num(kLeft) +
         "\" y1=\"" + num(kTop) + "\" y2=\"" + num(kHeight - kBottom) + "\" class=\"a\"/>";
  svg += "<text x=\"" + num((kLeft + kWidth - kRight) / 2) + "\" y=\"" + num(kHeight - 6) +
         "\" text-anchor=\"middle\">step</text>";
  std::string caption;
  for (size_t i = 0; i < drawn.size(); ++i) {
    const Series& points = drawn[i];
    if (points.empty()) continue;
    const std::string color = kColors[i % (sizeof kColors / sizeof kColors[0])];
    std::string polyline;
    for (const Point& p : points) polyline += num(px(p.x)) + "," + num(py(p.y)) + " ";
    svg += "<polyline points=\"" + polyline + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.6\"/>";
    if (points.size() <= kMarkedPoints) {
      for (const Point& p : points) {
        svg += "<circle cx=\"" + num(px(p.x)) + "\" cy=\"" + num(py(p.y)) + "\" r=\"3\" fill=\"" + color +
               "\"><title>step " + format_count(int64_t(p.x)) + ": " + format_value(p.y, chart.fraction) +
               "</title></circle>";
      }
    }
    const std::string name = chart.lines[i].name;
    caption +=
        std::string(caption.empty() ? "" : "<br>") +
        (drawn.size() > 1 ? "<span class=\"key\" style=\"background:" + color + "\"></span>" + html_escape(name) + ", "
                          : std::string()) +
        "last: <b>" + format_value(last[i].y, chart.fraction) + "</b> at step " + format_count(int64_t(last[i].x));
  }
  svg += "</svg><figcaption>" + caption;
  if (merged > 1) {
    svg += "<br><span class=\"note\">each point: the mean of " + std::to_string(merged) + " logged values</span>";
  }
  return svg + "</figcaption></figure>\n";
}

}  // namespace clip::report
