// The report's HTML page, in the order a reader wants it: a header naming the
// run in one line, the charts (the lead chart across the page, the others two
// to a row), then side by side the summary (a short table of the figures
// people look for: the averaged model, the worst peer, time to target, bytes,
// exchanges, anything that went wrong) and the peers (one row each, numbers
// right-aligned), the averaged model's text for a language model, the events,
// the notes of the reader, and every figure of the final record folded away.
// The closing inline script measures every chart with getBBox() and records
// the result on <body> (data-charts-ok / data-charts-total), so a headless
// browser can prove that the page really rendered.
#include "report_page.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>

#include "report_svg.hpp"

namespace gossip::sim {
namespace {

using nlohmann::json;

constexpr const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
     margin:16px auto;max-width:1200px;padding:0 16px;color:#222}
header h1{font-size:20px;margin:0 0 2px}
header p.config{color:#555;margin:0 0 6px;font-size:14px}
h2{font-size:16px;margin:18px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
div.chart-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));
     column-gap:28px}
svg.chart{display:block;width:100%;height:auto;margin:4px 0 10px;font-size:12px}
svg .grid{stroke:#ececec}svg .frame{fill:none;stroke:#999}svg .tick{fill:#555;font-size:11px}
svg .axis-label{fill:#333}svg .chart-title{font-weight:600;font-size:14px;fill:#222}
svg .series.peer{stroke-opacity:.75}svg .series{stroke-linejoin:round;stroke-linecap:round}
svg .event line{stroke:#c0392b;stroke-width:1.2;stroke-dasharray:4 3}
svg .event text{fill:#c0392b;font-size:11px}
svg .legend text{fill:#333}p.no-data{color:#888;font-style:italic}
div.tables{display:flex;flex-wrap:wrap;gap:0 40px;align-items:flex-start}
div.tables>section{flex:0 1 auto;min-width:0;max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
td,th{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:left;vertical-align:top}
thead th{background:#f4f4f4;border-bottom:1px solid #ccc;white-space:nowrap}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table#summary th{font-weight:600;white-space:nowrap}
table#summary td.num{font-size:15px;font-weight:600}
td.note{color:#555}span.muted{color:#777;font-weight:normal;font-size:13px}
table#summary td,table#summary th{vertical-align:baseline}tr.warn th,tr.warn td{color:#b03020}
tr.gone td{color:#999}tr.worst td{background:#fff4e0}
pre.sample{background:#f7f7f7;border:1px solid #ddd;padding:8px;white-space:pre-wrap;
     font-size:13px;margin:4px 0}
div.samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:0 24px}
ul#notes{background:#fff8e1;border:1px solid #f0d890;padding:8px 8px 8px 28px;font-size:13px}
details{margin:18px 0;font-size:13px}details summary{cursor:pointer;color:#555}
)";

constexpr const char* kScript = R"(<script>
(function () {
  var charts = document.querySelectorAll('svg.chart'), ok = 0;
  for (var i = 0; i < charts.length; i++) {
    var svg = charts[i], box = svg.getBBox();
    var series = svg.querySelectorAll('.series').length;
    svg.setAttribute('data-bbox', Math.round(box.width) + 'x' + Math.round(box.height));
    if (box.width > 0 && box.height > 0 && series > 0) { ok++; svg.setAttribute('data-ok', '1'); }
  }
  document.body.setAttribute('data-charts-ok', String(ok));
  document.body.setAttribute('data-charts-total', String(charts.length));
})();
</script>
)";

const char* const kDash = "&ndash;";  // a value that is not there (dead peer, no data)

std::optional<double> num(const json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

std::string text(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string printf_string(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// 4068 -> "4,068".
std::string grouped(double v) {
  const std::string digits = printf_string("%.0f", std::abs(v));
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string percent(double fraction) {
  return printf_string("%.2f", 100 * fraction) + "%";
}

std::string seconds(double s) {
  return printf_string(s < 10 ? "%.2f" : s < 100 ? "%.1f" : "%.0f", s) + " s";
}

// Decimal units, as the progress line prints them.
std::string bytes(double b) {
  if (b >= 1e9) return printf_string("%.2f", b / 1e9) + " GB";
  if (b >= 1e6) return printf_string("%.1f", b / 1e6) + " MB";
  if (b >= 1e3) return printf_string("%.1f", b / 1e3) + " kB";
  return grouped(b) + " B";
}

// Four significant digits, trailing zeros kept so a column lines up
// ("0.3680" under "0.3665").
std::string sig(double v) {
  std::string s = printf_string("%#.4g", v);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// Raw values for the folded table of every figure.
std::string value_text(const json& v, bool nested = false) {
  if (v.is_null()) return "n/a";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number()) return svg::format_number(v.get<double>(), 6);
  if (v.is_string()) return svg::escape(v.get<std::string>());
  std::string out;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!out.empty()) out += ", ";
      out += svg::escape(it.key()) + ": " + value_text(*it, true);
    }
    return nested ? "{" + out + "}" : out;
  }
  for (const auto& item : v) {
    if (!out.empty()) out += nested ? ", " : "<br>";
    out += value_text(item, true);
  }
  return nested ? "[" + out + "]" : out;
}

// The record the summary reads: the final one, else the last sample.
const json& figures(const PageInput& in) {
  return in.final ? *in.final : *in.last_sample;
}

// Each peer's row: the final evaluations, else the peers at the last sample.
const json& peer_rows(const PageInput& in) {
  static const json kNone = json::array();
  if (in.final && in.final->contains("final_peers") && (*in.final)["final_peers"].is_array())
    return (*in.final)["final_peers"];
  const json& s = *in.last_sample;
  return s.contains("peers") && s["peers"].is_array() ? s["peers"] : kNone;
}

bool alive(const json& peer) {
  return !peer.contains("alive") || peer["alive"] == true;
}

bool uses_loss(Task t) {
  return t == Task::kRegression || t == Task::kLanguageModel;
}

// The live peer with the lowest accuracy (or the highest loss when the task
// is judged by its loss): its index in peer_rows, or none.
std::optional<size_t> worst_peer(const PageInput& in) {
  if (in.task == Task::kAverageOnly) return std::nullopt;
  const json& rows = peer_rows(in);
  const char* key = uses_loss(in.task) ? "test_loss" : "test_accuracy";
  std::optional<size_t> worst;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto v = num(rows[i], key);
    if (!v || !alive(rows[i])) continue;
    const double w = worst ? *num(rows[*worst], key) : 0;
    if (!worst || (uses_loss(in.task) ? *v > w : *v < w)) worst = i;
  }
  return worst;
}

std::string peer_name(const json& peer) {
  auto i = num(peer, "index");
  return i ? "peer " + grouped(*i) : "a peer";
}

// One row of the summary: a figure, its value (right-aligned when a number),
// and a note that puts it in context.
struct Row {
  std::string key;  // data-key
  std::string label;
  std::string value;
  std::string note;
  bool number = true;
  bool warn = false;
};

void add_model_rows(const PageInput& in, std::vector<Row>& rows) {
  const json& f = figures(in);
  const double ln2 = std::log(2.0);
  auto first_loss = num(*in.first_sample, "averaged_model_loss");
  const std::string first_look =
      first_loss
          ? "first look " + sig(in.task == Task::kLanguageModel ? *first_loss / ln2 : *first_loss)
          : "";
  const auto worst = worst_peer(in);
  const json* wp = worst ? &peer_rows(in)[*worst] : nullptr;
  switch (in.task) {
    case Task::kClassification: {
      if (auto acc = num(f, "averaged_model_accuracy")) {
        auto loss = num(f, "averaged_model_loss");
        rows.push_back({"averaged_accuracy", "Averaged model: test accuracy", percent(*acc),
                        loss ? "test loss " + sig(*loss) : ""});
      }
      auto mean = num(f, "mean_test_accuracy");
      const std::string mean_note = mean ? "mean of the peers " + percent(*mean) : "";
      if (wp) {
        rows.push_back({"worst_peer_accuracy", "Worst peer: test accuracy",
                        percent(*num(*wp, "test_accuracy")),
                        peer_name(*wp) + (mean ? "; " + mean_note : "")});
      } else if (auto lo = num(f, "min_test_accuracy")) {
        rows.push_back(
            {"worst_peer_accuracy", "Worst peer: test accuracy", percent(*lo), mean_note});
      }
      const json tta = f.value("time_to_accuracy_s", json());
      if (tta.is_object()) {
        for (auto it = tta.begin(); it != tta.end(); ++it) {
          double target = 0;
          if (std::sscanf(it.key().c_str(), "%lf", &target) != 1) continue;
          const bool reached = it->is_number();
          rows.push_back(
              {"time_to_" + it.key(), "Time to " + printf_string("%g", 100 * target) + "%",
               reached ? seconds(it->get<double>()) : "<span class=\"muted\">not reached</span>",
               "averaged model, first sample at or above"});
        }
      }
      break;
    }
    case Task::kLanguageModel: {
      if (auto loss = num(f, "averaged_model_loss")) {
        rows.push_back({"averaged_bits_per_byte", "Averaged model: bits per byte", sig(*loss / ln2),
                        first_look});
        auto acc = num(f, "averaged_model_accuracy");
        rows.push_back({"averaged_loss", "Averaged model: test loss", sig(*loss) + " nats/byte",
                        acc ? "next-byte accuracy " + percent(*acc) : ""});
      }
      if (wp) {
        const double loss = *num(*wp, "test_loss");
        rows.push_back({"worst_peer_bits_per_byte", "Worst peer: bits per byte", sig(loss / ln2),
                        peer_name(*wp) + "; " + sig(loss) + " nats/byte"});
      }
      break;
    }
    case Task::kRegression: {
      if (auto loss = num(f, "averaged_model_loss"))
        rows.push_back({"averaged_loss", "Averaged model: test loss", sig(*loss), first_look});
      auto mean = num(f, "mean_test_loss");
      if (wp) {
        rows.push_back({"worst_peer_loss", "Worst peer: test loss", sig(*num(*wp, "test_loss")),
                        peer_name(*wp) + (mean ? "; mean of the peers " + sig(*mean) : "")});
      }
      break;
    }
    case Task::kAverageOnly: {
      auto measured = num(f, "measured_factor");
      auto theory = num(f, "theory_factor");
      if (measured) {
        auto slower = num(f, "decay_vs_theory");
        std::string note = theory ? "theory 1 &minus; 1/(n&minus;1) = " + sig(*theory) : "";
        if (slower) note += "; decays " + printf_string("%.2f", *slower) + "&times; as slowly";
        rows.push_back({"measured_factor", "Consensus decay per exchange", sig(*measured), note});
      }
      break;
    }
  }
}

void add_swarm_rows(const PageInput& in, std::vector<Row>& rows) {
  const json& f = figures(in);
  if (auto d = num(f, "consensus_distance")) {
    rows.push_back({"consensus_distance", "Consensus distance at the end", sig(*d),
                    "mean &#8214;x<sub>i</sub> &minus; x&#772;&#8214;&sup2; / "
                    "&#8214;x&#772;&#8214;&sup2;"});
  }
  if (auto ok = num(f, "exchanges_ok")) {
    std::string note = "busy " + grouped(num(f, "exchanges_busy").value_or(0)) + ", failed " +
                       grouped(num(f, "exchanges_failed").value_or(0)) +
                       " (each side counts its own)";
    if (auto pairs = num(f, "exchange_pairs")) note += "; " + grouped(*pairs) + " pairwise";
    rows.push_back({"exchanges", "Exchanges completed", grouped(*ok), note});
  }
  if (auto b = num(f, "bytes_total")) {
    rows.push_back(
        {"bytes", "Bytes moved", bytes(*b), grouped(*b) + " B sent + received, all peers"});
  }
  if (auto a = num(f, "alive")) {
    std::map<std::string, int> states;
    for (const auto& p : peer_rows(in)) {
      if (!alive(p)) ++states[p.value("state", std::string("gone"))];
    }
    std::string note;
    if (auto started = num(f, "peers"); started && in.final) note = "of " + grouped(*started);
    for (const auto& [state, n] : states)
      note += (note.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    rows.push_back({"alive", "Peers alive at the end", grouped(*a), note});
  }
  if (auto wall = num(f, "wall_s")) {
    auto startup = num(f, "startup_s");
    rows.push_back({"wall", "Run time", seconds(*wall),
                    startup ? "after " + seconds(*startup) + " of start-up" : ""});
  } else if (auto t = num(f, "t_s")) {
    rows.push_back({"wall", "Last sample at", seconds(*t), "the run wrote no final record"});
  }
}

// What went wrong, first: a run error, failed peers, events that never
// happened, killed peers still in a view.
void add_problem_rows(const PageInput& in, std::vector<Row>& rows) {
  const json& f = figures(in);
  if (auto e = text(f, "error"); !e.empty())
    rows.push_back({"error", "Run failed", svg::escape(e), "", false, true});
  const json failed = f.value("failed_peers", json());
  if (failed.is_array() && !failed.empty()) {
    std::string v;
    for (const auto& p : failed)
      v += (v.empty() ? "" : "<br>") + peer_name(p) + ": " + svg::escape(text(p, "error"));
    rows.push_back({"failed_peers", "Failed peers", v, "", false, true});
  }
  const json not_fired = f.value("events_not_fired", json());
  if (not_fired.is_array() && !not_fired.empty()) {
    std::string v;
    for (const auto& e : not_fired) {
      v += (v.empty() ? "" : ", ") + svg::escape(text(e, "event"));
      if (auto s = num(e, "at_s")) v += " at " + seconds(*s);
      if (auto s = num(e, "at_step")) v += " at step " + grouped(*s);
    }
    rows.push_back(
        {"events_not_fired", "Events that never happened", v, "the run ended first", false, true});
  }
  if (auto k = num(f, "killed_still_in_views"); k && *k > 0) {
    rows.push_back({"killed_still_in_views", "Killed peers still in a view", grouped(*k),
                    "membership has not noticed yet", true, true});
  }
}

std::string summary_table(const PageInput& in) {
  std::vector<Row> rows;
  add_problem_rows(in, rows);
  add_model_rows(in, rows);
  add_swarm_rows(in, rows);
  std::string o = "<table id=\"summary\">\n";
  for (const auto& r : rows) {
    o += "<tr data-key=\"" + svg::escape(r.key) + "\"" + (r.warn ? " class=\"warn\"" : "") +
         "><th>" + r.label + "</th><td" + (r.number ? " class=\"num\"" : "") + ">" + r.value +
         "</td><td class=\"note\">" + r.note + "</td></tr>\n";
  }
  return o + "</table>\n";
}

// A column of the peer table: how to show one field of a peer's record.
struct Column {
  const char* key;
  const char* header;
  std::string (*format)(double);
};

std::string format_count(double v) {
  return grouped(v);
}
std::string format_ms(double v) {
  return printf_string(v < 10 ? "%.1f" : "%.0f", v);
}
std::string format_bits(double nats) {
  return sig(nats / std::log(2.0));
}

std::string peers_table(const PageInput& in) {
  const json& rows = peer_rows(in);
  if (rows.empty()) return "";
  std::vector<Column> columns = {{"step", "step", format_count}};
  if (in.task == Task::kClassification) columns.push_back({"test_accuracy", "test acc.", percent});
  if (in.task == Task::kLanguageModel) columns.push_back({"test_loss", "bits/byte", format_bits});
  columns.push_back(
      {"test_loss", in.task == Task::kLanguageModel ? "test loss (nats)" : "test loss", sig});
  columns.push_back({"train_loss", "train loss", sig});
  columns.push_back({"exchanges_ok", "exchanges", format_count});
  columns.push_back({"members", "view", format_count});
  columns.push_back({"exchange_ms", "exchange ms", format_ms});
  // A column no peer has a value for says nothing (averaging-only runs).
  std::erase_if(columns, [&](const Column& c) {
    return std::none_of(rows.begin(), rows.end(),
                        [&](const json& p) { return num(p, c.key).has_value(); });
  });
  // Joiners: their first evaluation on the state they downloaded.
  std::map<int, std::string> joined;
  const json joiners = in.final ? in.final->value("joiners", json()) : json();
  if (joiners.is_array()) {
    for (const auto& j : joiners) {
      auto index = num(j, "index");
      if (!index) continue;
      std::string v;
      if (auto acc = num(j, "first_test_accuracy")) {
        v = percent(*acc);
        if (auto swarm = num(j, "swarm_mean_accuracy")) v += " (swarm " + percent(*swarm) + ")";
      } else if (auto loss = num(j, "first_test_loss")) {
        v = "loss " + sig(*loss);
      }
      joined[static_cast<int>(*index)] = v;
    }
  }
  const auto worst = worst_peer(in);
  const bool final_rows = in.final && in.final->contains("final_peers");
  std::string o =
      "<section id=\"peers-section\">\n<h2>" +
      std::string(final_rows ? "Peers at the end (final evaluation, whole test set)"
                             : "Peers at the last sample (t = " +
                                   seconds(num(*in.last_sample, "t_s").value_or(0)) + ")") +
      "</h2>\n<table id=\"peers\">\n<thead><tr><th class=\"num\">peer</th><th>state</th>";
  for (const auto& c : columns) o += std::string("<th class=\"num\">") + c.header + "</th>";
  if (!joined.empty()) o += "<th class=\"num\">on joining</th>";
  o += "</tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& p = rows[i];
    std::string cls = !alive(p) ? "gone" : worst && *worst == i ? "worst" : "";
    auto index = num(p, "index");
    o += "<tr" + (cls.empty() ? "" : " class=\"" + cls + "\"") + "><td class=\"num\">" +
         (index ? grouped(*index) : kDash) + "</td><td>" + svg::escape(text(p, "state")) +
         (cls == "worst" ? " (worst)" : "") + "</td>";
    for (const auto& c : columns) {
      auto v = num(p, c.key);
      o += "<td class=\"num\">" + (v ? c.format(*v) : std::string(kDash)) + "</td>";
    }
    if (!joined.empty()) {
      auto it = index ? joined.find(static_cast<int>(*index)) : joined.end();
      o += "<td class=\"num\">" + (it != joined.end() ? it->second : std::string()) + "</td>";
    }
    o += "</tr>\n";
  }
  return o + "</tbody>\n</table>\n</section>\n";
}

std::string config_line(const PageInput& in) {
  std::string o;
  auto add = [&o](const std::string& s) { o += (o.empty() ? "" : " &middot; ") + s; };
  if (in.start) {
    const json& s = *in.start;
    if (auto m = text(s, "mode"); !m.empty()) add("<b>" + svg::escape(m) + "</b>");
    if (auto t = text(s, "task"); !t.empty()) add(svg::escape(t));
    if (auto p = num(s, "peers")) add(grouped(*p) + " peers at the start");
    std::string model = svg::escape(text(s, "model"));
    if (auto n = num(s, "param_count"))
      model += (model.empty() ? "" : ", ") + grouped(*n) + " parameters";
    if (!model.empty()) add("model " + model);
  } else {
    add("no start record");
  }
  if (auto t = num(*in.last_sample, "t_s")) add("last sample at " + seconds(*t));
  add(std::to_string(in.events.size()) + (in.events.size() == 1 ? " event" : " events"));
  return "<p class=\"config\" id=\"config\">" + o + "</p>\n";
}

std::string events_table(const PageInput& in) {
  if (in.events.empty()) return "<p id=\"events-none\">No scripted events.</p>\n";
  std::string o =
      "<table id=\"events\">\n<thead><tr><th class=\"num\">t</th><th>event</th><th>detail</th>"
      "<th class=\"num\">step (most advanced peer)</th></tr></thead>\n<tbody>\n";
  for (const json* e : in.events) {
    auto t = num(*e, "t_s");
    auto step = num(*e, "step_max");
    o += "<tr><td class=\"num\">" + (t ? seconds(*t) : kDash) + "</td><td>" +
         svg::escape(text(*e, "event")) + "</td><td>" + svg::escape(text(*e, "detail")) +
         "</td><td class=\"num\">" + (step ? grouped(*step) : kDash) + "</td></tr>\n";
  }
  return o + "</tbody>\n</table>\n";
}

// A language model's text from the averaged model, at the first look and
// at the end (sampling.cpp writes "text_sample" into both records).
std::string text_samples(const PageInput& in) {
  const json* end = in.final ? in.final : in.last_sample;
  const auto& first = in.first_sample->value("text_sample", json());
  const auto& last = end->value("text_sample", json());
  if (!first.is_string() && !last.is_string()) return "";
  std::string o = "<h2>Text from the averaged model</h2>\n<div class=\"samples\">\n";
  if (last.is_string()) {
    // The parser drops a newline right after <pre>: one more keeps the text's own.
    o += "<div><p>At the end:</p>\n<pre class=\"sample\" id=\"text-last\">\n" +
         svg::escape(last.get<std::string>()) + "</pre></div>\n";
  }
  if (first.is_string()) {
    o += "<div><p>At the first look (" + seconds(num(*in.first_sample, "t_s").value_or(0)) +
         "):</p>\n<pre class=\"sample\" id=\"text-first\">\n" +
         svg::escape(first.get<std::string>()) + "</pre></div>\n";
  }
  return o + "</div>\n";
}

// Every field of the final record (else the last sample), raw, for whoever
// needs a figure the summary leaves out. The peers have their own table.
std::string all_figures(const PageInput& in) {
  const json& f = figures(in);
  std::string o = "<details id=\"all-figures\"><summary>Every figure of the " +
                  std::string(in.final ? "final record (summary.json)" : "last sample") +
                  "</summary>\n<table id=\"figures\">\n";
  for (auto it = f.begin(); it != f.end(); ++it) {
    const std::string& key = it.key();
    if (key == "type" || key == "text_sample" || key == "final_peers" || key == "peers") continue;
    o += "<tr data-key=\"" + svg::escape(key) + "\"><th>" + svg::escape(key) + "</th><td" +
         (it->is_number() ? " class=\"num\"" : "") + ">" + value_text(*it) + "</td></tr>\n";
  }
  return o + "</table>\n</details>\n";
}

}  // namespace

std::string render_page(const PageInput& in) {
  const std::string title = svg::escape(in.title);
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      title + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<header><h1>" + title +
      "</h1>\n" + config_line(in) + "</header>\n";
  if (!in.charts.empty()) {
    o += in.charts.front();
    o += "<div class=\"chart-grid\">\n";
    for (size_t i = 1; i < in.charts.size(); ++i) o += in.charts[i];
    o += "</div>\n";
  }
  o += "<div class=\"tables\">\n<section id=\"summary-section\">\n<h2>" +
       std::string(in.final ? "Summary"
                            : "Summary at the last sample (the run wrote no final record)") +
       "</h2>\n" + summary_table(in) + "</section>\n" + peers_table(in) + "</div>\n";
  o += text_samples(in);
  o += "<h2>Events</h2>\n" + events_table(in);
  if (!in.notes.empty()) {
    o += "<h2>Notes</h2>\n<ul id=\"notes\">\n";
    for (const auto& n : in.notes) o += "<li>" + svg::escape(n) + "</li>\n";
    o += "</ul>\n";
  }
  o += all_figures(in);
  o += kScript;
  o += "</body>\n</html>\n";
  return o;
}

core::Status write_page(const std::string& html, const std::filesystem::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec)
      return core::io_error(path.parent_path().string() +
                            ": cannot create folder: " + ec.message());
  }
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return core::io_error(tmp.string() + ": cannot open for writing");
    out.write(html.data(), static_cast<std::streamsize>(html.size()));
    out.flush();
    if (!out) return core::io_error(tmp.string() + ": write failed (disk full?)");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return core::io_error(path.string() + ": cannot move the report into place");
  }
  return core::Status::ok();
}

}  // namespace gossip::sim
