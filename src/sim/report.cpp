// The simulation report: reads metrics.jsonl (tolerating a torn last line),
// turns the swarm-wide samples into svg::Charts (accuracy per peer and of the
// averaged model, consensus distance on a log axis with the theory curve in
// averaging-only runs, exchanges and members), marks every scripted event on
// every chart, and lays out one self-contained HTML page around them.
// Reading lives in report_read.cpp, the page around the charts in
// report_page.cpp, its tables in report_tables.cpp, the SVG drawing in
// report_svg.cpp.
#include "gossip/sim/report.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>

#include "report_page.hpp"
#include "report_svg.hpp"
#include "report_tables.hpp"

namespace gossip::sim {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxPoints = 2000;  // per series; more samples are thinned evenly
// Chart sizes in viewBox units, about CSS pixels on the page: the lead chart
// spans the page, the others share it two to a row.
constexpr double kLeadWidth = 1160;
constexpr double kLeadPlotHeight = 300;
constexpr double kGridWidth = 570;
constexpr double kGridPlotHeight = 190;

// The page's field readers (report_tables.hpp).
using page_format::num;
using page_format::text;

std::string peer_color(int index) {
  const double hue = std::fmod(static_cast<double>(index) * 137.508, 360.0);
  return "hsl(" + svg::format_number(std::round(hue), 3) + ",65%,42%)";
}

// A time series of one sample field, broken where the field is missing.
svg::Series field_series(const std::vector<const json*>& samples, const char* key,
                         std::string css_class, std::string color, double width,
                         bool dashed = false) {
  svg::Series s;
  s.css_class = std::move(css_class);
  s.color = std::move(color);
  s.width = width;
  s.dashed = dashed;
  s.segments.emplace_back();
  for (const json* r : samples) {
    auto t = num(*r, "t_s");
    auto v = num(*r, key);
    if (t && v) {
      s.segments.back().push_back({*t, *v});
    } else if (!s.segments.back().empty()) {
      s.segments.emplace_back();
    }
  }
  return s;
}

bool has_points(const svg::Series& s) {
  return std::any_of(s.segments.begin(), s.segments.end(),
                     [](const auto& g) { return !g.empty(); });
}

// Replaces y <= 0 by `floor` (a log axis cannot show them).
int clamp_to_floor(svg::Series& s, double floor) {
  int clamped = 0;
  for (auto& seg : s.segments) {
    for (auto& p : seg) {
      if (p.y < floor) p.y = floor, ++clamped;
    }
  }
  return clamped;
}

double smallest_positive(const std::vector<const svg::Series*>& series) {
  double lo = 0;
  for (const auto* s : series) {
    for (const auto& seg : s->segments) {
      for (const auto& p : seg) {
        if (p.y > 0 && (lo == 0 || p.y < lo)) lo = p.y;
      }
    }
  }
  return lo;
}

struct Context {
  const json* start = nullptr;
  const json* final = nullptr;
  std::vector<const json*> samples;  // thinned to kMaxPoints
  std::vector<const json*> events;
  bool average_only = false;
  bool regression = false;
  bool language_model = false;  // the start record's task is language_model
  std::vector<std::string> notes;
};

// Test accuracy of every peer and of the averaged model over time, or their
// test loss when `loss` (a regression task has no accuracy).
svg::Chart accuracy_chart(const Context& c, bool loss) {
  const char* peer_key = loss ? "test_loss" : "test_accuracy";
  const char* avg_key = loss ? "averaged_model_loss" : "averaged_model_accuracy";
  std::map<int, svg::Series> peers;
  for (const json* r : c.samples) {
    auto it = r->find("peers");
    if (it == r->end() || !it->is_array()) continue;
    for (const auto& p : *it) {
      auto idx = num(p, "index");
      if (idx && *idx >= 0 && *idx < 1e6) peers.emplace(static_cast<int>(*idx), svg::Series{});
    }
  }
  for (auto& [index, s] : peers) {
    s.css_class = "series peer";
    s.data_attrs = " data-peer=\"" + std::to_string(index) + "\"";
    s.color = peer_color(index);
    s.width = peers.size() > 16 ? 0.8 : 1.1;
    s.tooltip = "peer " + std::to_string(index);
    s.segments.emplace_back();
  }
  for (const json* r : c.samples) {
    auto t = num(*r, "t_s");
    std::map<int, double> values;
    auto it = r->find("peers");
    if (it != r->end() && it->is_array()) {
      for (const auto& p : *it) {
        auto idx = num(p, "index");
        auto v = num(p, peer_key);
        const bool alive = !p.contains("alive") || p["alive"] == true;
        if (idx && v && alive) values[static_cast<int>(*idx)] = *v;
      }
    }
    for (auto& [index, s] : peers) {
      auto v = values.find(index);
      if (t && v != values.end()) {
        s.segments.back().push_back({*t, v->second});
      } else if (!s.segments.back().empty()) {
        s.segments.emplace_back();  // dead or absent here: the line breaks
      }
    }
  }
  svg::Chart ch;
  ch.id = "chart-accuracy";
  ch.title = loss               ? "Test loss over time (a regression task has no accuracy)"
             : c.language_model ? "Test accuracy over time (next-byte prediction)"
                                : "Test accuracy over time";
  ch.x_label = "time since start (s)";
  ch.y_label = loss ? "test loss" : c.language_model ? "next-byte accuracy" : "test accuracy";
  for (auto& [index, s] : peers) {
    if (has_points(s)) ch.series.push_back(std::move(s));
  }
  const size_t peer_lines = ch.series.size();
  svg::Series avg = field_series(c.samples, avg_key, "series averaged", "#111", 3);
  avg.tooltip = "averaged model";
  if (has_points(avg)) ch.series.push_back(std::move(avg));
  if (peer_lines > 0) {
    ch.legend.push_back({std::to_string(peer_lines) + " peers (thin)", "#7a8aa0", 1.1, false});
  }
  if (ch.series.size() > peer_lines) ch.legend.push_back({"averaged model", "#111", 3, false});
  // Regression losses can fall by orders of magnitude: use a log axis then.
  if (loss && !c.language_model) {
    std::vector<const svg::Series*> all;
    for (const auto& s : ch.series) all.push_back(&s);
    double lo = smallest_positive(all), hi = 0;
    for (const auto& s : ch.series)
      for (const auto& g : s.segments)
        for (const auto& p : g) hi = std::max(hi, p.y);
    if (lo > 0 && hi / lo > 100) {
      ch.log_y = true;
      for (auto& s : ch.series) clamp_to_floor(s, lo);
      ch.y_label += " (log)";
    }
  }
  return ch;
}

// The averaged model's accuracy (or test loss; a language model's in bits
// per byte) against the blob bytes the swarm has moved so far: what a codec
// buys for its bytes, next to the same curve over time.
svg::Chart bytes_chart(const Context& c, bool loss) {
  svg::Chart ch;
  ch.id = "chart-bytes";
  const char* key = loss ? "averaged_model_loss" : "averaged_model_accuracy";
  const double per = c.language_model ? 1 / std::log(2.0) : 1;
  svg::Series s;
  s.css_class = "series averaged";
  s.color = "#111";
  s.width = 3;
  s.tooltip = "averaged model";
  s.segments.emplace_back();
  for (const json* r : c.samples) {
    auto b = num(*r, "bytes_total");
    auto v = num(*r, key);
    if (b && v) {
      s.segments.back().push_back({*b / 1e6, *v * per});
    } else if (!s.segments.back().empty()) {
      s.segments.emplace_back();
    }
  }
  std::string codec;
  if (c.final) codec = text(*c.final, "codec");
  ch.title = std::string(loss ? "Averaged model's test loss" : "Averaged model's accuracy") +
             " against bytes sent" + (codec.empty() ? "" : " (" + codec + ")");
  ch.x_label = "snapshot bytes sent + received, all peers (MB)";
  ch.y_label =
      loss ? (c.language_model ? "test loss (bits per byte)" : "test loss") : "test accuracy";
  if (has_points(s)) ch.series.push_back(std::move(s));
  return ch;
}

// A language model's test loss of every peer and of the averaged model in
// bits per byte (the samples' nats divided by ln 2).
svg::Chart bits_per_byte_chart(const Context& c) {
  svg::Chart ch = accuracy_chart(c, /*loss=*/true);
  ch.id = "chart-bits-per-byte";
  ch.title = "Test loss over time, bits per byte (next-byte prediction)";
  ch.y_label = "bits per byte";
  for (auto& s : ch.series)
    for (auto& g : s.segments)
      for (auto& p : g) p.y /= std::log(2.0);
  return ch;
}

// Consensus distance (and theory) over `x_key` ("t_s" or "exchange_pairs").
// y extent of every point of `ch` at x >= from: {lo, hi}, or {0, 0} if none.
std::pair<double, double> y_extent(const svg::Chart& ch, double from) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : ch.series)
    for (const auto& g : s.segments)
      for (const auto& p : g) {
        if (p.x < from) continue;
        lo = std::min(lo, p.y);
        hi = std::max(hi, p.y);
      }
  return lo <= hi ? std::pair{lo, hi} : std::pair{0.0, 0.0};
}

// A chart once more with its y axis zoomed on the second half of the run.
// Once the swarm has converged its peers differ by a point or two, which the
// full chart's axis (from the first samples' 10-30%) squeezes into one line.
// The time axis stays the full run's, lined up with the other charts; the
// early points fall outside the zoomed axis and are clipped. Empty (not
// drawn) when zooming would not show more.
svg::Chart late_chart(const svg::Chart& full, std::string id, std::string title) {
  double t_end = 0;
  for (const auto& s : full.series)
    for (const auto& g : s.segments)
      for (const auto& p : g) t_end = std::max(t_end, p.x);
  const double from = t_end / 2;
  svg::Chart late;
  const auto [all_lo, all_hi] = y_extent(full, -std::numeric_limits<double>::infinity());
  const auto [lo, hi] = y_extent(full, from);
  if (full.log_y || !(hi - lo < 0.5 * (all_hi - all_lo))) return late;
  late = full;
  late.id = std::move(id);
  late.title = std::move(title);
  const double pad = std::max(hi - lo, 1e-9 * std::abs(hi)) * 0.04;
  late.y_range = std::pair{lo - pad, hi + pad};
  return late;
}

svg::Chart consensus_chart(Context& c, bool over_exchanges) {
  const char* x_key = over_exchanges ? "exchange_pairs" : "t_s";
  auto series_of = [&](const char* key, std::string cls, std::string color, double width,
                       bool dashed) {
    svg::Series s;
    s.css_class = std::move(cls);
    s.color = std::move(color);
    s.width = width;
    s.dashed = dashed;
    s.segments.emplace_back();
    for (const json* r : c.samples) {
      auto x = num(*r, x_key);
      auto y = num(*r, key);
      if (x && y) {
        s.segments.back().push_back({*x, *y});
      } else if (!s.segments.back().empty()) {
        s.segments.emplace_back();
      }
    }
    return s;
  };
  svg::Chart ch;
  ch.id = over_exchanges ? "chart-consensus-exchanges" : "chart-consensus";
  ch.log_y = true;
  ch.x_label = over_exchanges ? "completed pairwise exchanges" : "time since start (s)";
  ch.y_label = "consensus distance (log)";
  svg::Series measured = series_of("consensus_distance", "series consensus", "#1f5fbf", 2.5, false);
  measured.tooltip = "measured: mean ||x_i - xbar||^2 / ||xbar||^2";
  svg::Series theory = series_of("theory_distance", "series theory", "#e07b00", 2, true);
  theory.tooltip = "theory: D(0) * (1 - 1/(n-1))^k";
  std::string factor;
  if (c.start) {
    if (auto f = num(*c.start, "theory_factor")) factor = svg::format_number(*f, 4);
  }
  // The title must fit a chart half the page wide: the factor goes in the legend.
  ch.title =
      over_exchanges ? "Consensus distance against exchanges" : "Consensus distance over time";
  const bool with_theory = c.average_only && has_points(theory);
  double floor = smallest_positive({&measured, &theory}) / 10;
  if (!(floor > 0)) floor = 1e-12;
  int clamped = clamp_to_floor(measured, floor) + (with_theory ? clamp_to_floor(theory, floor) : 0);
  if (clamped > 0 && !over_exchanges) {
    c.notes.push_back(std::to_string(clamped) +
                      " consensus distance value(s) of 0 are drawn at the "
                      "bottom of the log axis (" +
                      svg::format_number(floor, 3) + ").");
  }
  if (has_points(measured)) {
    ch.series.push_back(std::move(measured));
    ch.legend.push_back({"measured", "#1f5fbf", 2.5, false});
  }
  if (with_theory) {
    ch.series.push_back(std::move(theory));
    ch.legend.push_back({over_exchanges && !factor.empty()
                             ? "theory (Boyd et al.): factor " + factor + " per exchange"
                             : "theory (Boyd et al.)",
                         "#e07b00", 2, true});
  }
  return ch;
}

// One line per sample field that has any points, with its legend entry.
struct FieldLine {
  const char* key;
  const char* cls;
  const char* color;
  double width;
  bool dashed;
  const char* label;
};

void add_field_lines(svg::Chart& ch, const Context& c, std::initializer_list<FieldLine> lines) {
  for (const auto& line : lines) {
    auto s = field_series(c.samples, line.key, line.cls, line.color, line.width, line.dashed);
    if (!has_points(s)) continue;
    ch.series.push_back(std::move(s));
    ch.legend.push_back({line.label, line.color, line.width, line.dashed});
  }
}

svg::Chart exchanges_chart(const Context& c) {
  svg::Chart ch;
  ch.id = "chart-exchanges";
  ch.title = "Exchanges over time (cumulative, all peers)";
  ch.x_label = "time since start (s)";
  ch.y_label = "exchanges";
  ch.y_from_zero = true;
  add_field_lines(ch, c,
                  {{"exchanges_ok", "series exchanges-ok", "#2e8b57", 2, false, "ok"},
                   {"exchanges_busy", "series exchanges-busy", "#e0a000", 2, false, "busy"},
                   {"exchanges_failed", "series exchanges-failed", "#c0392b", 2, false, "failed"}});
  return ch;
}

svg::Chart members_chart(const Context& c) {
  svg::Chart ch;
  ch.id = "chart-members";
  ch.title = "Live peers and membership views over time";
  ch.x_label = "time since start (s)";
  ch.y_label = "peers";
  ch.y_from_zero = true;
  add_field_lines(ch, c,
                  {{"alive", "series alive", "#111", 2.5, false, "alive peers"},
                   {"members_max", "series members-max", "#1f5fbf", 1.5, true, "largest view"},
                   {"members_min", "series members-min", "#8e44ad", 1.5, true, "smallest view"}});
  return ch;
}

// The text drawn at an event's line: its name and, for the events that name
// peers or a fraction, those ("kill 1, 2", "start 8..9", "drop 20%"), taken
// from the detail the simulation wrote (events.cpp); the name alone otherwise.
std::string event_label(const std::string& name, const std::string& detail) {
  if ((name == "kill" || name == "leave") && detail.rfind("peers ", 0) == 0)
    return name + " " + detail.substr(6);
  if (name == "start") {
    const size_t open = detail.find('('), close = detail.find(')');
    if (open != std::string::npos && close != std::string::npos && close > open)
      return name + " " + detail.substr(open + 1, close - open - 1);
  }
  if (name == "drop") {
    const size_t pct = detail.find('%');
    if (pct != std::string::npos) return name + " " + detail.substr(0, pct + 1);
  }
  if (name == "slow_link") return "slow link";
  return name;
}

std::vector<svg::Marker> event_markers(const Context& c) {
  std::vector<svg::Marker> out;
  for (const json* e : c.events) {
    auto t = num(*e, "t_s");
    if (!t) continue;
    svg::Marker m;
    m.x = *t;
    m.name = text(*e, "event");
    if (m.name.empty()) m.name = "event";
    const std::string detail = text(*e, "detail");
    m.label = event_label(m.name, detail);
    m.detail = m.name + " at " + svg::format_number(*t, 4) + " s";
    if (auto step = num(*e, "step_max"))
      m.detail += " (step " + svg::format_number(*step, 10) + ")";
    if (!detail.empty()) m.detail += ": " + detail;
    out.push_back(std::move(m));
  }
  return out;
}

// The markers moved onto the consensus-against-exchanges axis: each event at
// the number of completed pairwise exchanges when it happened (interpolated
// between the samples around it; none at t = 0).
std::vector<svg::Marker> markers_over_exchanges(const Context& c,
                                                const std::vector<svg::Marker>& markers) {
  std::vector<svg::Point> curve{{0, 0}};
  for (const json* r : c.samples) {
    auto t = num(*r, "t_s");
    auto k = num(*r, "exchange_pairs");
    if (t && k && *t >= curve.back().x) curve.push_back({*t, *k});
  }
  std::vector<svg::Marker> out;
  for (svg::Marker m : markers) {
    auto after =
        std::find_if(curve.begin(), curve.end(), [&](const auto& p) { return p.x >= m.x; });
    if (after == curve.end()) {
      m.x = curve.back().y;
    } else if (after == curve.begin() || after->x == m.x) {
      m.x = after->y;
    } else {
      const auto& before = *(after - 1);
      m.x = before.y + (after->y - before.y) * (m.x - before.x) / (after->x - before.x);
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

core::Result<std::string> render_report(const std::vector<json>& records, const std::string& title,
                                        const std::vector<std::string>& notes) {
  Context c;
  c.notes = notes;
  std::vector<const json*> all_samples;
  for (const auto& r : records) {
    const std::string type = text(r, "type");
    if (type == "start" && !c.start) c.start = &r;
    if (type == "final") c.final = &r;
    if (type == "event" && num(r, "t_s")) c.events.push_back(&r);
    if (type == "sample" && num(r, "t_s")) all_samples.push_back(&r);
  }
  if (all_samples.empty()) {
    return core::invalid_argument(
        "no \"sample\" records to report on (the simulation stopped before its first sample?)");
  }
  const size_t stride = (all_samples.size() + kMaxPoints - 1) / kMaxPoints;
  for (size_t i = 0; i < all_samples.size(); ++i) {
    if (i % stride == 0 || i + 1 == all_samples.size()) c.samples.push_back(all_samples[i]);
  }
  if (stride > 1) {
    c.notes.push_back("Charts show one sample in " + std::to_string(stride) + " of the " +
                      std::to_string(all_samples.size()) + " (and the last one).");
  }
  const std::string mode =
      c.start ? text(*c.start, "mode") : (c.final ? text(*c.final, "mode") : "");
  c.average_only = mode == "average_only" ||
                   std::any_of(all_samples.begin(), all_samples.end(), [](const json* s) {
                     return num(*s, "theory_distance").has_value();
                   });
  c.regression = c.start && text(*c.start, "task") == "regression";
  c.language_model = c.start && text(*c.start, "task") == "language_model";
  if (!c.regression) {
    bool any_acc = false, any_loss = false;
    for (const json* s : all_samples) {
      any_acc = any_acc || num(*s, "averaged_model_accuracy") || num(*s, "mean_test_accuracy");
      any_loss = any_loss || num(*s, "averaged_model_loss") || num(*s, "mean_test_loss");
    }
    c.regression = !any_acc && any_loss;
  }

  const std::vector<svg::Marker> markers = event_markers(c);
  // The lead chart first: what the run is about (a language model's loss in
  // bits per byte, a regression's loss, a classifier's accuracy, or the
  // consensus distance when nothing trains). The time charts share one axis.
  std::vector<svg::Chart> charts;
  if (c.language_model) {
    charts.push_back(bits_per_byte_chart(c));
    if (auto late = late_chart(charts.back(), "chart-bits-per-byte-late",
                               "Test loss, bits per byte: zoomed on the second half of the run");
        !late.series.empty())
      charts.push_back(std::move(late));
    charts.push_back(bytes_chart(c, true));
    charts.push_back(accuracy_chart(c, false));
  } else if (!c.average_only) {
    charts.push_back(accuracy_chart(c, c.regression));
    if (auto late =
            late_chart(charts.back(), "chart-accuracy-late",
                       c.regression ? "Test loss: zoomed on the second half of the run"
                                    : "Test accuracy: zoomed on the second half of the run");
        !late.series.empty())
      charts.push_back(std::move(late));
    charts.push_back(bytes_chart(c, c.regression));
  }
  charts.push_back(consensus_chart(c, false));
  if (c.average_only) charts.push_back(consensus_chart(c, true));
  charts.push_back(exchanges_chart(c));
  charts.push_back(members_chart(c));

  double t_end = 0;
  for (const json* r : c.samples) t_end = std::max(t_end, num(*r, "t_s").value_or(0));
  for (const auto& m : markers) t_end = std::max(t_end, m.x);
  t_end *= 1.01;  // room for the line ends, which the plot clips
  std::vector<std::string> rendered;
  for (size_t i = 0; i < charts.size(); ++i) {
    svg::Chart& ch = charts[i];
    ch.width = i == 0 ? kLeadWidth : kGridWidth;
    ch.plot_height = i == 0 ? kLeadPlotHeight : kGridPlotHeight;
    if (ch.id == "chart-consensus-exchanges") {
      ch.markers = markers_over_exchanges(c, markers);
    } else if (ch.id == "chart-bytes") {
      // Its own x axis (bytes): no time markers.
    } else {
      ch.markers = markers;
      ch.x_range = std::pair{0.0, t_end};
    }
    if (ch.series.empty()) {
      rendered.push_back("<p class=\"no-data\" id=\"" + ch.id + "-missing\">" +
                         svg::escape(ch.title) + ": no data in this run.</p>\n");
    } else {
      rendered.push_back(svg::render_chart(ch));
    }
  }
  PageInput page;
  page.title = title;
  page.task = c.average_only     ? Task::kAverageOnly
              : c.language_model ? Task::kLanguageModel
              : c.regression     ? Task::kRegression
                                 : Task::kClassification;
  page.start = c.start;
  page.final = c.final;
  page.last_sample = all_samples.back();
  page.first_sample = all_samples.front();
  page.events = c.events;
  page.notes = c.notes;
  page.charts = std::move(rendered);
  return render_page(page);
}

core::Status write_report(const std::vector<json>& records, const fs::path& html_out,
                          const std::string& title) {
  auto html = render_report(records, title);
  if (!html) return html.status();
  return write_page(*html, html_out);
}

core::Status write_report(const fs::path& metrics_jsonl, const fs::path& html_out,
                          const std::string& title) {
  auto metrics = read_metrics(metrics_jsonl);
  if (!metrics) return metrics.status();
  auto html = render_report(metrics->records, title, metrics->notes);
  if (!html) return html.status().with_context(metrics_jsonl.string());
  return write_page(*html, html_out);
}

}  // namespace gossip::sim
