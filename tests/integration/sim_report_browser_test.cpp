// The simulation report in a real browser: writes a churn report, an
// averaging-only report and a language model's report, loads each in headless
// Chromium (--dump-dom) and checks the rendered DOM: the page's inline script
// ran and found every chart with a non-empty bounding box (body
// data-charts-ok == data-charts-total, which only a browser can set), the
// chart ids, the lead chart right after the header, one event marker per
// event on every chart, one peer line per peer, the averaged and theory
// lines, the summary rows with the run's numbers and one peer table row per
// peer. Exits 77 (skipped) when neither chromium nor chromium-browser is on
// PATH (tools/bootstrap installs Debian's chromium).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gossip/sim/report.hpp"
#include "temp_dir.hpp"
#include "unit/sim_report_fixture.hpp"

namespace fs = std::filesystem;
using namespace gossip;

namespace {

constexpr auto kBrowserTimeout = std::chrono::seconds(60);

using gossip::test::TempDir;

std::optional<fs::path> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

// The browser binary, or exit 77 (Meson's "skipped").
fs::path browser_or_skip() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    if (auto p = find_on_path(name)) return *p;
  }
  std::fprintf(stderr,
               "neither chromium nor chromium-browser is on PATH: skipping the browser test "
               "(tools/bootstrap installs Debian's chromium)\n");
  std::exit(77);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs headless Chromium on `html` and returns the serialized DOM after load.
// The browser runs in its own process group, killed whole on timeout.
std::string dump_dom(const fs::path& browser, const fs::path& html, const fs::path& work) {
  const fs::path out = work / "dom.html";
  const fs::path err = work / "chromium.log";
  const std::string profile = "--user-data-dir=" + (work / "profile").string();
  const std::string url = "file://" + fs::absolute(html).string();
  std::vector<std::string> args = {browser.string(),
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--disable-extensions",
                                   "--disable-dev-shm-usage",
                                   profile,
                                   "--dump-dom",
                                   url};
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    const int fd_out = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fd_err = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd_out < 0 || fd_err < 0) ::_exit(126);
    ::dup2(fd_out, 1);
    ::dup2(fd_err, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  const auto deadline = std::chrono::steady_clock::now() + kBrowserTimeout;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("chromium did not finish within 60 s; its log:\n" << read_text(err));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(-pid, SIGKILL);  // helpers it may have left behind
  const std::string dom = read_text(out);
  INFO("chromium log:\n" << read_text(err));
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(dom.find("</html>") != std::string::npos);
  return dom;
}

std::map<std::string, std::string> attributes(const std::string& tag) {
  static const std::regex attr(R"re(([a-zA-Z-]+)="([^"]*)")re");
  std::map<std::string, std::string> out;
  for (auto it = std::sregex_iterator(tag.begin(), tag.end(), attr); it != std::sregex_iterator();
       ++it) {
    out[(*it)[1]] = (*it)[2];
  }
  return out;
}

// The opening tags `<name ...>` in `dom`, as attribute maps.
std::vector<std::map<std::string, std::string>> tags(const std::string& dom,
                                                     const std::string& name) {
  std::vector<std::map<std::string, std::string>> out;
  const std::string open = "<" + name + " ";
  for (size_t pos = dom.find(open); pos != std::string::npos; pos = dom.find(open, pos + 1)) {
    out.push_back(attributes(dom.substr(pos, dom.find('>', pos) - pos)));
  }
  return out;
}

struct Rendered {
  std::string dom;
  std::map<std::string, std::map<std::string, std::string>> charts;  // id -> svg attributes
  std::map<std::string, std::string> body;
};

Rendered render_in_browser(const sim_report_fixture::Options& o, const TempDir& dir) {
  const fs::path browser = browser_or_skip();
  const fs::path metrics = dir.path() / "metrics.jsonl";
  const fs::path html = dir.path() / "report.html";
  sim_report_fixture::write_jsonl(metrics, sim_report_fixture::make_records(o));
  const core::Status st = sim::write_report(metrics, html, "browser test");
  REQUIRE_MESSAGE(st.is_ok(), st.to_string());
  // The static page cannot carry the script's verdict: only a browser sets it.
  const std::string page = read_text(html);
  REQUIRE(page.find("data-charts-ok=\"") == std::string::npos);

  const auto t0 = std::chrono::steady_clock::now();
  Rendered r;
  r.dom = dump_dom(browser, html, dir.path());
  MESSAGE("chromium rendered the report in "
          << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s");
  for (auto& svg : tags(r.dom, "svg")) r.charts[svg["id"]] = svg;
  auto bodies = tags(r.dom, "body");
  REQUIRE(bodies.size() == 1);
  r.body = bodies[0];
  return r;
}

// The serialized <svg ...>...</svg> with this id, or "".
std::string svg_of(const std::string& dom, const std::string& id) {
  const size_t at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  const size_t begin = dom.rfind("<svg", at);
  return dom.substr(begin, dom.find("</svg>", at) + 6 - begin);
}

// The first element after the page's header: its opening tag.
std::string after_header(const std::string& dom) {
  const size_t at = dom.find("</header>");
  if (at == std::string::npos) return "";
  const size_t open = dom.find('<', at + 9);
  return dom.substr(open, dom.find('>', open) + 1 - open);
}

// The event markers on every chart, by kind: {chart id: {kind: count}}.
std::map<std::string, std::map<std::string, int>> markers(const Rendered& r) {
  std::map<std::string, std::map<std::string, int>> out;
  for (const auto& [id, attrs] : r.charts) {
    auto& kinds = out[id];
    for (const auto& g : tags(svg_of(r.dom, id), "g")) {
      if (g.count("class") && g.at("class") == "event") ++kinds[g.at("data-event")];
    }
  }
  return out;
}

// The value cell of the summary row with this data-key ("" if absent).
std::string summary_value(const std::string& dom, const std::string& key) {
  const size_t at = dom.find("<tr data-key=\"" + key + "\"");
  if (at == std::string::npos) return "";
  const size_t td = dom.find("<td class=\"num\">", at);
  if (td == std::string::npos || td > dom.find("</tr>", at)) return "";
  return dom.substr(td + 16, dom.find("</td>", td) - td - 16);
}

// Rows in the body of table#peers.
int peer_rows(const std::string& dom) {
  const size_t at = dom.find("<table id=\"peers\">");
  if (at == std::string::npos) return 0;
  const size_t body = dom.find("<tbody>", at), end = dom.find("</tbody>", at);
  int n = 0;
  for (size_t tr = dom.find("<tr", body); tr < end; tr = dom.find("<tr", tr + 1)) ++n;
  return n;
}

void check_rendered(const Rendered& r, const std::set<std::string>& ids) {
  std::set<std::string> found;
  for (const auto& [id, attrs] : r.charts) found.insert(id);
  CHECK(found == ids);
  const std::string n = std::to_string(ids.size());
  CHECK(r.body.count("data-charts-total"));
  CHECK(r.body.count("data-charts-ok"));
  if (r.body.count("data-charts-ok")) {
    CHECK(r.body.at("data-charts-total") == n);
    CHECK(r.body.at("data-charts-ok") == n);
  }
  for (const auto& [id, attrs] : r.charts) {
    INFO(id);
    CHECK(attrs.count("data-ok"));
    REQUIRE(attrs.count("data-bbox"));
    int w = 0, h = 0;
    REQUIRE(std::sscanf(attrs.at("data-bbox").c_str(), "%dx%d", &w, &h) == 2);
    CHECK(w > 400);  // the drawing spans the chart, axes and legend included
    CHECK(h > 200);
  }
}

}  // namespace

TEST_CASE("churn report renders in Chromium: charts first, every event on every chart, tables") {
  TempDir dir("gossip-browser");
  const Rendered r = render_in_browser({}, dir);
  check_rendered(r, {"chart-accuracy", "chart-accuracy-late", "chart-bytes", "chart-consensus",
                     "chart-exchanges", "chart-members"});
  CHECK(after_header(r.dom).rfind("<svg class=\"chart\" id=\"chart-accuracy\"", 0) == 0);
  std::set<std::string> peers;
  int averaged = 0;
  for (const auto& p : tags(r.dom, "polyline")) {
    auto cls = p.find("class");
    if (cls == p.end()) continue;
    if (cls->second == "series peer") peers.insert(p.at("data-peer"));
    if (cls->second == "series averaged") ++averaged;
  }
  CHECK(peers == std::set<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  CHECK(averaged == 3);  // the accuracy chart, its zoomed copy, against bytes
  for (const auto& [id, kinds] : markers(r)) {
    INFO(id);
    if (id == "chart-bytes") continue;  // a bytes axis: no time markers
    CHECK(kinds == std::map<std::string, int>{{"kill", 1}, {"start", 1}});
  }
  // The summary holds the run's numbers (the fixture's final record).
  CHECK(summary_value(r.dom, "averaged_accuracy") == "88.12%");
  CHECK(summary_value(r.dom, "time_to_0.85") == "24.0 s");
  CHECK(summary_value(r.dom, "bytes") == "987.7 MB");
  CHECK(summary_value(r.dom, "exchanges") == "1,200");
  CHECK(summary_value(r.dom, "alive") == "8");
  CHECK(peer_rows(r.dom) == 10);  // 8 at the start, 2 started
}

TEST_CASE("averaging-only report renders in Chromium with the theory curve") {
  TempDir dir("gossip-browser");
  sim_report_fixture::Options o;
  o.average_only = true;
  o.peers = 32;
  const Rendered r = render_in_browser(o, dir);
  check_rendered(
      r, {"chart-consensus", "chart-consensus-exchanges", "chart-exchanges", "chart-members"});
  CHECK(after_header(r.dom).rfind("<svg class=\"chart\" id=\"chart-consensus\"", 0) == 0);
  int theory = 0;
  for (const auto& p : tags(r.dom, "polyline")) {
    if (p.count("class") && p.at("class") == "series theory") ++theory;
  }
  CHECK(theory == 2);
  for (const auto& [id, kinds] : markers(r)) {
    INFO(id);
    if (id == "chart-bytes") continue;  // a bytes axis: no time markers
    CHECK(kinds == std::map<std::string, int>{{"heal", 1}, {"partition", 1}});
  }
  CHECK(summary_value(r.dom, "measured_factor") == "0.9668");
  CHECK(peer_rows(r.dom) == 32);
}

TEST_CASE("language model report renders in Chromium: bits per byte first, the text") {
  TempDir dir("gossip-browser");
  sim_report_fixture::Options o;
  o.language_model = true;
  const Rendered r = render_in_browser(o, dir);
  check_rendered(r, {"chart-bits-per-byte", "chart-bits-per-byte-late", "chart-bytes",
                     "chart-accuracy", "chart-consensus", "chart-exchanges", "chart-members"});
  CHECK(after_header(r.dom).rfind("<svg class=\"chart\" id=\"chart-bits-per-byte\"", 0) == 0);
  for (const auto& [id, kinds] : markers(r)) {
    INFO(id);
    if (id == "chart-bytes") continue;  // a bytes axis: no time markers
    CHECK(kinds == std::map<std::string, int>{{"kill", 1}, {"start", 1}});
  }
  CHECK(summary_value(r.dom, "averaged_bits_per_byte") == "0.4762");
  CHECK(summary_value(r.dom, "averaged_loss") == "0.3301 nats/byte");
  // The text keeps its leading newline (the parser drops one right after <pre>).
  const size_t pre = r.dom.find("<pre class=\"sample\" id=\"text-last\">");
  REQUIRE(pre != std::string::npos);
  const size_t text = r.dom.find('>', pre) + 1;
  CHECK(r.dom.substr(text, r.dom.find("</pre>", text) - text) ==
        "\nThe end &lt;is&gt; near &amp; \"clear\"");
  CHECK(peer_rows(r.dom) == 10);
}
