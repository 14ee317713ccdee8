// svg_plot.h: line charts as SVG text, for the figures the examples write.
//
// A Plot is a title, two axis labels, some lines (a curve per run) and some filled bands (a range per
// step, e.g. the 15th to 85th percentile). render_svg() draws them with axes whose ticks fall on
// "nice" numbers (1, 2 or 5 times a power of ten), a light grid and a legend to the right of the plot
// area, so that a reader understands the figure without the code that made it. Either axis may be
// logarithmic (a power law y = c x^k is then a straight line of slope k), and a line may mark its
// points with dots (for a few measured values). Standard library only.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace examples {

struct Line {
  std::string label;         // shown in the legend
  std::string color;         // any SVG color: "#1f77b4", "black"
  std::vector<double> x, y;  // same length; a non-finite y breaks the line (e.g. a run that diverged)
  bool dashed = false;
  bool markers = false;  // a dot on each point
};

struct Band {
  std::string label;
  std::string color;
  std::vector<double> x, low, high;  // same length; filled between low and high
};

struct Plot {
  std::string title, x_label, y_label;
  std::vector<Band> bands;  // drawn first, under the lines
  std::vector<Line> lines;
  // Fixed ends of the y axis (e.g. accuracy from 0 to 1); otherwise the data's range, rounded outwards to ticks.
  std::optional<double> y_min, y_max;
  // Logarithmic axes: positions follow log10 of the value. Values <= 0 have no place on them and
  // break a line like a NaN does.
  bool x_log = false, y_log = false;
  double width = 760, height = 440;  // pixels
};

// The SVG document; throws std::invalid_argument naming the series when its x and y lengths differ.
std::string render_svg(const Plot& plot);

// Renders `plot` into dir/name (creating dir), written atomically; returns the file's path.
std::string write_svg(const std::string& dir, const std::string& name, const Plot& plot);

// Axis ticks covering [lo, hi]: about `target` of them, spaced by 1, 2 or 5 times a power of ten;
// first <= lo and last >= hi.
struct Ticks {
  double step = 1;
  std::vector<double> values;
};
Ticks nice_ticks(double lo, double hi, int target = 6);

// Ticks of a logarithmic axis covering [lo, hi] (both > 0): powers of ten, and 2 and 5 times each when
// hi / lo < 1000, from the largest such tick <= lo to the smallest >= hi.
std::vector<double> log_ticks(double lo, double hi);

// A tick value with as many decimals as its step needs: (0.25, 0.05) -> "0.25", (3000, 1000) -> "3000".
std::string format_tick(double value, double step);
// A log-axis tick value in the shortest form: 0.001, 20, 1e+06.
std::string format_log_tick(double value);

// The i-th color of a palette whose neighbours are easy to tell apart (cycles).
std::string palette_color(int i);

}  // namespace examples
