// Inline SVG line charts for the simulation report (internal to module sim).
//
// A Chart is data in chart coordinates; render_chart maps it onto a viewBox of
// the chart's width (about one CSS pixel per unit on the page, so text keeps
// its size) with nice axis ticks (linear, or decades for a log y axis). From
// the top: the title, the legend in a row, a band with the event labels, then
// the plot, where every series is drawn as polylines (one per contiguous
// segment; a lone point becomes a small circle) clipped to the plot, and each
// event as a vertical line rising into its label. Nothing here knows about
// metrics records: report.cpp builds the Charts.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gossip::sim::svg {

struct Point {
  double x = 0;
  double y = 0;
};

// One line of a chart. `segments` are drawn separately (a break between two).
struct Series {
  std::string css_class;   // e.g. "series peer"; goes on every polyline
  std::string data_attrs;  // extra attributes, already escaped: ` data-peer="3"`
  std::string color;       // CSS colour
  double width = 1.0;      // stroke width in px
  bool dashed = false;
  std::string tooltip;  // <title> of each polyline (may be empty)
  std::vector<std::vector<Point>> segments;
};

// A vertical marker on a chart: an event.
struct Marker {
  double x = 0;
  std::string name;    // "kill", ...: the data-event attribute
  std::string label;   // the text drawn above the plot ("kill 1, 2"); empty: `name`
  std::string detail;  // the <title> text
};

struct LegendEntry {
  std::string label;
  std::string color;
  double width = 1.0;
  bool dashed = false;
};

struct Chart {
  std::string id;     // the svg's id
  std::string title;  // drawn above the plot
  std::string x_label;
  std::string y_label;
  bool log_y = false;        // every y must then be > 0 (the caller clamps)
  bool y_from_zero = false;  // linear y axis starts at 0 (counts)
  bool x_from_zero = true;   // the x axis starts at 0 (time since start); false: at the data
  // Fixed axis spans instead of the data's; points outside are clipped.
  // x_range is kept exactly (ticks inside it), so time charts given the same
  // one line up; y_range zooms and is widened to whole tick steps.
  std::optional<std::pair<double, double>> x_range;
  std::optional<std::pair<double, double>> y_range;  // linear axes only
  double width = 880;        // viewBox width; the height follows from the parts
  double plot_height = 240;  // of the plot area alone
  std::vector<Series> series;
  std::vector<Marker> markers;
  std::vector<LegendEntry> legend;
};

// The <svg class="chart" id=...> element (its clip path's id is "clip-" + id).
// Requires at least one point.
std::string render_chart(const Chart& chart);

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string escape(const std::string& text);

// Number for tables and titles: integral values in full ("123456789"),
// others with up to `digits` significant digits ("0.8712"), non-finite as
// "nan" / "inf".
std::string format_number(double value, int digits = 4);

}  // namespace gossip::sim::svg
