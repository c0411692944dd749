// The report's HTML page: a header naming the run (mode, peers, model, task),
// the notes of the reader, the final summary table, the charts, the event
// list and the peers at the last sample, styled inline. The closing inline
// script measures every chart with getBBox() and records the result on
// <body> (data-charts-ok / data-charts-total), so a headless browser can
// prove that the page really rendered.
#include "report_page.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "report_svg.hpp"

namespace gossip::sim {
namespace {

using nlohmann::json;

constexpr const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
     margin:24px auto;max-width:1000px;padding:0 16px;color:#222}
h1{font-size:22px;margin-bottom:4px}
h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
p.config{color:#555;margin-top:0}
ul#notes{background:#fff8e1;border:1px solid #f0d890;padding:8px 8px 8px 28px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{display:block;width:100%;max-width:980px;height:auto;margin:8px 0 22px;font-size:12px}
svg .grid{stroke:#ececec}svg .frame{fill:none;stroke:#999}svg .tick{fill:#555;font-size:11px}
svg .axis-label{fill:#333}svg .chart-title{font-weight:600;font-size:14px;fill:#222}
svg .series.peer{stroke-opacity:.75}svg .series{stroke-linejoin:round;stroke-linecap:round}
svg .event line{stroke:#c0392b;stroke-width:1.2;stroke-dasharray:4 3}
svg .event text{fill:#c0392b;font-size:11px}
svg .legend text{fill:#333}p.no-data{color:#888;font-style:italic}
pre.sample{background:#f7f7f7;border:1px solid #ddd;padding:8px;white-space:pre-wrap;font-size:13px}
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

bool is_accuracy(const std::string& key, const json& v) {
  return key.find("accuracy") != std::string::npos && v.is_number() && v.get<double>() >= 0 &&
         v.get<double>() <= 1;
}

std::string cell(const json& v) {
  return std::string(v.is_number() ? "<td class=\"num\">" : "<td>") + value_text(v) + "</td>";
}

// The headline figures first (in this order), then the rest alphabetically.
constexpr const char* kSummaryOrder[] = {"mode",
                                         "peers",
                                         "alive",
                                         "wall_s",
                                         "averaged_model_accuracy",
                                         "mean_test_accuracy",
                                         "min_test_accuracy",
                                         "averaged_model_loss",
                                         "mean_test_loss",
                                         "consensus_distance",
                                         "exchange_pairs",
                                         "measured_factor",
                                         "theory_factor",
                                         "time_to_accuracy_s",
                                         "exchanges_ok",
                                         "exchanges_busy",
                                         "exchanges_failed",
                                         "bytes_total",
                                         "joiners"};

std::string summary_row(const std::string& key, const json& v) {
  std::string value = value_text(v);
  if (is_accuracy(key, v)) {
    value += " (" + svg::format_number(std::round(v.get<double>() * 1000) / 10, 4) + "%)";
  }
  return "<tr data-key=\"" + svg::escape(key) + "\"><th>" + svg::escape(key) + "</th><td" +
         (v.is_number() ? " class=\"num\"" : "") + ">" + value + "</td></tr>\n";
}

std::string summary_table(const json& record) {
  auto skip = [](const std::string& key, const json& v) {
    return key == "type" || key == "text_sample" || (key == "peers" && v.is_array());
  };
  std::string o = "<table id=\"summary\">\n";
  for (const char* key : kSummaryOrder) {
    auto it = record.find(key);
    if (it != record.end() && !skip(key, *it)) o += summary_row(key, *it);
  }
  for (auto it = record.begin(); it != record.end(); ++it) {
    const bool listed =
        std::find_if(std::begin(kSummaryOrder), std::end(kSummaryOrder),
                     [&](const char* k) { return it.key() == k; }) != std::end(kSummaryOrder);
    if (!listed && !skip(it.key(), *it)) o += summary_row(it.key(), *it);
  }
  return o + "</table>\n";
}

std::string config_line(const PageInput& in) {
  std::string o;
  auto add = [&o](const std::string& s) { o += (o.empty() ? "" : " &middot; ") + s; };
  if (in.start) {
    const json& s = *in.start;
    if (s.contains("mode")) add("mode <b>" + value_text(s["mode"]) + "</b>");
    if (s.contains("peers")) add(value_text(s["peers"]) + " peers at the start");
    if (s.contains("model")) add("model " + value_text(s["model"]));
    if (s.contains("param_count")) add(value_text(s["param_count"]) + " parameters");
    if (s.contains("task")) add("task " + value_text(s["task"]));
    if (s.contains("theory_factor"))
      add("theory factor " + value_text(s["theory_factor"]) + " per exchange");
  } else {
    add("no start record");
  }
  if (in.last_sample->contains("t_s"))
    add("last sample at t = " + value_text((*in.last_sample)["t_s"]) + " s");
  add(std::to_string(in.events.size()) + " event(s)");
  return "<p class=\"config\" id=\"config\">" + o + "</p>\n";
}

std::string events_table(const PageInput& in) {
  if (in.events.empty()) return "<p id=\"events-none\">No scripted events.</p>\n";
  std::string o =
      "<table id=\"events\"><tr><th>t (s)</th><th>event</th><th>detail</th><th>step "
      "(max)</th></tr>\n";
  for (const json* e : in.events) {
    auto get = [e](const char* k) { return e->contains(k) ? (*e)[k] : json(); };
    o += "<tr>" + cell(get("t_s")) + cell(get("event")) + cell(get("detail")) +
         cell(get("step_max")) + "</tr>\n";
  }
  return o + "</table>\n";
}

std::string peers_table(const PageInput& in) {
  const json& s = *in.last_sample;
  if (!s.contains("peers") || !s["peers"].is_array() || s["peers"].empty()) return "";
  const char* cols[] = {"index",     "alive",      "step",         "test_accuracy",
                        "test_loss", "train_loss", "exchanges_ok", "members"};
  std::string o = "<h2>Peers at the last sample (t = " + value_text(s.value("t_s", json())) +
                  " s)</h2>\n<table id=\"peers\"><tr>";
  for (const char* c : cols) o += std::string("<th>") + c + "</th>";
  o += "</tr>\n";
  for (const auto& p : s["peers"]) {
    if (!p.is_object()) continue;
    o += "<tr>";
    for (const char* c : cols) o += cell(p.contains(c) ? p[c] : json());
    o += "</tr>\n";
  }
  return o + "</table>\n";
}

// A language model's text from the averaged model, at the first look and
// at the end (sampling.cpp writes "text_sample" into both records).
std::string text_samples(const PageInput& in) {
  const json* end = in.final ? in.final : in.last_sample;
  const auto& first = in.first_sample->value("text_sample", json());
  const auto& last = end->value("text_sample", json());
  if (!first.is_string() && !last.is_string()) return "";
  std::string o = "<h2>Text from the averaged model</h2>\n";
  if (first.is_string()) {
    o += "<p>At the first look (t = " + value_text(in.first_sample->value("t_s", json())) +
         " s):</p>\n<pre class=\"sample\" id=\"text-first\">" +
         svg::escape(first.get<std::string>()) + "</pre>\n";
  }
  if (last.is_string()) {
    o += "<p>At the end:</p>\n<pre class=\"sample\" id=\"text-last\">" +
         svg::escape(last.get<std::string>()) + "</pre>\n";
  }
  return o;
}

}  // namespace

std::string render_page(const PageInput& in) {
  const std::string title = svg::escape(in.title);
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      title + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<h1>" + title + "</h1>\n";
  o += config_line(in);
  if (!in.notes.empty()) {
    o += "<ul id=\"notes\">\n";
    for (const auto& n : in.notes) o += "<li>" + svg::escape(n) + "</li>\n";
    o += "</ul>\n";
  }
  if (in.final) {
    o += "<h2>Final summary</h2>\n" + summary_table(*in.final);
  } else {
    o += "<h2>Summary at the last sample (the run wrote no final record)</h2>\n" +
         summary_table(*in.last_sample);
  }
  o += text_samples(in);
  o += "<h2>Charts</h2>\n";
  for (const auto& c : in.charts) o += c;
  o += "<h2>Events</h2>\n" + events_table(in);
  o += peers_table(in);
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
