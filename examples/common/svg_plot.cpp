// svg_plot.cpp: renders a Plot (svg_plot.h) as an SVG document.
//
// Layout, in pixels: the title on top, the plot area in the middle with tick labels and axis labels
// to its left and below, the legend to its right (outside the area, so it never hides a curve).
// Data coordinates map linearly onto the plot area (after log10 on a log axis); y grows upwards, so
// the SVG y is flipped.
#include "svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "atomic_file.h"

namespace examples {

namespace {

constexpr double kMarginLeft = 72, kMarginTop = 48, kMarginBottom = 62;
// The legend's text is 13 px sans-serif, whose characters average about 0.55 em wide.
constexpr double kLegendCharWidth = 7.2, kLegendSwatch = 34;

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", v);
  return buffer;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Where data coordinates land on the page. On a log axis, "data" here means log10 of the value.
struct Frame {
  double x_lo, x_hi, y_lo, y_hi;    // data range of the axes
  double left, right, top, bottom;  // plot area in pixels
  double px(double x) const { return left + (x - x_lo) / (x_hi - x_lo) * (right - left); }
  double py(double y) const { return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top); }
};

void check_lengths(const std::string& what, const std::string& label, std::size_t n, std::size_t m) {
  if (n != m)
    throw std::invalid_argument("render_svg: " + what + " '" + label + "' has " + std::to_string(n) + " x values but " +
                                std::to_string(m) + " y values (expected the same number)");
}

// Smallest and largest finite value seen, widened by each call.
struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// Runs of consecutive indices where every given series is finite: a gap splits a curve in two.
std::vector<std::pair<std::size_t, std::size_t>> finite_runs(std::size_t n,
                                                             const std::vector<const std::vector<double>*>& series) {
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  std::size_t start = 0;
  bool open = false;
  for (std::size_t i = 0; i <= n; ++i) {
    bool ok = i < n;
    for (const auto* s : series) ok = ok && std::isfinite((*s)[i]);
    if (ok && !open) start = i, open = true;
    if (!ok && open) runs.emplace_back(start, i), open = false;
  }
  return runs;
}

// A series as the axis sees it: the values themselves, or on a log axis their log10 (NaN, a gap, for
// values <= 0).
std::vector<double> on_axis(const std::vector<double>& values, bool log) {
  if (!log) return values;
  std::vector<double> out;
  for (double v : values) out.push_back(v > 0 ? std::log10(v) : kNaN);
  return out;
}

// One axis: its ends and its ticks, in axis units, with the text of each tick.
struct Axis {
  double lo, hi;
  std::vector<double> at;
  std::vector<std::string> labels;
};

// `range` in axis units, widened to the fixed ends (data units) when given; the axis ends at the
// outermost ticks unless an end is fixed.
Axis make_axis(Range range, bool log, std::optional<double> fixed_lo, std::optional<double> fixed_hi) {
  for (auto fixed : {fixed_lo, fixed_hi})
    if (fixed && log && !(*fixed > 0))
      throw std::invalid_argument("render_svg: a log axis cannot end at " + std::to_string(*fixed) +
                                  " (expected a value > 0)");
  if (fixed_lo) range.lo = on_axis({*fixed_lo}, log)[0];
  if (fixed_hi) range.hi = on_axis({*fixed_hi}, log)[0];
  Axis axis;
  if (log) {
    for (double v : log_ticks(std::pow(10.0, range.lo), std::pow(10.0, range.hi)))
      axis.at.push_back(std::log10(v)), axis.labels.push_back(format_log_tick(v));
  } else {
    const Ticks ticks = nice_ticks(range.lo, range.hi);
    for (double v : ticks.values) axis.at.push_back(v), axis.labels.push_back(format_tick(v, ticks.step));
  }
  axis.lo = fixed_lo ? range.lo : axis.at.front();
  axis.hi = fixed_hi ? range.hi : axis.at.back();
  return axis;
}

bool inside(double v, double lo, double hi) { return v >= lo - 1e-9 * (hi - lo) && v <= hi + 1e-9 * (hi - lo); }

void draw_axes(std::string& svg, const Plot& plot, const Frame& f, const Axis& xa, const Axis& ya) {
  svg += "<g font-family=\"sans-serif\" font-size=\"12\" fill=\"#333\">\n";
  for (std::size_t i = 0; i < xa.at.size(); ++i) {
    const double x = xa.at[i];
    if (!inside(x, f.x_lo, f.x_hi)) continue;
    svg += "<line x1=\"" + num(f.px(x)) + "\" y1=\"" + num(f.top) + "\" x2=\"" + num(f.px(x)) + "\" y2=\"" +
           num(f.bottom) + "\" stroke=\"#e4e4e4\"/>\n";
    svg += "<text x=\"" + num(f.px(x)) + "\" y=\"" + num(f.bottom + 18) + "\" text-anchor=\"middle\">" + xa.labels[i] +
           "</text>\n";
  }
  for (std::size_t i = 0; i < ya.at.size(); ++i) {
    const double y = ya.at[i];
    if (!inside(y, f.y_lo, f.y_hi)) continue;
    svg += "<line x1=\"" + num(f.left) + "\" y1=\"" + num(f.py(y)) + "\" x2=\"" + num(f.right) + "\" y2=\"" +
           num(f.py(y)) + "\" stroke=\"#e4e4e4\"/>\n";
    svg += "<text x=\"" + num(f.left - 8) + "\" y=\"" + num(f.py(y)) + "\" dy=\"0.35em\" text-anchor=\"end\">" +
           ya.labels[i] + "</text>\n";
  }
  svg += "<rect x=\"" + num(f.left) + "\" y=\"" + num(f.top) + "\" width=\"" + num(f.right - f.left) + "\" height=\"" +
         num(f.bottom - f.top) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  svg += "<text x=\"" + num((f.left + f.right) / 2) + "\" y=\"" + num(f.bottom + 44) +
         "\" text-anchor=\"middle\" font-size=\"14\">" + xml_escape(plot.x_label) + "</text>\n";
  const double mid_y = (f.top + f.bottom) / 2;
  svg += "<text x=\"18\" y=\"" + num(mid_y) + "\" text-anchor=\"middle\" font-size=\"14\" transform=\"rotate(-90 18 " +
         num(mid_y) + ")\">" + xml_escape(plot.y_label) + "</text>\n";
  svg += "<text x=\"" + num(plot.width / 2) +
         "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">" + xml_escape(plot.title) +
         "</text>\n";
  svg += "</g>\n";
}

void draw_data(std::string& svg, const Plot& plot, const Frame& f) {
  svg += "<g clip-path=\"url(#plot-area)\">\n";
  for (const Band& band : plot.bands) {
    for (auto [begin, end] : finite_runs(band.x.size(), {&band.x, &band.low, &band.high})) {
      std::string points;
      for (std::size_t i = begin; i < end; ++i) points += num(f.px(band.x[i])) + "," + num(f.py(band.high[i])) + " ";
      for (std::size_t i = end; i-- > begin;) points += num(f.px(band.x[i])) + "," + num(f.py(band.low[i])) + " ";
      svg += "<polygon points=\"" + points + "\" fill=\"" + xml_escape(band.color) +
             "\" fill-opacity=\"0.25\" stroke=\"none\"/>\n";
    }
  }
  for (const Line& line : plot.lines) {
    for (auto [begin, end] : finite_runs(line.x.size(), {&line.x, &line.y})) {
      std::string points;
      for (std::size_t i = begin; i < end; ++i) points += num(f.px(line.x[i])) + "," + num(f.py(line.y[i])) + " ";
      svg += "<polyline points=\"" + points + "\" fill=\"none\" stroke=\"" + xml_escape(line.color) +
             "\" stroke-width=\"2\"" + (line.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    }
    if (!line.markers) continue;
    for (std::size_t i = 0; i < line.x.size(); ++i)
      if (std::isfinite(line.x[i]) && std::isfinite(line.y[i]))
        svg += "<circle cx=\"" + num(f.px(line.x[i])) + "\" cy=\"" + num(f.py(line.y[i])) + "\" r=\"3.5\" fill=\"" +
               xml_escape(line.color) + "\"/>\n";
  }
  svg += "</g>\n";
}

void draw_legend(std::string& svg, const Plot& plot, const Frame& f) {
  svg += "<g font-family=\"sans-serif\" font-size=\"13\" fill=\"#333\">\n";
  double y = f.top + 12;
  const double x = f.right + 16;
  for (const Band& band : plot.bands) {
    svg += "<rect x=\"" + num(x) + "\" y=\"" + num(y - 6) + "\" width=\"26\" height=\"12\" fill=\"" +
           xml_escape(band.color) + "\" fill-opacity=\"0.25\"/>\n";
    svg += "<text x=\"" + num(x + kLegendSwatch) + "\" y=\"" + num(y) + "\" dy=\"0.35em\">" + xml_escape(band.label) +
           "</text>\n";
    y += 22;
  }
  for (const Line& line : plot.lines) {
    svg += "<line x1=\"" + num(x) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x + 26) + "\" y2=\"" + num(y) +
           "\" stroke=\"" + xml_escape(line.color) + "\" stroke-width=\"2\"" +
           (line.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    if (line.markers)
      svg += "<circle cx=\"" + num(x + 13) + "\" cy=\"" + num(y) + "\" r=\"3.5\" fill=\"" + xml_escape(line.color) +
             "\"/>\n";
    svg += "<text x=\"" + num(x + kLegendSwatch) + "\" y=\"" + num(y) + "\" dy=\"0.35em\">" + xml_escape(line.label) +
           "</text>\n";
    y += 22;
  }
  svg += "</g>\n";
}

}  // namespace

Ticks nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) {  // a single value: give it some room on both sides
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  // step = 1, 2 or 5 times 10^k, the smallest of those >= (hi - lo) / target
  const double raw = (hi - lo) / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / magnitude;
  Ticks ticks;
  ticks.step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * magnitude;
  const double first = std::floor(lo / ticks.step + 1e-9), last = std::ceil(hi / ticks.step - 1e-9);
  for (double k = first; k <= last; ++k) ticks.values.push_back(k == 0 ? 0.0 : k * ticks.step);
  return ticks;
}

std::string format_tick(double value, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::abs(value) < step * 1e-6) value = 0;  // no "-0.00"
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::vector<double> log_ticks(double lo, double hi) {
  if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi))
    throw std::invalid_argument("log_ticks: expected 0 < lo <= hi, got lo = " + std::to_string(lo) +
                                ", hi = " + std::to_string(hi));
  if (hi < lo * 1.001) lo /= 3, hi *= 3;  // a single value: room on both sides
  const int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  const int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  const bool fine = hi / lo < 1000;
  std::vector<double> ticks;
  for (int k = first; k <= last; ++k) {
    const double decade = std::pow(10.0, k);
    ticks.push_back(decade);
    if (fine && k < last) ticks.push_back(2 * decade), ticks.push_back(5 * decade);
  }
  // From the largest tick <= lo to the smallest >= hi.
  std::size_t begin = 0, end = ticks.size();
  while (begin + 1 < end && ticks[begin + 1] <= lo * (1 + 1e-9)) ++begin;
  while (end - 1 > begin + 1 && ticks[end - 2] >= hi * (1 - 1e-9)) --end;
  ticks.erase(ticks.begin() + static_cast<std::ptrdiff_t>(end), ticks.end());
  ticks.erase(ticks.begin(), ticks.begin() + static_cast<std::ptrdiff_t>(begin));
  return ticks;
}

std::string format_log_tick(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

std::string palette_color(int i) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                 "#9467bd", "#8c564b", "#17becf", "#7f7f7f"};
  constexpr int n = sizeof colors / sizeof colors[0];
  return colors[((i % n) + n) % n];
}

std::string render_svg(const Plot& plot) {
  // The series in axis units (log10 on a log axis); `plot` keeps the labels and colors.
  Plot shown = plot;
  Range xs, ys;
  for (Band& band : shown.bands) {
    check_lengths("band", band.label, band.x.size(), band.low.size());
    check_lengths("band", band.label, band.x.size(), band.high.size());
    band.x = on_axis(band.x, plot.x_log);
    band.low = on_axis(band.low, plot.y_log), band.high = on_axis(band.high, plot.y_log);
    for (std::size_t i = 0; i < band.x.size(); ++i) xs.add(band.x[i]), ys.add(band.low[i]), ys.add(band.high[i]);
  }
  for (Line& line : shown.lines) {
    check_lengths("line", line.label, line.x.size(), line.y.size());
    line.x = on_axis(line.x, plot.x_log), line.y = on_axis(line.y, plot.y_log);
    for (std::size_t i = 0; i < line.x.size(); ++i) xs.add(line.x[i]), ys.add(line.y[i]);
  }
  if (xs.empty()) xs.add(0), xs.add(1);
  if (ys.empty()) ys.add(0), ys.add(1);

  // The right margin holds the legend: room for the swatch and the longest label.
  std::size_t longest_label = 0;
  for (const Band& band : plot.bands) longest_label = std::max(longest_label, band.label.size());
  for (const Line& line : plot.lines) longest_label = std::max(longest_label, line.label.size());
  const double margin_right = 16 + kLegendSwatch + kLegendCharWidth * static_cast<double>(longest_label) + 12;

  const Axis x_axis = make_axis(xs, plot.x_log, std::nullopt, std::nullopt);
  const Axis y_axis = make_axis(ys, plot.y_log, plot.y_min, plot.y_max);
  Frame f{x_axis.lo,   x_axis.hi,
          y_axis.lo,   y_axis.hi,
          kMarginLeft, plot.width - margin_right,
          kMarginTop,  plot.height - kMarginBottom};

  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(plot.width) + "\" height=\"" + num(plot.height) +
         "\" viewBox=\"0 0 " + num(plot.width) + " " + num(plot.height) + "\">\n";
  svg += "<title>" + xml_escape(plot.title) + "</title>\n";
  svg += "<defs><clipPath id=\"plot-area\"><rect x=\"" + num(f.left) + "\" y=\"" + num(f.top) + "\" width=\"" +
         num(f.right - f.left) + "\" height=\"" + num(f.bottom - f.top) + "\"/></clipPath></defs>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  draw_axes(svg, plot, f, x_axis, y_axis);
  draw_data(svg, shown, f);
  draw_legend(svg, plot, f);
  svg += "</svg>\n";
  return svg;
}

std::string write_svg(const std::string& dir, const std::string& name, const Plot& plot) {
  std::filesystem::create_directories(dir);
  const std::string path = (std::filesystem::path(dir) / name).string();
  write_file_atomically(path, render_svg(plot));
  return path;
}

}  // namespace examples
