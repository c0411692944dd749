// The simulation report on real files: a churn run (8 peers, 2 killed, 2
// started) gives the accuracy chart first, then the zoomed one, consensus,
// exchanges and members, with one line per peer (broken where a peer had no
// value), the averaged model and every event on every chart; then the short
// summary table and one table row per peer. An averaging-only run leads with
// the consensus and adds the theory curve and the chart against exchanges; a
// regression run plots loss; a language model leads with bits per byte and
// shows its text. A corrupt line is an error naming it, a torn last line is
// skipped with a note; thousands of samples are thinned.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

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

// Whether the element right after the page's header is this chart.
bool chart_follows_header(const std::string& html, const std::string& id) {
  const size_t at = html.find("</header>\n");
  const std::string svg = "<svg class=\"chart\" id=\"" + id + "\"";
  return at != std::string::npos && html.compare(at + 10, svg.size(), svg) == 0;
}

// The summary row with this data-key: {value cell, note cell} ("" if absent).
std::pair<std::string, std::string> summary_row(const std::string& html, const std::string& key) {
  const size_t at = html.find("<tr data-key=\"" + key + "\"");
  if (at == std::string::npos) return {};
  const std::string row = html.substr(at, html.find("</tr>", at) - at);
  const size_t v = row.find("<td class=\"num\">");
  const size_t n = row.find("<td class=\"note\">");
  if (v == std::string::npos || n == std::string::npos) return {};
  const size_t v0 = v + 16, n0 = n + 17;
  return {row.substr(v0, row.find("</td>", v0) - v0), row.substr(n0, row.find("</td>", n0) - n0)};
}

// The rows of table#peers' body, each as its cells' text.
std::vector<std::vector<std::string>> peer_table(const std::string& html) {
  std::vector<std::vector<std::string>> rows;
  const size_t at = html.find("<table id=\"peers\">");
  if (at == std::string::npos) return rows;
  const size_t body = html.find("<tbody>", at), end = html.find("</tbody>", at);
  for (size_t tr = html.find("<tr", body); tr < end; tr = html.find("<tr", tr + 1)) {
    std::vector<std::string> cells;
    const size_t tr_end = html.find("</tr>", tr);
    for (size_t td = html.find("<td", tr); td < tr_end; td = html.find("<td", td + 1)) {
      const size_t open = html.find('>', td) + 1;
      cells.push_back(html.substr(open, html.find("</td>", open) - open));
    }
    rows.push_back(cells);
  }
  return rows;
}

}  // namespace

TEST_CASE("churn run: charts first, every event on every chart, summary and peer tables") {
  TempDir dir("gossip-report");
  const std::string html = report_of(Options{}, dir);

  // The header, then the lead chart at once.
  CHECK(chart_follows_header(html, "chart-accuracy"));
  CHECK(html.find("<table") > html.rfind("</svg>"));  // every table after every chart

  for (const char* id : {"chart-accuracy", "chart-accuracy-late", "chart-consensus",
                         "chart-exchanges", "chart-members"}) {
    const std::string svg = chart(html, id);
    INFO(id);
    REQUIRE(!svg.empty());
    CHECK(svg.find("class=\"chart\"") != std::string::npos);
    // Every chart marks both events, with their details and a short label.
    CHECK(count(svg, "<g class=\"event\" data-event=\"kill\">") == 1);
    CHECK(count(svg, "<g class=\"event\" data-event=\"start\">") == 1);
    CHECK(svg.find("<title>kill at 20 s (step 3000): peers 1, 2</title>") != std::string::npos);
    CHECK(svg.find("<title>start at 40 s (step 6000): peers 8, 9</title>") != std::string::npos);
    CHECK(svg.find(">kill 1, 2</text>") != std::string::npos);
    // The lines are clipped to the plot; the time axes end together.
    CHECK(svg.find("clip-path=\"url(#clip-" + std::string(id) + ")\"") != std::string::npos);
    CHECK(svg.find(">60</text>") != std::string::npos);
  }
  CHECK(chart(html, "chart-consensus-exchanges").empty());
  CHECK(html.find("series theory") == std::string::npos);

  const std::string acc = chart(html, "chart-accuracy");
  CHECK(acc.find("Test accuracy over time") != std::string::npos);
  CHECK(acc.find("viewBox=\"0 0 1160.0 ") != std::string::npos);  // the lead spans the page
  CHECK(chart(html, "chart-members").find("viewBox=\"0 0 570.0 ") != std::string::npos);
  const auto lines = peer_lines(acc);
  CHECK(std::set<int>(lines.begin(), lines.end()) == std::set<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(lines.count(1) == 1);  // killed: its line just ends
  CHECK(lines.count(5) == 2);  // no value in one sample: the line breaks there
  CHECK(lines.count(8) == 1);
  CHECK(count(acc, "<polyline class=\"series averaged\"") == 1);
  CHECK(acc.find("stroke-width=\"3\"") != std::string::npos);  // averaged line is the thick one

  // The same lines, the y axis zoomed on the second half (86-89%); the time
  // axis is the full run's, the early points clipped.
  const std::string late = chart(html, "chart-accuracy-late");
  REQUIRE(!late.empty());
  CHECK(late.find("zoomed on the second half of the run") != std::string::npos);
  CHECK(count(late, "<polyline class=\"series averaged\"") == 1);
  CHECK(peer_lines(late) == lines);
  CHECK(late.find(">0.2<") == std::string::npos);  // no tick down at the early values
  CHECK(late.find(">0.88<") != std::string::npos);
  CHECK(acc.find(">0.4<") != std::string::npos);

  const std::string cons = chart(html, "chart-consensus");
  CHECK(count(cons, "<polyline class=\"series consensus\"") == 1);
  CHECK(cons.find(">1e-") != std::string::npos);  // decade ticks of the log axis
  const std::string ex = chart(html, "chart-exchanges");
  for (const char* cls :
       {"series exchanges-ok", "series exchanges-busy", "series exchanges-failed"}) {
    CHECK(count(ex, std::string("<polyline class=\"") + cls + "\"") == 1);
  }

  // Header, then the summary: the figures people look for, from the final record.
  CHECK(html.find("<title>sim-test run</title>") != std::string::npos);
  CHECK(html.find("<b>train</b> &middot; classification") != std::string::npos);
  CHECK(html.find("<h2>Summary</h2>") != std::string::npos);
  CHECK(summary_row(html, "averaged_accuracy").first == "88.12%");
  CHECK(summary_row(html, "averaged_accuracy").second == "test loss 0.3301");
  // The worst peer is named: peers 0 and 5 share the lowest accuracy.
  const double worst = sim_report_fixture::peer_accuracy(0, 60);
  char worst_text[16];
  std::snprintf(worst_text, sizeof worst_text, "%.2f%%", 100 * worst);
  CHECK(summary_row(html, "worst_peer_accuracy").first == worst_text);
  CHECK(summary_row(html, "worst_peer_accuracy").second == "peer 0; mean of the peers 87.65%");
  CHECK(summary_row(html, "time_to_0.85").first == "24.0 s");
  CHECK(summary_row(html, "time_to_0.88").first.find("not reached") != std::string::npos);
  CHECK(summary_row(html, "bytes").first == "987.7 MB");
  CHECK(summary_row(html, "bytes").second == "987,654,321 B sent + received, all peers");
  CHECK(summary_row(html, "exchanges").first == "1,200");
  CHECK(summary_row(html, "exchanges").second.find("busy 61, failed 7") != std::string::npos);
  CHECK(summary_row(html, "alive").first == "8");
  CHECK(summary_row(html, "alive").second == "of 10 started; 2 killed");
  CHECK(summary_row(html, "wall").first == "61.2 s");
  CHECK(summary_row(html, "consensus_distance").first == "0.0003210");
  CHECK(count(html.substr(html.find("<table id=\"summary\">"),
                          html.find("</table>", html.find("<table id=\"summary\">")) -
                              html.find("<table id=\"summary\">")),
              "<tr ") == 9);                        // short: no raw fields
  CHECK(summary_row(html, "error").first.empty());  // nothing went wrong: no warning rows

  // One row per peer, numbers in right-aligned cells; the dead greyed out,
  // the worst marked, the joiners' first evaluation next to the swarm's.
  const auto peers = peer_table(html);
  REQUIRE(peers.size() == 10);
  CHECK(html.find("<th class=\"num\">test acc.</th>") != std::string::npos);
  CHECK(peers[0][0] == "0");
  CHECK(peers[0][1] == "finished (worst)");
  CHECK(peers[0][2] == "9,000");  // step
  CHECK(peers[0][3] == worst_text);
  CHECK(peers[1][1] == "killed");
  CHECK(peers[1][2] == "&ndash;");
  CHECK(peers[8].back() == "86.10% (swarm 87.20%)");
  CHECK(html.find("<tr class=\"gone\"><td class=\"num\">1</td>") != std::string::npos);
  CHECK(html.find("<tr class=\"worst\"><td class=\"num\">0</td>") != std::string::npos);
  const size_t peers_at = html.find("<table id=\"peers\">");
  const std::string peer_html = html.substr(peers_at, html.find("</table>", peers_at) - peers_at);
  CHECK(peer_html.find('{') == std::string::npos);          // no JSON text
  CHECK(count(peer_html, "<td class=\"num\">") == 10 * 8);  // peer, 6 figures, joining
  CHECK(html.find("<table id=\"events\">") != std::string::npos);
  CHECK(html.find("<td class=\"num\">20.0 s</td><td>kill</td><td>peers 1, 2</td>") !=
        std::string::npos);
  // Every figure of the final record is still there, folded away.
  CHECK(html.find("<details id=\"all-figures\">") != std::string::npos);
  CHECK(html.find("<tr data-key=\"bytes_total\"><th>bytes_total</th><td "
                  "class=\"num\">987654321</td>") != std::string::npos);

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
  CHECK(summary_row(text, "exchanges").first == "1,200");
  CHECK(summary_row(text, "wall").first == "60.0 s");
  CHECK(text.find("Peers at the last sample (t = 60.0 s)") != std::string::npos);
  CHECK(peer_table(text).size() == 10);
  CHECK(!fs::exists(dir.path() / "out" / "report.html.tmp"));
}

TEST_CASE("average_only run: consensus first, theory curve, events against exchanges") {
  TempDir dir("gossip-report");
  Options o;
  o.average_only = true;
  o.peers = 32;
  const std::string html = report_of(o, dir);
  CHECK(html.find("<b>average_only</b>") != std::string::npos);
  // Nothing trains: no accuracy chart at all, the consensus leads.
  CHECK(chart(html, "chart-accuracy").empty());
  CHECK(html.find("chart-accuracy") == std::string::npos);
  CHECK(chart_follows_header(html, "chart-consensus"));
  const std::string cons = chart(html, "chart-consensus");
  CHECK(count(cons, "<polyline class=\"series consensus\"") == 1);
  CHECK(count(cons, "<polyline class=\"series theory\"") == 1);
  const std::string vs = chart(html, "chart-consensus-exchanges");
  REQUIRE(!vs.empty());
  CHECK(vs.find("completed pairwise exchanges") != std::string::npos);
  CHECK(vs.find("factor 0.9677 per exchange") != std::string::npos);
  CHECK(count(vs, "<polyline class=\"series consensus\"") == 1);
  CHECK(count(vs, "<polyline class=\"series theory\"") == 1);
  // The events sit where the swarm had done 200 and 400 pairwise exchanges:
  // x axis 0..600 over the plot's 64..552.
  CHECK(count(vs, "<g class=\"event\"") == 2);
  CHECK(vs.find("<g class=\"event\" data-event=\"partition\"><title>partition at 20 s: [0, 1] | "
                "[2, 3]</title><line x1=\"226.7\"") != std::string::npos);
  CHECK(vs.find("<g class=\"event\" data-event=\"heal\"><title>heal at 40 s: every link "
                "restored</title><line x1=\"389.3\"") != std::string::npos);
  for (const char* id : {"chart-consensus", "chart-exchanges", "chart-members"})
    CHECK(count(chart(html, id), "<g class=\"event\"") == 2);
  CHECK(summary_row(html, "measured_factor").first == "0.9668");
  CHECK(
      summary_row(html, "measured_factor").second.find("theory 1 &minus; 1/(n&minus;1) = 0.9677") !=
      std::string::npos);
  CHECK(summary_row(html, "averaged_accuracy").first.empty());
  // No peer has an accuracy or a loss: those columns are left out.
  CHECK(peer_table(html).size() == 32);
  CHECK(html.find(">test loss</th>") == std::string::npos);
  CHECK(html.find(">step</th>") == std::string::npos);  // nothing trains: always 0
  CHECK(html.find(">exchanges</th>") != std::string::npos);
  CHECK(vs.find("Consensus distance against exchanges</text>") != std::string::npos);
  CHECK(summary_row(html, "measured_factor").second.find("needs 0.97&times; the exchanges") !=
        std::string::npos);
}

TEST_CASE("regression run: test loss plotted instead of accuracy") {
  TempDir dir("gossip-report");
  Options o;
  o.regression = true;
  o.peers = 4;
  const std::string html = report_of(o, dir);
  const std::string acc = chart(html, "chart-accuracy");
  REQUIRE(!acc.empty());
  CHECK(acc.find("Test loss over time (a regression task has no accuracy)") != std::string::npos);
  const auto lines = peer_lines(acc);
  CHECK(std::set<int>(lines.begin(), lines.end()) == std::set<int>{0, 1, 2, 3, 4, 5});
  CHECK(count(acc, "<polyline class=\"series averaged\"") == 1);
  CHECK(summary_row(html, "averaged_loss").first == "0.3301");
  CHECK(summary_row(html, "averaged_loss").second.rfind("first look ", 0) == 0);
  CHECK(summary_row(html, "worst_peer_loss").second.rfind("peer 5; mean of the peers 0.3412", 0) ==
        0);
  CHECK(summary_row(html, "averaged_accuracy").first.empty());
  CHECK(summary_row(html, "time_to_0.85").first.empty());  // no accuracy target
  CHECK(html.find(">test acc.</th>") == std::string::npos);
}

TEST_CASE("language model: bits per byte first, loss in the summary, the text") {
  TempDir dir("gossip-report");
  Options o;
  o.language_model = true;
  const std::string html = report_of(o, dir);
  CHECK(chart_follows_header(html, "chart-bits-per-byte"));
  for (const char* id : {"chart-bits-per-byte", "chart-bits-per-byte-late", "chart-accuracy",
                         "chart-consensus", "chart-exchanges", "chart-members"}) {
    INFO(id);
    CHECK(count(chart(html, id), "<g class=\"event\"") == 2);
  }
  CHECK(chart(html, "chart-accuracy").find(">next-byte accuracy</text>") != std::string::npos);
  // 0.3301 nats = 0.4762 bits.
  CHECK(summary_row(html, "averaged_bits_per_byte").first == "0.4762");
  CHECK(summary_row(html, "averaged_loss").first == "0.3301 nats/byte");
  CHECK(summary_row(html, "averaged_loss").second == "next-byte accuracy 88.12%");
  CHECK(summary_row(html, "worst_peer_bits_per_byte").second.rfind("peer 9; ", 0) == 0);
  CHECK(summary_row(html, "time_to_0.85").first.empty());
  const auto peers = peer_table(html);
  REQUIRE(peers.size() == 10);
  CHECK(html.find("<th class=\"num\">bits/byte</th><th class=\"num\">test loss (nats)</th>") !=
        std::string::npos);
  CHECK(html.find("<pre class=\"sample\" id=\"text-last\">\n\nThe end &lt;is&gt; near &amp; "
                  "&quot;clear&quot;</pre>") != std::string::npos);
  CHECK(html.find("<pre class=\"sample\" id=\"text-first\">\n\nq#x&lt;b&gt;&amp;</pre>") !=
        std::string::npos);
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

TEST_CASE("ticks 2.5 apart are labelled with their decimal") {
  Options o;
  o.samples = 12;  // 24 s: the lead chart's time axis steps by 2.5 s
  auto html = sim::render_report(make_records(o), "ticks");
  REQUIRE(html.is_ok());
  const std::string acc = chart(*html, "chart-accuracy");
  for (const char* tick : {">2.5</text>", ">5.0</text>", ">7.5</text>", ">22.5</text>"})
    CHECK_MESSAGE(acc.find(tick) != std::string::npos, tick);
  CHECK(acc.find(">2</text>") == std::string::npos);  // not 2.5 rounded down
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
