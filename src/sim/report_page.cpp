// The report's HTML page, in the order a reader wants it: a header naming the
// run in one line, the charts (the lead chart across the page, the others two
// to a row), then the summary (a short table of the figures people look for)
// and the peers (one row each), both built in report_tables.cpp, the averaged
// model's text for a language model, the events, the notes of the reader, and
// every figure of the final record folded away.
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
#include "report_tables.hpp"

namespace gossip::sim {
namespace {

using nlohmann::json;
using namespace page_format;

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
