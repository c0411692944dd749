// The simulation report on real files: a churn run (8 peers, 2 killed, 2
// started) gives the accuracy, consensus, exchanges and members charts with
// one line per peer (broken where a peer had no value), the averaged model,
// every event on every time chart and the final summary; an averaging-only
// run adds the theory curve and the chart against exchanges; a regression run
// plots loss; a corrupt line is an error naming it, a torn last line is
// skipped with a note; thousands of samples are thinned.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gossip/sim/report.hpp"
#include "temp_dir.hpp"
#include "unit/sim_report_fixture.hpp"

namespace fs = std::filesystem;
using namespace gossip;
using sim_report_fixture::make_records;
using sim_report_fixture::Options;
using sim_report_fixture::write_jsonl;

namespace {

using gossip::test::TempDir;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos;
       pos = text.find(what, pos + what.size()))
    ++n;
  return n;
}

// The <svg ...> ... </svg> element with this id ("" if absent).
std::string chart(const std::string& html, const std::string& id) {
  const size_t at = html.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  const size_t begin = html.rfind("<svg", at);
  const size_t end = html.find("</svg>", at);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  return html.substr(begin, end + 6 - begin);
}

// The data-peer values of the peer polylines in `svg`, with multiplicity.
std::multiset<int> peer_lines(const std::string& svg) {
  std::multiset<int> out;
  const std::string tag = "<polyline class=\"series peer\" data-peer=\"";
  for (size_t pos = svg.find(tag); pos != std::string::npos; pos = svg.find(tag, pos + 1)) {
    out.insert(std::atoi(svg.c_str() + pos + tag.size()));
  }
  return out;
}

std::string report_of(const Options& o, const TempDir& dir) {
  const fs::path metrics = dir.path() / "metrics.jsonl";
  write_jsonl(metrics, make_records(o));
  const fs::path html = dir.path() / "report.html";
  const core::Status st = sim::write_report(metrics, html, "sim-test run");
  REQUIRE_MESSAGE(st.is_ok(), st.to_string());
  return read_text(html);
}

}  // namespace

TEST_CASE("churn run: charts, one line per peer, averaged model, events, summary") {
  TempDir dir("gossip-report");
  const std::string html = report_of(Options{}, dir);

  for (const char* id : {"chart-accuracy", "chart-consensus", "chart-exchanges", "chart-members"}) {
    const std::string svg = chart(html, id);
    INFO(id);
    REQUIRE(!svg.empty());
    CHECK(svg.find("class=\"chart\"") != std::string::npos);
    // Every time chart marks both events, with their details.
    CHECK(count(svg, "<g class=\"event\" data-event=\"kill\">") == 1);
    CHECK(count(svg, "<g class=\"event\" data-event=\"start\">") == 1);
    CHECK(svg.find("<title>kill at 20 s (step 3000): peers 1, 2</title>") != std::string::npos);
    CHECK(svg.find("<title>start at 40 s (step 6000): peers 8, 9</title>") != std::string::npos);
  }
  CHECK(chart(html, "chart-consensus-exchanges").empty());
  CHECK(html.find("series theory") == std::string::npos);

  const std::string acc = chart(html, "chart-accuracy");
  CHECK(acc.find("Test accuracy over time") != std::string::npos);
  const auto lines = peer_lines(acc);
  CHECK(std::set<int>(lines.begin(), lines.end()) == std::set<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(lines.count(1) == 1);  // killed: its line just ends
  CHECK(lines.count(5) == 2);  // no value in one sample: the line breaks there
  CHECK(lines.count(8) == 1);
  CHECK(count(acc, "<polyline class=\"series averaged\"") == 1);
  CHECK(acc.find("stroke-width=\"3\"") != std::string::npos);  // averaged line is the thick one

  // The second half again, zoomed: 30..60 s, where the peers sit at 86-89%.
  const std::string late = chart(html, "chart-accuracy-late");
  REQUIRE(!late.empty());
  CHECK(late.find("second half of the run") != std::string::npos);
  CHECK(count(late, "<g class=\"event\" data-event=\"start\">") == 1);  // at 40 s
  CHECK(count(late, "<g class=\"event\" data-event=\"kill\">") == 0);   // at 20 s: before the span
  CHECK(count(late, "<polyline class=\"series averaged\"") == 1);
  const auto late_lines = peer_lines(late);
  CHECK(std::set<int>(late_lines.begin(), late_lines.end()) ==
        std::set<int>{0, 3, 4, 5, 6, 7, 8, 9});
  CHECK(late.find(">0.2<") == std::string::npos);  // no tick down at the early values
  CHECK(late.find(">10<") ==
        std::string::npos);  // nor a time axis from 0 with the first half empty
  CHECK(late.find(">40<") != std::string::npos);
  CHECK(acc.find(">0.4<") != std::string::npos);

  const std::string cons = chart(html, "chart-consensus");
  CHECK(count(cons, "<polyline class=\"series consensus\"") == 1);
  CHECK(cons.find(">1e-") != std::string::npos);  // decade ticks of the log axis
  const std::string ex = chart(html, "chart-exchanges");
  for (const char* cls :
       {"series exchanges-ok", "series exchanges-busy", "series exchanges-failed"}) {
    CHECK(count(ex, std::string("<polyline class=\"") + cls + "\"") == 1);
  }

  // Header and final summary.
  CHECK(html.find("<title>sim-test run</title>") != std::string::npos);
  CHECK(html.find("mode <b>train</b>") != std::string::npos);
  CHECK(html.find("<h2>Final summary</h2>") != std::string::npos);
  CHECK(html.find(
            "<tr data-key=\"bytes_total\"><th>bytes_total</th><td class=\"num\">987654321</td>") !=
        std::string::npos);
  CHECK(html.find("<tr data-key=\"averaged_model_accuracy\"><th>averaged_model_accuracy</th><td "
                  "class=\"num\">0.8812 (88.1%)</td>") != std::string::npos);
  CHECK(html.find("0.85: 24, 0.88: n/a") != std::string::npos);         // time_to_accuracy_s
  CHECK(html.find("first_test_accuracy: 0.861") != std::string::npos);  // joiners
  CHECK(html.find("<table id=\"events\">") != std::string::npos);
  CHECK(html.find("<table id=\"peers\">") != std::string::npos);

  // Self-contained: no external resource, the one script inline.
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("<script src") == std::string::npos);
  CHECK(count(html, "<script>") == 1);
  CHECK(html.size() < 200000);
}

TEST_CASE("no final record: the summary is the last sample's") {
  TempDir dir("gossip-report");
  auto records = make_records();
  records.pop_back();
  const fs::path html = dir.path() / "out" / "report.html";  // the folder is created
  REQUIRE(sim::write_report(records, html, "no final").is_ok());
  const std::string text = read_text(html);
  CHECK(text.find("the run wrote no final record") != std::string::npos);
  CHECK(
      text.find("<tr data-key=\"exchanges_ok\"><th>exchanges_ok</th><td class=\"num\">1200</td>") !=
      std::string::npos);
  CHECK(!fs::exists(dir.path() / "out" / "report.html.tmp"));
}

TEST_CASE("average_only run: theory curve and consensus against exchanges") {
  TempDir dir("gossip-report");
  Options o;
  o.average_only = true;
  o.peers = 32;
  const std::string html = report_of(o, dir);
  CHECK(html.find("mode <b>average_only</b>") != std::string::npos);
  const std::string cons = chart(html, "chart-consensus");
  CHECK(count(cons, "<polyline class=\"series consensus\"") == 1);
  CHECK(count(cons, "<polyline class=\"series theory\"") == 1);
  const std::string vs = chart(html, "chart-consensus-exchanges");
  REQUIRE(!vs.empty());
  CHECK(vs.find("completed pairwise exchanges") != std::string::npos);
  CHECK(vs.find("factor 0.9677 per exchange") != std::string::npos);
  CHECK(count(vs, "<polyline class=\"series consensus\"") == 1);
  CHECK(count(vs, "<polyline class=\"series theory\"") == 1);
  CHECK(vs.find("class=\"event\"") == std::string::npos);  // not a time axis
  // No accuracy in averaging-only runs: said instead of an empty chart.
  CHECK(chart(html, "chart-accuracy").empty());
  CHECK(html.find("id=\"chart-accuracy-missing\"") != std::string::npos);
  CHECK(html.find("measured_factor") != std::string::npos);
}

TEST_CASE("regression run: test loss plotted instead of accuracy") {
  TempDir dir("gossip-report");
  Options o;
  o.regression = true;
  o.peers = 4;
  const std::string html = report_of(o, dir);
  const std::string acc = chart(html, "chart-accuracy");
  REQUIRE(!acc.empty());
  CHECK(acc.find("Test loss over time (regression task") != std::string::npos);
  const auto lines = peer_lines(acc);
  CHECK(std::set<int>(lines.begin(), lines.end()) == std::set<int>{0, 1, 2, 3, 4, 5});
  CHECK(count(acc, "<polyline class=\"series averaged\"") == 1);
}

TEST_CASE("a corrupt line is an error naming it; a torn last line is skipped with a note") {
  TempDir dir("gossip-report");
  const fs::path metrics = dir.path() / "metrics.jsonl";
  const fs::path html = dir.path() / "report.html";
  auto records = make_records();
  write_jsonl(metrics, records);
  std::string text = read_text(metrics);
  // Damage line 5 (keep its newline).
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) pos = text.find('\n', pos) + 1;
  text.insert(pos, "{\"type\":\"sample\",\"t_s\":");
  std::ofstream(metrics, std::ios::binary | std::ios::trunc) << text;
  core::Status st = sim::write_report(metrics, html, "x");
  REQUIRE(!st.is_ok());
  CHECK(st.code() == core::Code::kCorrupt);
  CHECK(st.message().find("metrics.jsonl: line 5: not valid JSON") != std::string::npos);
  CHECK(!fs::exists(html));

  SUBCASE("a record that is not an object, or has no type") {
    write_jsonl(metrics, {records[0], nlohmann::json::array({1, 2})});
    st = sim::write_report(metrics, html, "x");
    CHECK(st.message().find("line 2: expected a JSON object, got array") != std::string::npos);
    write_jsonl(metrics, {records[0], {{"t_s", 1}}});
    st = sim::write_report(metrics, html, "x");
    CHECK(st.message().find("line 2: record without a string \"type\"") != std::string::npos);
    write_jsonl(metrics, {records[0], {{"type", "sample"}, {"t_s", "soon"}}});
    st = sim::write_report(metrics, html, "x");
    CHECK(st.message().find("line 2: \"sample\" record without a numeric \"t_s\"") !=
          std::string::npos);
  }
  SUBCASE("torn last line") {
    records.pop_back();  // the crash came before the final record
    write_jsonl(metrics, records, "{\"type\":\"sample\",\"t_s\":62.0,\"step_max\":93");
    st = sim::write_report(metrics, html, "torn");
    REQUIRE_MESSAGE(st.is_ok(), st.to_string());
    const std::string page = read_text(html);
    const std::string line = std::to_string(records.size() + 1);
    CHECK(page.find("line " + line +
                    " is incomplete (the run stopped while writing it) and was skipped.") !=
          std::string::npos);
    CHECK(!chart(page, "chart-accuracy").empty());
  }
}

TEST_CASE("missing file, no samples") {
  TempDir dir("gossip-report");
  core::Status st = sim::write_report(dir.path() / "nope.jsonl", dir.path() / "r.html", "x");
  CHECK(st.code() == core::Code::kNotFound);
  CHECK(st.message().find("nope.jsonl: no such file") != std::string::npos);

  const fs::path metrics = dir.path() / "metrics.jsonl";
  write_jsonl(metrics, {make_records().front()});
  st = sim::write_report(metrics, dir.path() / "r.html", "x");
  CHECK(st.code() == core::Code::kInvalidArgument);
  CHECK(st.message().find("metrics.jsonl: no \"sample\" records") != std::string::npos);

  write_jsonl(metrics, {});
  CHECK(!sim::write_report(metrics, dir.path() / "r.html", "x").is_ok());
}

TEST_CASE("consensus of exactly 0 sits at the bottom of the log axis") {
  auto records = make_records();
  for (auto& r : records) {
    if (r["type"] == "sample" && r["t_s"].get<double>() >= 50) r["consensus_distance"] = 0.0;
  }
  auto html = sim::render_report(records, "zeros");
  REQUIRE(html.is_ok());
  CHECK(html->find("6 consensus distance value(s) of 0 are drawn at the bottom of the log axis") !=
        std::string::npos);
  for (const char* bad : {",nan", "nan,", ",inf", "inf,", ",-inf", ">nan<", ">inf<", "1e-300"}) {
    CHECK_MESSAGE(html->find(bad) == std::string::npos, bad);
  }
}

TEST_CASE("long runs are thinned to about 2000 points per series") {
  Options o;
  o.peers = 3;
  o.samples = 5000;
  auto records = make_records(o);
  auto html = sim::render_report(records, "long");
  REQUIRE(html.is_ok());
  const std::string acc = chart(*html, "chart-accuracy");
  const size_t at = acc.find("<polyline class=\"series averaged\"");
  REQUIRE(at != std::string::npos);
  const size_t begin = acc.find("points=\"", at) + 8;
  const std::string points = acc.substr(begin, acc.find('"', begin) - begin);
  const size_t n = count(points, ",");
  CHECK(n >= 1600);
  CHECK(n <= 2001);
  CHECK(html->find("Charts show one sample in 3 of the 5000 (and the last one)") !=
        std::string::npos);
  CHECK(html->size() < 1500000);
}
