#pragma once
// Line charts for the training report, as inline SVG: ticks on both axes at round numbers, light gridlines, the
// unit in the title, the last value under it, and long series averaged down to a few hundred points. Internal.
//
//   clip::report::Chart c{"throughput (samples/s)", {{"samples/s", points}}};
//   html += clip::report::chart_svg(c);
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace clip::report {

struct Point {
  double x = 0, y = 0;  // step, value
};
using Series = std::vector<Point>;

struct Line {
  std::string name;  // the legend's entry (charts of one line show none)
  Series points;     // in step order
};

struct Chart {
  std::string title;  // what is drawn and its unit: "throughput (samples/s)"
  std::vector<Line> lines;
  bool fraction = false;  // values in [0, 1]: a fixed 0-100% axis, values printed as percentages
};

/// At most `max_points` points: consecutive runs of `*per_point` points (set here; 1 when none are merged) become
/// one point at their mean step and mean value.
Series downsample(const Series& series, size_t max_points, size_t* per_point);

/// Round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten, about `target` of them), with
/// the axis extended to the ticks on either side.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

/// A value for people: "87.33%" for fractions, else 4 significant digits ("0.002", "3.576", "9.61e-08").
std::string format_value(double value, bool fraction);

/// A count with thousands separated: "59,904".
std::string format_count(int64_t count);

/// A probability for people: "96.53%", and "<0.01%" / ">99.99%" rather than a rounded 0 or 100.
std::string format_probability(double p);

/// A <figure> holding the chart, with "last: <value> at step <step>" under it (per line when several).
std::string chart_svg(const Chart& chart);

}  // namespace clip::report
