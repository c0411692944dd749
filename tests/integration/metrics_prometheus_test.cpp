// /metrics of live gossip-peer processes, checked by Debian's Prometheus:
// two peers train a small regression task and average with each other;
// promtool accepts what each serves, and a real Prometheus server on a free
// loopback port, scraping both every second, answers a query through its
// HTTP API with both instances' gossip_train_steps_total. Everything started
// here is killed at the end, also when a check fails. Without the prometheus
// package's binaries the test cases skip (exit 77) saying so.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "peer_process.hpp"
#include "preconditions.hpp"

using namespace gossip::test;

namespace {

constexpr const char* kPromtool = "/usr/bin/promtool";
constexpr const char* kPrometheus = "/usr/bin/prometheus";

bool have_binaries() {
  if (fs::exists(kPromtool) && fs::exists(kPrometheus)) return true;
  skip(std::string(kPromtool) + " or " + kPrometheus +
       " is missing: install Debian's prometheus package (tools/bootstrap does this)");
  return false;
}

// The first value of a sample line `name{labels} value` in an exposition.
double sample_value(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// Two peers (the second joins the first), each serving /metrics on a port
// the kernel chose, read from its log line.
struct Swarm {
  fs::path dir = temp_dir("metrics", "prometheus");
  Proc peers[2];
  int metrics_port[2] = {0, 0};
  Reaper reaper;

  Swarm() {
    const std::string keygen = build_root() + "/tools/gossip-keygen";
    shell(keygen + " swarm --out " + (dir / "swarm.key").string() + " >/dev/null");
    int listen_port = 0;
    for (int i = 0; i < 2; ++i) {
      const std::string tag = "peer" + std::to_string(i);
      shell(keygen + " identity --out " + (dir / (tag + ".key")).string() + " >/dev/null");
      auto config_for = [&, i, tag](int port) {
        if (i == 0) listen_port = port;
        Json peer = {{"listen", "127.0.0.1:" + std::to_string(port)},
                     {"identity_key", (dir / (tag + ".key")).string()},
                     {"swarm_key", (dir / "swarm.key").string()},
                     {"data_dir", (dir / tag).string()}};
        if (i == 1) peer["bootstrap"] = {"127.0.0.1:" + std::to_string(listen_port)};
        const fs::path p = dir / (tag + ".json");
        std::ofstream(p) << Json{
            {"peer", peer},
            {"model", {{"layers", {10, 20, 1}}, {"activation", "tanh"}, {"loss", "mse"}}},
            {"optimizer", {{"type", "sgd"}, {"lr", 0.05}}},
            {"data",
             {{"dataset", {{"type", "synthetic_regression"}}},
              {"shard", {{"num_shards", 2}, {"index", i}}},
              {"batch", 32}}},
            {"training", {{"device", "cpu"}}},
            {"gossip", {{"interval_steps", 50}}},
            {"membership", {{"probe_interval_ms", 300}, {"probe_timeout_ms", 150}}},
            {"checkpoint", {{"every_steps", 0}}},
            {"metrics", {{"http", "127.0.0.1:0"}, {"progress_every_s", 0}}}};
        return p;
      };
      peers[i] = start_listening(config_for, dir, tag);
      reaper.procs.push_back(&peers[i]);
      const std::regex served("serving Prometheus metrics on http://127\\.0\\.0\\.1:([0-9]+)/");
      wait_for(
          {&peers[i]},
          [&] {
            std::smatch m;
            const std::string err = read_text(peers[i].err);
            if (!std::regex_search(err, m, served)) return false;
            metrics_port[i] = std::stoi(m[1]);
            return true;
          },
          tag + "'s metrics address", 30);
    }
    // Both trained and averaged at least once.
    wait_for(
        {&peers[0], &peers[1]},
        [&] {
          for (int port : metrics_port) {
            const std::string body = http_body(http_get(port, "/metrics"));
            if (sample_value(body, "gossip_exchanges_total{result=\"ok\"}") < 1) return false;
          }
          return true;
        },
        "an exchange on both peers", 60);
  }
};

Swarm& swarm() {
  static Swarm s;
  return s;
}

}  // namespace

TEST_CASE("promtool check metrics accepts what a live peer serves") {
  if (!have_binaries()) return;
  Swarm& s = swarm();
  for (int i = 0; i < 2; ++i) {
    const std::string response = http_get(s.metrics_port[i], "/metrics");
    REQUIRE(http_status_line(response) == "HTTP/1.1 200 OK");
    const std::string body = http_body(response);
    const fs::path file = s.dir / ("scrape" + std::to_string(i) + ".txt");
    std::ofstream(file) << body;
    // promtool prints nothing and exits 0 when the exposition parses and
    // passes its lint (naming, units, HELP on every family).
    const std::string out =
        shell(std::string(kPromtool) + " check metrics < " + file.string() + " 2>&1");
    CHECK_MESSAGE(out.empty(), "promtool: " << out);
    CHECK(sample_value(body, "gossip_train_steps_total") > 0);
    CHECK(sample_value(body, "gossip_members{state=\"alive\"}") == 2);
    CHECK(sample_value(body, "gossip_exchange_duration_seconds_count") >= 1);
    CHECK(body.find("gossip_build_info{version=\"") != std::string::npos);
    CHECK(body.find("wire=\"fp32\"} 1\n") != std::string::npos);
  }
}

TEST_CASE("a real Prometheus scrapes both peers and answers a query for them") {
  if (!have_binaries()) return;
  Swarm& s = swarm();
  const fs::path config = s.dir / "prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                        << "scrape_configs:\n  - job_name: gossip\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << s.metrics_port[0]
                        << "', '127.0.0.1:" << s.metrics_port[1] << "']\n";
  Proc prom;
  Reaper reaper;
  int port = 0;
  for (int attempt = 0; attempt < 3 && prom.pid < 0; ++attempt) {
    port = free_port();
    prom = {-1, s.dir / "prometheus.out", s.dir / "prometheus.err"};
    const std::string cmd = std::string(kPrometheus) + " --config.file=" + config.string() +
                            " --storage.tsdb.path=" + (s.dir / "tsdb").string() +
                            " --web.listen-address=127.0.0.1:" + std::to_string(port) +
                            " --log.level=warn";
    prom.pid = ::fork();
    REQUIRE(prom.pid >= 0);
    if (prom.pid == 0) {
      ::execl("/bin/sh", "sh", "-c",
              ("exec " + cmd + " >" + prom.out.string() + " 2>" + prom.err.string()).c_str(),
              nullptr);
      ::_exit(98);
    }
    reaper.procs.push_back(&prom);
    wait_for(
        {}, [&] { return exited(prom) || !http_get(port, "/-/ready").empty(); },
        "prometheus to listen", 30);
    if (exited(prom)) prom.pid = -1;  // the port was taken meanwhile: try another
  }
  REQUIRE_MESSAGE(prom.pid > 0, "prometheus did not start: " << read_text(prom.err));

  // Both targets scraped, their step counters readable through the query API.
  Json result;
  wait_for(
      {&prom, &s.peers[0], &s.peers[1]},
      [&] {
        const std::string body =
            http_body(http_get(port, "/api/v1/query?query=gossip_train_steps_total"));
        if (body.empty()) return false;
        const Json j = Json::parse(body, nullptr, false);
        if (j.is_discarded() || j.value("status", "") != "success") return false;
        result = j["data"]["result"];
        return result.size() == 2;
      },
      "both peers' gossip_train_steps_total in Prometheus", 30);
  std::vector<std::string> instances;
  for (const Json& series : result) {
    instances.push_back(series["metric"]["instance"].get<std::string>());
    CHECK(series["metric"]["job"] == "gossip");
    CHECK(std::stod(series["value"][1].get<std::string>()) > 0);
  }
  std::sort(instances.begin(), instances.end());
  std::vector<std::string> expected = {"127.0.0.1:" + std::to_string(s.metrics_port[0]),
                                       "127.0.0.1:" + std::to_string(s.metrics_port[1])};
  std::sort(expected.begin(), expected.end());
  CHECK(instances == expected);
  // And the scrapes themselves were healthy.
  const Json up = Json::parse(http_body(http_get(port, "/api/v1/query?query=up")));
  REQUIRE(up["data"]["result"].size() == 2);
  for (const Json& series : up["data"]["result"]) CHECK(series["value"][1] == "1");
}

TEST_CASE("gossip-sim serves one /metrics for all its peers, labelled by peer") {
  if (!have_binaries()) return;
  const fs::path dir = temp_dir("metrics", "sim");
  Json config = Json::parse(
      read_text(fs::path(std::getenv("GOSSIP_SOURCE_ROOT")) / "configs/sim-regression.json"),
      nullptr, true, /*ignore_comments=*/true);
  config["sim"]["peers"] = 3;
  config["sim"]["metrics_http"] = "127.0.0.1:0";
  config["training"]["epochs"] = 100000;  // runs until the test stops it
  config["training"]["device"] = "cpu";
  const fs::path cfg = dir / "sim.json";
  std::ofstream(cfg) << config;
  Proc sim{-1, dir / "sim.out", dir / "sim.err"};
  Reaper reaper;
  const std::string cmd = build_root() + "/tools/gossip-sim --config " + cfg.string() + " --out " +
                          (dir / "out").string();
  sim.pid = ::fork();
  REQUIRE(sim.pid >= 0);
  if (sim.pid == 0) {
    ::setenv("GOSSIP_LOG", "info", 1);
    ::execl("/bin/sh", "sh", "-c",
            ("exec " + cmd + " >" + sim.out.string() + " 2>" + sim.err.string()).c_str(), nullptr);
    ::_exit(98);
  }
  reaper.procs.push_back(&sim);
  int port = 0;
  const std::regex served("Prometheus metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics");
  wait_for(
      {&sim},
      [&] {
        std::smatch m;
        const std::string err = read_text(sim.err);
        if (!std::regex_search(err, m, served)) return false;
        port = std::stoi(m[1]);
        return true;
      },
      "gossip-sim's metrics address", 30);
  std::string body;
  wait_for(
      {&sim},
      [&] {
        body = http_body(http_get(port, "/metrics"));
        for (int i = 0; i < 3; ++i) {
          const std::string peer = "peer=\"" + std::to_string(i) + "\"";
          if (sample_value(body, "gossip_train_steps_total{" + peer + "}") <= 0) return false;
          // Membership converges after training starts: wait until every
          // peer's view holds the three of them.
          if (sample_value(body, "gossip_members{" + peer + ",state=\"alive\"}") != 3) {
            return false;
          }
        }
        return true;
      },
      "every simulated peer's steps, and all three alive in every view, in /metrics", 60);
  // Each family once, with every peer's samples: what promtool checks.
  const fs::path file = dir / "scrape.txt";
  std::ofstream(file) << body;
  const std::string out =
      shell(std::string(kPromtool) + " check metrics < " + file.string() + " 2>&1");
  CHECK_MESSAGE(out.empty(), "promtool: " << out);
  CHECK(sample_value(body, "gossip_members{peer=\"2\",state=\"alive\"}") == 3);
  size_t help_lines = 0;
  for (size_t at = body.find("# HELP gossip_train_steps_total"); at != std::string::npos;
       at = body.find("# HELP gossip_train_steps_total", at + 1)) {
    ++help_lines;
  }
  CHECK(help_lines == 1);
}
