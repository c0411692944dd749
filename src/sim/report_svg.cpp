// Inline SVG line charts for the simulation report: axes with "nice" ticks
// (1/2/2.5/5 x 10^k steps, or decades on a log axis), polylines per series
// segment, labelled event markers and a legend, all in one fixed viewBox that
// scales with the page. Coordinates are written with one decimal to keep the
// page small.
#include "report_svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace gossip::sim::svg {
namespace {

constexpr double kWidth = 880;
constexpr double kHeight = 320;
constexpr double kLeft = 74;
constexpr double kRight = 190;  // room for the legend
constexpr double kTop = 40;
constexpr double kBottom = 48;
constexpr double kPlotX0 = kLeft;
constexpr double kPlotX1 = kWidth - kRight;
constexpr double kPlotY0 = kTop;
constexpr double kPlotY1 = kHeight - kBottom;

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

Axis linear_axis(double lo, double hi) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = nice_step((hi - lo) / 5);
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

double map_x(const Axis& a, double v) {
  return kPlotX0 + (to_axis(a, v) - a.lo) / (a.hi - a.lo) * (kPlotX1 - kPlotX0);
}

double map_y(const Axis& a, double v) {
  return kPlotY1 - (to_axis(a, v) - a.lo) / (a.hi - a.lo) * (kPlotY1 - kPlotY0);
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
  if (step < 1 && std::abs(step * std::pow(10.0, decimals) -
                           std::round(step * std::pow(10.0, decimals))) > 1e-6) {
    ++decimals;  // 0.25, 0.025: one more digit
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
  const Axis ax = linear_axis(chart.x_from_zero ? std::min(0.0, xlo) : xlo, xhi);
  const Axis ay = chart.log_y ? log_axis(std::max(ylo, 1e-300), std::max(yhi, 1e-300))
                              : linear_axis(chart.y_from_zero ? std::min(0.0, ylo) : ylo, yhi);

  std::string o;
  o.reserve(4096);
  o += "<svg class=\"chart\" id=\"" + escape(chart.id) + "\" viewBox=\"0 0 " + coord(kWidth) + " " +
       coord(kHeight) + "\" role=\"img\" aria-label=\"" + escape(chart.title) + "\">\n";
  o += "<text class=\"chart-title\" x=\"" + coord(kPlotX0) + "\" y=\"22\">" + escape(chart.title) +
       "</text>\n";

  // Grid, ticks and tick labels.
  o += "<g class=\"axes\">\n";
  for (double t : ax.ticks) {
    const double x = kPlotX0 + (t - ax.lo) / (ax.hi - ax.lo) * (kPlotX1 - kPlotX0);
    o += "<line class=\"grid\" x1=\"" + coord(x) + "\" y1=\"" + coord(kPlotY0) + "\" x2=\"" +
         coord(x) + "\" y2=\"" + coord(kPlotY1) + "\"/><text class=\"tick\" x=\"" + coord(x) +
         "\" y=\"" + coord(kPlotY1 + 16) + "\" text-anchor=\"middle\">" + tick_label(ax, t) +
         "</text>\n";
  }
  for (double t : ay.ticks) {
    const double y = kPlotY1 - (t - ay.lo) / (ay.hi - ay.lo) * (kPlotY1 - kPlotY0);
    o += "<line class=\"grid\" x1=\"" + coord(kPlotX0) + "\" y1=\"" + coord(y) + "\" x2=\"" +
         coord(kPlotX1) + "\" y2=\"" + coord(y) + "\"/><text class=\"tick\" x=\"" +
         coord(kPlotX0 - 6) + "\" y=\"" + coord(y + 4) + "\" text-anchor=\"end\">" +
         tick_label(ay, t) + "</text>\n";
  }
  o += "<rect class=\"frame\" x=\"" + coord(kPlotX0) + "\" y=\"" + coord(kPlotY0) + "\" width=\"" +
       coord(kPlotX1 - kPlotX0) + "\" height=\"" + coord(kPlotY1 - kPlotY0) + "\"/>\n";
  o += "<text class=\"axis-label\" x=\"" + coord((kPlotX0 + kPlotX1) / 2) + "\" y=\"" +
       coord(kHeight - 10) + "\" text-anchor=\"middle\">" + escape(chart.x_label) + "</text>\n";
  o += "<text class=\"axis-label\" transform=\"translate(16 " + coord((kPlotY0 + kPlotY1) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + escape(chart.y_label) + "</text>\n";
  o += "</g>\n";

  // Series, in order (the caller puts thin lines first, thick ones on top).
  for (const auto& s : chart.series) {
    const std::string style = " fill=\"none\" stroke=\"" + escape(s.color) + "\" stroke-width=\"" +
                              format_number(s.width, 3) + "\"" +
                              (s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    const std::string title = s.tooltip.empty() ? "" : "<title>" + escape(s.tooltip) + "</title>";
    for (const auto& seg : s.segments) {
      if (seg.empty()) continue;
      if (seg.size() == 1) {
        o += "<circle class=\"" + escape(s.css_class) + " point\"" + s.data_attrs + " cx=\"" +
             coord(map_x(ax, seg[0].x)) + "\" cy=\"" + coord(map_y(ay, seg[0].y)) + "\" r=\"" +
             format_number(std::max(2.0, s.width), 3) + "\" fill=\"" + escape(s.color) + "\">" +
             title + "</circle>\n";
        continue;
      }
      o += "<polyline class=\"" + escape(s.css_class) + "\"" + s.data_attrs + style + " points=\"";
      for (size_t i = 0; i < seg.size(); ++i) {
        if (i) o += ' ';
        o += coord(map_x(ax, seg[i].x)) + "," + coord(map_y(ay, seg[i].y));
      }
      o += "\">" + title + "</polyline>\n";
    }
  }

  // Event markers: labels staggered over three rows so close events stay legible.
  for (size_t i = 0; i < chart.markers.size(); ++i) {
    const auto& m = chart.markers[i];
    const double x = map_x(ax, m.x);
    o += "<g class=\"event\" data-event=\"" + escape(m.name) + "\"><title>" + escape(m.detail) +
         "</title><line x1=\"" + coord(x) + "\" y1=\"" + coord(kPlotY0) + "\" x2=\"" + coord(x) +
         "\" y2=\"" + coord(kPlotY1) + "\"/><text x=\"" + coord(x + 3) + "\" y=\"" +
         coord(kPlotY0 + 12 + 13 * static_cast<double>(i % 3)) + "\">" + escape(m.name) +
         "</text></g>\n";
  }

  // Legend.
  o += "<g class=\"legend\">\n";
  for (size_t i = 0; i < chart.legend.size(); ++i) {
    const auto& e = chart.legend[i];
    const double y = kPlotY0 + 8 + 20 * static_cast<double>(i);
    o += "<line x1=\"" + coord(kPlotX1 + 14) + "\" y1=\"" + coord(y) + "\" x2=\"" +
         coord(kPlotX1 + 40) + "\" y2=\"" + coord(y) + "\" stroke=\"" + escape(e.color) +
         "\" stroke-width=\"" + format_number(e.width, 3) + "\"" +
         (e.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/><text x=\"" + coord(kPlotX1 + 46) +
         "\" y=\"" + coord(y + 4) + "\">" + escape(e.label) + "</text>\n";
  }
  o += "</g>\n</svg>\n";
  return o;
}

}  // namespace gossip::sim::svg
