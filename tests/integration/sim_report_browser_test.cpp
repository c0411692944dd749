// The simulation report in a real browser: writes a churn report and an
// averaging-only report, loads each in headless Chromium (--dump-dom) and
// checks the rendered DOM: the page's inline script ran and found every chart
// with a non-empty bounding box (body data-charts-ok == data-charts-total,
// which only a browser can set), the chart ids, one peer line per peer, the
// averaged and theory lines and the event markers. Exits 77 (skipped) when
// neither chromium nor chromium-browser is on PATH (tools/bootstrap installs
// Debian's chromium).
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

TEST_CASE("churn report renders in Chromium with every chart, peer line and event") {
  TempDir dir("gossip-browser");
  const Rendered r = render_in_browser({}, dir);
  check_rendered(r, {"chart-accuracy", "chart-accuracy-late", "chart-consensus", "chart-exchanges",
                     "chart-members"});
  std::set<std::string> peers;
  int averaged = 0;
  for (const auto& p : tags(r.dom, "polyline")) {
    auto cls = p.find("class");
    if (cls == p.end()) continue;
    if (cls->second == "series peer") peers.insert(p.at("data-peer"));
    if (cls->second == "series averaged") ++averaged;
  }
  CHECK(peers == std::set<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  CHECK(averaged == 2);  // the accuracy chart and its zoomed second half
  std::map<std::string, int> by_kind;
  for (const auto& g : tags(r.dom, "g")) {
    if (g.count("class") && g.at("class") == "event") ++by_kind[g.at("data-event")];
  }
  CHECK(by_kind["kill"] == 4);   // on each of the four full time charts
  CHECK(by_kind["start"] == 5);  // and on the zoomed second half (kill falls before it)
  CHECK(r.dom.find("<table id=\"summary\">") != std::string::npos);
}

TEST_CASE("averaging-only report renders in Chromium with the theory curve") {
  TempDir dir("gossip-browser");
  sim_report_fixture::Options o;
  o.average_only = true;
  o.peers = 32;
  const Rendered r = render_in_browser(o, dir);
  check_rendered(
      r, {"chart-consensus", "chart-consensus-exchanges", "chart-exchanges", "chart-members"});
  int theory = 0;
  for (const auto& p : tags(r.dom, "polyline")) {
    if (p.count("class") && p.at("class") == "series theory") ++theory;
  }
  CHECK(theory == 2);
}
