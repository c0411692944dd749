// Inline SVG line charts for the simulation report: axes with "nice" ticks
// (1/2/2.5/5 x 10^k steps, or decades on a log axis), polylines per series
// segment clipped to the plot, event markers labelled in a band above the
// plot and a legend row under the title, in a viewBox as wide as the chart
// asks that scales with the page. Coordinates are written with one decimal to
// keep the page small.
#include "report_svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <tuple>
#include <utility>

namespace gossip::sim::svg {
namespace {

constexpr double kLeft = 64;  // room for the y tick labels and the y axis label
constexpr double kRight = 18;
constexpr double kTitleY = 18;
constexpr double kLegendY = 38;  // baseline of the first legend row
constexpr double kLegendRow = 18;
constexpr double kEventRow = 13;  // one row of event labels
constexpr int kMaxEventRows = 4;  // more crowded labels share the least full row
constexpr double kBottom = 44;    // x tick labels and the x axis label
// Width estimates of the text (system sans-serif), to lay labels out without
// a browser: a little generous so neighbours do not touch.
constexpr double kLegendCharW = 7.0;  // 12 px
constexpr double kEventCharW = 6.4;   // 11 px

// Where the parts of one chart go, in viewBox units.
struct Layout {
  double width = 0;
  double height = 0;
  double x0 = 0, x1 = 0;  // plot left and right
  double y0 = 0, y1 = 0;  // plot top and bottom
  double event_top = 0;   // top of the event label band
};

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s == "-0" || s == "-0.0") s = s.substr(1);
  return s;
}

std::string coord(double v) {
  return fixed(v, 1);
}

// An axis in "axis space": for a log axis lo/hi/ticks are exponents of 10.
struct Axis {
  double lo = 0;
  double hi = 1;
  double step = 1;
  bool log = false;
  std::vector<double> ticks;
};

double nice_step(double raw) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1;
  const double e = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / e;
  const double n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return n * e;
}

// About `intervals` steps between lo and hi, rounded to nice ones. The axis
// spans whole steps around the data, or exactly [lo, hi] when `exact` (charts
// whose axes must line up), with the ticks that fall inside.
Axis linear_axis(double lo, double hi, double intervals = 5, bool exact = false) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = nice_step((hi - lo) / intervals);
  if (exact) {
    a.lo = lo;
    a.hi = hi;
    for (double k = std::ceil(lo / a.step - 1e-9); k * a.step <= hi * (1 + 1e-12); ++k)
      a.ticks.push_back(k * a.step);
    return a;
  }
  a.lo = std::floor(lo / a.step + 1e-9) * a.step;
  a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
  const int n = static_cast<int>(std::lround((a.hi - a.lo) / a.step));
  for (int i = 0; i <= n; ++i) a.ticks.push_back(a.lo + i * a.step);
  return a;
}

Axis log_axis(double lo, double hi) {
  Axis a;
  a.log = true;
  a.lo = std::floor(std::log10(lo) + 1e-9);
  a.hi = std::ceil(std::log10(hi) - 1e-9);
  if (a.hi <= a.lo) a.hi = a.lo + 1;
  a.step = std::max(1.0, std::ceil((a.hi - a.lo) / 8));
  a.hi = a.lo + std::ceil((a.hi - a.lo) / a.step) * a.step;
  for (double e = a.lo; e <= a.hi + 1e-9; e += a.step) a.ticks.push_back(e);
  return a;
}

double to_axis(const Axis& a, double v) {
  return a.log ? std::log10(v) : v;
}

double map_x(const Layout& l, const Axis& a, double v) {
  return l.x0 + (to_axis(a, v) - a.lo) / (a.hi - a.lo) * (l.x1 - l.x0);
}

double map_y(const Layout& l, const Axis& a, double v) {
  return l.y1 - (to_axis(a, v) - a.lo) / (a.hi - a.lo) * (l.y1 - l.y0);
}

std::string tick_label(const Axis& a, double t) {
  if (a.log) {
    const int e = static_cast<int>(std::lround(t));
    if (e >= -2 && e <= 3) return fixed(std::pow(10.0, e), std::max(0, -e));
    return "1e" + std::to_string(e);
  }
  const double mag = std::max(std::abs(a.lo), std::abs(a.hi));
  double scale = 1;
  const char* suffix = "";
  if (mag >= 1e9) {
    scale = 1e9, suffix = "G";
  } else if (mag >= 1e6) {
    scale = 1e6, suffix = "M";
  } else if (mag >= 1e4) {
    scale = 1e3, suffix = "k";
  }
  const double step = a.step / scale;
  int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::abs(step * std::pow(10.0, decimals) - std::round(step * std::pow(10.0, decimals))) >
      1e-6) {
    ++decimals;  // 2.5, 0.25, 0.025: one more digit
  }
  return fixed(t / scale, decimals) + suffix;
}

void bounds(const std::vector<double>& v, double& lo, double& hi) {
  lo = std::numeric_limits<double>::infinity();
  hi = -lo;
  for (double x : v) {
    if (!std::isfinite(x)) continue;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
}

}  // namespace

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
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
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_number(double value, int digits) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == std::floor(value) && std::abs(value) < 1e15) {
    return fixed(value, 0);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, value);
  return buf;
}

namespace {

// Legend entries in rows from the plot's left edge: {x, row} per entry.
std::vector<std::pair<double, int>> legend_places(const Chart& chart, double x0, double x1) {
  std::vector<std::pair<double, int>> out;
  double x = x0;
  int row = 0;
  for (const auto& e : chart.legend) {
    const double w = 30 + kLegendCharW * static_cast<double>(e.label.size()) + 18;
    if (x > x0 && x + w > x1) x = x0, ++row;
    out.push_back({x, row});
    x += w;
  }
  return out;
}

// Where each marker's label goes: its row in the band above the plot (in x
// order, the first row whose last label ends before this one starts) and
// whether it sits left of its line (it would pass `right_edge` otherwise).
struct EventLabels {
  std::vector<int> row;
  std::vector<bool> left;
  int rows = 0;
};

EventLabels event_labels(const std::vector<double>& xs, const std::vector<std::string>& labels,
                         double right_edge) {
  std::vector<size_t> order(xs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return xs[a] < xs[b]; });
  EventLabels out;
  out.row.assign(xs.size(), 0);
  out.left.assign(xs.size(), false);
  std::vector<double> row_end;
  for (size_t i : order) {
    const double w = 3 + kEventCharW * static_cast<double>(labels[i].size()) + 6;
    out.left[i] = xs[i] + w > right_edge;
    const double begin = out.left[i] ? xs[i] - w : xs[i];
    size_t r = 0;
    while (r < row_end.size() && row_end[r] > begin) ++r;
    if (r == row_end.size()) {
      if (row_end.size() < kMaxEventRows) {
        row_end.push_back(0);
      } else {
        r = static_cast<size_t>(std::min_element(row_end.begin(), row_end.end()) - row_end.begin());
      }
    }
    out.row[i] = static_cast<int>(r);
    row_end[r] = out.left[i] ? xs[i] : xs[i] + w;
  }
  out.rows = static_cast<int>(row_end.size());
  return out;
}

}  // namespace

std::string render_chart(const Chart& chart) {
  std::vector<double> xs, ys;
  for (const auto& s : chart.series) {
    for (const auto& seg : s.segments) {
      for (const auto& p : seg) {
        xs.push_back(p.x);
        ys.push_back(p.y);
      }
    }
  }
  for (const auto& m : chart.markers) xs.push_back(m.x);
  double xlo, xhi, ylo, yhi;
  bounds(xs, xlo, xhi);
  bounds(ys, ylo, yhi);
  if (chart.x_range) std::tie(xlo, xhi) = *chart.x_range;
  if (chart.y_range && !chart.log_y) std::tie(ylo, yhi) = *chart.y_range;
  // One x tick about every 100 units of plot width; a fixed x_range is kept
  // exactly, so that charts given the same one line up.
  const Axis ax = linear_axis(chart.x_from_zero ? std::min(0.0, xlo) : xlo, xhi,
                              std::max(4.0, (chart.width - kLeft - kRight) / 100),
                              chart.x_range.has_value() && xhi > xlo);
  const Axis ay = chart.log_y ? log_axis(std::max(ylo, 1e-300), std::max(yhi, 1e-300))
                              : linear_axis(chart.y_from_zero ? std::min(0.0, ylo) : ylo, yhi);

  // Layout, top to bottom: title, legend rows, event label rows, plot, x axis.
  Layout l;
  l.width = chart.width;
  l.x0 = kLeft;
  l.x1 = chart.width - kRight;
  const auto legend = legend_places(chart, l.x0, l.x1);
  const int legend_rows = legend.empty() ? 0 : legend.back().second + 1;
  std::vector<double> marker_px;
  std::vector<std::string> marker_text;
  for (const auto& m : chart.markers) {
    marker_px.push_back(map_x(l, ax, m.x));
    marker_text.push_back(m.label.empty() ? m.name : m.label);
  }
  const EventLabels labels = event_labels(marker_px, marker_text, l.width - 2);
  l.event_top = kLegendY + kLegendRow * std::max(0, legend_rows - 1) + 8;
  l.y0 = l.event_top + kEventRow * labels.rows + 4;
  l.y1 = l.y0 + chart.plot_height;
  l.height = l.y1 + kBottom;

  std::string o;
  o.reserve(4096);
  const std::string clip_id = "clip-" + escape(chart.id);
  o += "<svg class=\"chart\" id=\"" + escape(chart.id) + "\" viewBox=\"0 0 " + coord(l.width) +
       " " + coord(l.height) + "\" role=\"img\" aria-label=\"" + escape(chart.title) + "\">\n";
  o += "<clipPath id=\"" + clip_id + "\"><rect x=\"" + coord(l.x0) + "\" y=\"" + coord(l.y0) +
       "\" width=\"" + coord(l.x1 - l.x0) + "\" height=\"" + coord(l.y1 - l.y0) +
       "\"/></clipPath>\n";
  o += "<text class=\"chart-title\" x=\"" + coord(l.x0) + "\" y=\"" + coord(kTitleY) + "\">" +
       escape(chart.title) + "</text>\n";

  // Grid, ticks and tick labels.
  o += "<g class=\"axes\">\n";
  for (double t : ax.ticks) {
    const double x = l.x0 + (t - ax.lo) / (ax.hi - ax.lo) * (l.x1 - l.x0);
    o += "<line class=\"grid\" x1=\"" + coord(x) + "\" y1=\"" + coord(l.y0) + "\" x2=\"" +
         coord(x) + "\" y2=\"" + coord(l.y1) + "\"/><text class=\"tick\" x=\"" + coord(x) +
         "\" y=\"" + coord(l.y1 + 16) + "\" text-anchor=\"middle\">" + tick_label(ax, t) +
         "</text>\n";
  }
  for (double t : ay.ticks) {
    const double y = l.y1 - (t - ay.lo) / (ay.hi - ay.lo) * (l.y1 - l.y0);
    o += "<line class=\"grid\" x1=\"" + coord(l.x0) + "\" y1=\"" + coord(y) + "\" x2=\"" +
         coord(l.x1) + "\" y2=\"" + coord(y) + "\"/><text class=\"tick\" x=\"" + coord(l.x0 - 6) +
         "\" y=\"" + coord(y + 4) + "\" text-anchor=\"end\">" + tick_label(ay, t) + "</text>\n";
  }
  o += "<rect class=\"frame\" x=\"" + coord(l.x0) + "\" y=\"" + coord(l.y0) + "\" width=\"" +
       coord(l.x1 - l.x0) + "\" height=\"" + coord(l.y1 - l.y0) + "\"/>\n";
  o += "<text class=\"axis-label\" x=\"" + coord((l.x0 + l.x1) / 2) + "\" y=\"" +
       coord(l.height - 8) + "\" text-anchor=\"middle\">" + escape(chart.x_label) + "</text>\n";
  o += "<text class=\"axis-label\" transform=\"translate(14 " + coord((l.y0 + l.y1) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + escape(chart.y_label) + "</text>\n";
  o += "</g>\n";

  // Series, in order (the caller puts thin lines first, thick ones on top),
  // clipped to the plot: a zoomed axis leaves points outside it.
  o += "<g clip-path=\"url(#" + clip_id + ")\">\n";
  for (const auto& s : chart.series) {
    const std::string style = " fill=\"none\" stroke=\"" + escape(s.color) + "\" stroke-width=\"" +
                              format_number(s.width, 3) + "\"" +
                              (s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    const std::string title = s.tooltip.empty() ? "" : "<title>" + escape(s.tooltip) + "</title>";
    for (const auto& seg : s.segments) {
      if (seg.empty()) continue;
      if (seg.size() == 1) {
        o += "<circle class=\"" + escape(s.css_class) + " point\"" + s.data_attrs + " cx=\"" +
             coord(map_x(l, ax, seg[0].x)) + "\" cy=\"" + coord(map_y(l, ay, seg[0].y)) +
             "\" r=\"" + format_number(std::max(2.0, s.width), 3) + "\" fill=\"" + escape(s.color) +
             "\">" + title + "</circle>\n";
        continue;
      }
      o += "<polyline class=\"" + escape(s.css_class) + "\"" + s.data_attrs + style + " points=\"";
      for (size_t i = 0; i < seg.size(); ++i) {
        if (i) o += ' ';
        o += coord(map_x(l, ax, seg[i].x)) + "," + coord(map_y(l, ay, seg[i].y));
      }
      o += "\">" + title + "</polyline>\n";
    }
  }
  o += "</g>\n";

  // Event markers: a line from its label (in the band above the plot) down
  // through the plot.
  for (size_t i = 0; i < chart.markers.size(); ++i) {
    const auto& m = chart.markers[i];
    const double x = marker_px[i];
    const double text_y = l.event_top + kEventRow * (labels.row[i] + 1) - 3;
    o += "<g class=\"event\" data-event=\"" + escape(m.name) + "\"><title>" + escape(m.detail) +
         "</title><line x1=\"" + coord(x) + "\" y1=\"" + coord(text_y - 9) + "\" x2=\"" + coord(x) +
         "\" y2=\"" + coord(l.y1) + "\"/><text x=\"" + coord(labels.left[i] ? x - 3 : x + 3) +
         "\" y=\"" + coord(text_y) + "\"" + (labels.left[i] ? " text-anchor=\"end\"" : "") + ">" +
         escape(marker_text[i]) + "</text></g>\n";
  }

  // Legend, in rows under the title.
  o += "<g class=\"legend\">\n";
  for (size_t i = 0; i < chart.legend.size(); ++i) {
    const auto& e = chart.legend[i];
    const double x = legend[i].first;
    const double y = kLegendY + kLegendRow * legend[i].second;
    o += "<line x1=\"" + coord(x) + "\" y1=\"" + coord(y - 4) + "\" x2=\"" + coord(x + 26) +
         "\" y2=\"" + coord(y - 4) + "\" stroke=\"" + escape(e.color) + "\" stroke-width=\"" +
         format_number(e.width, 3) + "\"" + (e.dashed ? " stroke-dasharray=\"6 4\"" : "") +
         "/><text x=\"" + coord(x + 31) + "\" y=\"" + coord(y) + "\">" + escape(e.label) +
         "</text>\n";
  }
  o += "</g>\n</svg>\n";
  return o;
}

}  // namespace gossip::sim::svg
