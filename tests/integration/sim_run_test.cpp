// The simulator end to end, on the seed's small regression task so each run
// takes seconds: real peers over loopback TCP with real Noise and real
// membership, scripted churn and faults, the swarm-wide records and the
// summary; plus an averaging-only run checked against the theory.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/sim/simulation.hpp"
#include "peer_process.hpp"

namespace {

using gossip::test::Json;

// Bounds on the final consensus_distance, twice the largest measured (2
// cores). The basic run: 4.4e-4 to 2.6e-3 in 16 runs (2026-12-07, 246 to 470
// exchanges; the final figure depends on which peers trained alone after the
// others had finished), against 0.14 with no gossip and 2.8e-3 to 8.2e-3 with
// interval 8000 (~36 exchanges), which the test tells apart by its exchange
// count (kHealthyExchanges, 2.5x below the fewest measured). The faults run:
// 7.1e-4 to 2.4e-3 in 4 runs, 7.4e-4 to 2.7e-3 in 5 more (2026-12-07, quiet),
// and 4.85e-3 once in CI beside the other tests: its bound sits 3x below the
// 0.05 near which halves that never merged again end, rather than at twice the
// largest seen.
constexpr double kHealthyConsensus = 5.2e-3;
constexpr int64_t kHealthyExchanges = 100;
constexpr double kFaultsConsensus = 1.5e-2;
namespace fs = std::filesystem;

// The seed's regression task on `peers` peers with fast membership, plus
// `sim_extra` merged into the sim section.
gossip::config::Config regression_config(int peers, int64_t steps, const Json& sim_extra) {
  Json j = {
      {"model", {{"layers", {10, 20, 1}}, {"activation", "tanh"}, {"loss", "mse"}, {"seed", 1}}},
      {"optimizer", {{"type", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}}},
      {"data",
       {{"dataset", {{"type", "synthetic_regression"}, {"train_samples", 4096}}},
        {"shard", {{"type", "random"}}},
        {"batch", 32}}},
      {"training", {{"device", "cpu"}}},
      {"gossip", {{"interval_steps", 20}, {"exchange_timeout_ms", 3000}}},
      {"membership",
       {{"probe_interval_ms", 200}, {"probe_timeout_ms", 100}, {"sync_interval_ms", 1000}}},
      {"checkpoint", {{"every_steps", 0}, {"keep", 1}}},
      {"sim", {{"peers", peers}, {"sample_every_s", 0.5}, {"eval_rows", 0}}}};
  if (steps > 0) j["training"]["steps"] = steps;
  j["sim"].update(sim_extra);
  auto c = gossip::config::parse_config(j.dump(), fs::temp_directory_path());
  REQUIRE_MESSAGE(static_cast<bool>(c), c.status().message());
  return *c;
}

std::vector<Json> read_records(const fs::path& file) {
  std::vector<Json> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(Json::parse(line));
  }
  return out;
}

Json run(const gossip::config::Config& config, const std::string& name) {
  gossip::sim::SimOptions o;
  o.config = config;
  o.name = name;
  o.out = gossip::test::temp_dir("sim", name) / "out";
  o.progress = false;
  std::atomic<bool> stop{false};
  auto summary = gossip::sim::run_simulation(o, stop);
  REQUIRE_MESSAGE(static_cast<bool>(summary), summary.status().message());
  return *summary;
}

}  // namespace

TEST_CASE("a 4-peer swarm trains, converges and reports the truth about itself") {
  const Json s = run(regression_config(4, 40000, Json::object()), "basic");
  MESSAGE("exchanges_ok " << s["exchanges_ok"] << ", consensus_distance " << s["consensus_distance"]
                          << ", wall " << s["wall_s"]);
  CHECK(s["peers"] == 4);
  CHECK(s["alive"] == 4);
  CHECK(s["failed_peers"].empty());
  CHECK(s["mode"] == "train");
  CHECK(s["exchanges_ok"].get<int64_t>() > kHealthyExchanges);
  CHECK(s["bytes_total"].get<int64_t>() > 0);
  // Regression: no accuracy, but the averaged model has learned the teacher.
  CHECK(s["averaged_model_accuracy"].is_null());
  CHECK(s["consensus_distance"].get<double>() < kHealthyConsensus);

  const auto records = read_records(s["metrics"].get<std::string>());
  REQUIRE(records.size() >= 3);
  CHECK(records.front()["type"] == "start");
  CHECK(records.back()["type"] == "final");
  std::vector<Json> samples;
  for (const auto& r : records) {
    if (r["type"] == "sample") samples.push_back(r);
  }
  REQUIRE(samples.size() >= 2);
  double last_t = -1;
  for (const auto& r : samples) {
    CHECK(r["t_s"].get<double>() > last_t);
    last_t = r["t_s"].get<double>();
    CHECK(r["peers"].size() == 4);
  }
  // The averaged model's loss fell from the first look to the end.
  const auto& first = samples.front();
  REQUIRE(first["averaged_model_loss"].is_number());
  CHECK(s["averaged_model_loss"].get<double>() < 0.5 * first["averaged_model_loss"].get<double>());
  CHECK(fs::exists(s["report"].get<std::string>()));
  CHECK(fs::exists(fs::path(s["out"].get<std::string>()) / "summary.json"));
}

TEST_CASE("a diverging swarm: every peer stops and is listed as failed with the reason") {
  auto c = regression_config(3, 1000, Json::object());
  c.optimizer.lr = 1e30;  // the loss is non-finite within a few steps
  const auto t0 = std::chrono::steady_clock::now();
  const Json s = run(c, "diverged");
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("diverged run took " << took << " s");
  REQUIRE(s["failed_peers"].size() == 3);
  for (const auto& f : s["failed_peers"]) {
    CHECK(f["error"].get<std::string>().find("training diverged at step") != std::string::npos);
  }
  CHECK(took < 4);  // no final exchange (up to 5 s) of diverged parameters to wait for
}

TEST_CASE("events the run ended before are listed, not silently dropped") {
  // 400 steps end long before step 1,000,000.
  const Json events = Json::array({{{"at_step", 1000000}, {"kill", {1}}}});
  const Json s = run(regression_config(3, 400, {{"events", events}}), "not_fired");
  REQUIRE(s["events_not_fired"].size() == 1);
  CHECK(s["events_not_fired"][0]["index"] == 0);
  CHECK(s["events_not_fired"][0]["event"] == "kill");
  CHECK(s["events_not_fired"][0]["at_step"] == 1000000);
  CHECK(s["events_not_fired"][0]["at_s"].is_null());
  CHECK(s["failed_peers"].empty());
}

TEST_CASE("churn: killed peers vanish from every view and joiners start from the swarm's state") {
  // Time-based, so that failure detection (about 3 s with these settings)
  // has finished well before the last look whatever the machine's speed.
  const Json events =
      Json::array({{{"at_s", 1.0}, {"kill", {4, 5}}}, {{"at_s", 2.0}, {"start", 2}}});
  const Json s =
      run(regression_config(6, 100000000, {{"events", events}, {"duration_s", 8}}), "churn");
  CHECK(s["peers"] == 8);
  CHECK(s["alive"] == 6);
  CHECK(s["failed_peers"].empty());
  CHECK(s["killed_still_in_views"] == 0);
  REQUIRE(s["joiners"].size() == 2);
  for (const auto& j : s["joiners"]) {
    // Started from downloaded state: far better than a fresh initialisation
    // (whose loss is of the order of the targets' variance).
    CHECK(j["first_test_loss"].get<double>() < 0.2);
  }
  const auto records = read_records(s["metrics"].get<std::string>());
  std::vector<std::string> events_seen;
  for (const auto& r : records) {
    if (r["type"] == "event") events_seen.push_back(r["event"]);
  }
  CHECK(events_seen == std::vector<std::string>{"kill", "start"});
  Json last;
  for (const auto& r : records) {
    if (r["type"] == "sample") last = r;
  }
  REQUIRE(last["t_s"].get<double>() > 6.0);
  CHECK(last["killed_still_in_views"] == 0);
  CHECK(last["members_min"] == 6);
  for (const auto& p : last["peers"]) {
    if (p["index"] == 4 || p["index"] == 5) CHECK(p["alive"] == false);
  }
}

TEST_CASE("faults: each event shows while it is active and only then; the swarm heals") {
  constexpr double kLatencyMs = 30;
  // Peer 0 alone on one side of the slow link: every exchange it makes
  // crosses it.
  const Json events = Json::array(
      {{{"at_s", 1.0}, {"partition", {{0, 1}, {2, 3}}}},
       {{"at_s", 3.0}, {"heal", true}},
       {{"at_s", 3.5}, {"slow_link", {{"between", {{0}, {1, 2, 3}}}, {"latency_ms", kLatencyMs}}}},
       {{"at_s", 4.0}, {"drop", 0.5}},
       {{"at_s", 6.0}, {"drop", 0}}});
  // Time-based events: the run lasts 8 s whatever the speed of the machine.
  const Json s =
      run(regression_config(4, 100000000, {{"events", events}, {"duration_s", 8}}), "faults");
  CHECK(s["alive"] == 4);
  // Healed: the halves merged their views again and averaged back together.
  CHECK(s["members_min"] == 4);
  MESSAGE("faults run: consensus_distance " << s["consensus_distance"] << ", exchanges_ok "
                                            << s["exchanges_ok"]);
  CHECK(s["consensus_distance"].get<double>() < kFaultsConsensus);

  // When each event took effect (the second drop ends dropping).
  std::map<std::string, double> at;
  std::vector<Json> samples;
  for (const auto& r : read_records(s["metrics"].get<std::string>())) {
    if (r["type"] == "sample") samples.push_back(r);
    if (r["type"] != "event") continue;
    const std::string name = r["event"] == "drop" && at.count("drop") ? "undrop" : r["event"];
    at[name] = r["t_s"].get<double>();
  }
  REQUIRE(at.size() == 5);
  REQUIRE(samples.size() >= 10);  // one every 0.5 s for 8 s; fewer on a busy machine

  // Between two samples: what the counters did. A sample's replicas are
  // read between its t_s (asked) and its answered_s.
  int64_t refused_split = 0, failed_split = 0, dropped_dropping = 0, failed_dropping = 0;
  std::vector<double> slow_ms, fast_ms;
  for (size_t k = 1; k < samples.size(); ++k) {
    const Json &before = samples[k - 1], &now = samples[k];
    const double from = before["t_s"].get<double>(), to = now["answered_s"].get<double>();
    auto during = [&](const char* start, const char* end) {
      return from < at[end] && to > at[start];
    };
    auto delta = [&](const char* key) {
      return now[key].get<int64_t>() - before[key].get<int64_t>();
    };
    CAPTURE(from);
    CAPTURE(to);
    const bool split = during("partition", "heal"), dropping = during("drop", "undrop");
    if (split) {
      refused_split += delta("links_refused");
      failed_split += delta("exchanges_failed");
    } else {
      CHECK(delta("links_refused") == 0);
    }
    if (dropping) {
      dropped_dropping += delta("blobs_dropped");
      failed_dropping += delta("exchanges_failed");
    } else {
      CHECK(delta("blobs_dropped") == 0);
    }
    if (!split && !dropping) CHECK(delta("exchanges_failed") == 0);
    const Json& ms = now["peers"][0]["exchange_ms"];
    if (!ms.is_number()) continue;
    if (from >= at["slow_link"]) slow_ms.push_back(ms.get<double>());
    if (to <= at["slow_link"]) fast_ms.push_back(ms.get<double>());
  }
  // The partition cut links across the groups, and exchanges across them
  // failed; the drop cut blobs, and exchanges failed.
  CHECK(refused_split > 0);
  CHECK(failed_split > 0);
  CHECK(dropped_dropping > 0);
  CHECK(failed_dropping > 0);
  // An exchange is several one-way trips: over the slow link each takes
  // more than its latency (a lower bound a busy host cannot break), and the
  // link is what slowed them: peer 0's typical exchange is slower with it
  // than before it. How fast loopback is belongs in benchmarks, not here.
  REQUIRE(!slow_ms.empty());
  for (double ms : slow_ms) CHECK(ms > kLatencyMs);
  REQUIRE(!fast_ms.empty());
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  CHECK(median(slow_ms) > median(fast_ms));
}

TEST_CASE("slow_link all: every peer's links are slowed, also a peer started after the event") {
  // An exchange is several one-way trips: with every link delayed each takes
  // more than the latency, where loopback takes a few ms.
  constexpr double kSlowMs = 80;
  const Json events =
      Json::array({{{"at_s", 1.0}, {"slow_link", {{"all", true}, {"latency_ms", kSlowMs}}}},
                   {{"at_s", 2.0}, {"start", 1}}});
  const Json s =
      run(regression_config(3, 100000000, {{"events", events}, {"duration_s", 6}}), "all-slow");
  CHECK(s["alive"] == 4);
  double slowed_at = -1;
  std::vector<Json> samples;
  for (const auto& r : read_records(s["metrics"].get<std::string>())) {
    if (r["type"] == "sample") samples.push_back(r);
    if (r["type"] == "event" && r["event"] == "slow_link") slowed_at = r["t_s"].get<double>();
  }
  REQUIRE(slowed_at >= 1.0);
  // Per peer: the exchange times of the samples wholly before and wholly after
  // the cap (the joiner only exists after it).
  std::map<int, std::vector<double>> slow_ms;
  std::vector<double> fast_ms;
  for (size_t k = 1; k < samples.size(); ++k) {
    const double from = samples[k - 1]["t_s"].get<double>();
    const double to = samples[k]["answered_s"].get<double>();
    for (const auto& p : samples[k]["peers"]) {
      if (!p["exchange_ms"].is_number()) continue;
      const double ms = p["exchange_ms"].get<double>();
      if (from >= slowed_at) slow_ms[p["index"].get<int>()].push_back(ms);
      if (to <= slowed_at) fast_ms.push_back(ms);
    }
  }
  for (int peer = 0; peer < 4; ++peer) {
    CAPTURE(peer);
    REQUIRE(!slow_ms[peer].empty());
    for (double ms : slow_ms[peer]) CHECK(ms > kSlowMs);
  }
  REQUIRE(!fast_ms.empty());
  std::sort(fast_ms.begin(), fast_ms.end());
  CHECK(fast_ms[fast_ms.size() / 2] < kSlowMs);
}

TEST_CASE("averaging only: consensus decays at least as fast as random pairwise gossip") {
  auto c = regression_config(8, 0, {{"average_only", true}, {"duration_s", 6}});
  c.gossip.interval_steps = 0;
  c.gossip.interval_ms = 40;
  c.gossip.weight = gossip::averaging::WeightMode::kUniform;
  const Json s = run(c, "consensus");
  CHECK(s["mode"] == "average_only");
  CHECK(s["alive"] == 8);
  REQUIRE(s.contains("measured_factor"));
  const double theory = s["theory_factor"].get<double>();
  CHECK(theory == doctest::Approx(1.0 - 1.0 / 7.0));
  CHECK(s["decay_exchanges"].get<double>() >= 20);
  // The fitted decay is no slower than 1.1x the theory's (1 - 1/(n-1))^K.
  CHECK(s["decay_vs_theory"].get<double>() <= 1.1);
  const auto records = read_records(s["metrics"].get<std::string>());
  int with_theory = 0;
  for (const auto& r : records) with_theory += r.contains("theory_distance") ? 1 : 0;
  CHECK(with_theory >= 3);
}

TEST_CASE("gossip-sim and gossip-peer reject what is not theirs, naming it") {
  const auto dir = gossip::test::temp_dir("sim", "cli");
  auto write = [&](const std::string& name, const Json& j) {
    const auto p = dir / name;
    std::ofstream(p) << j.dump(2);
    return p;
  };
  auto run_cli = [&](const std::string& cmd) {
    const auto err = dir / "stderr.txt";
    const int rc = std::system((cmd + " >/dev/null 2>" + err.string()).c_str());
    return std::make_pair(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, gossip::test::read_text(err));
  };
  const std::string root = gossip::test::build_root();
  Json base = {{"model", {{"layers", {10, 20, 1}}, {"activation", "tanh"}, {"loss", "mse"}}},
               {"data", {{"dataset", {{"type", "synthetic_regression"}}}}},
               {"training", {{"steps", 100}}},
               {"sim", {{"peers", 4}}}};

  SUBCASE("a peer index out of range") {
    Json j = base;
    j["sim"]["events"] = Json::array({{{"at_s", 1}, {"kill", {7}}}});
    const auto [rc, err] =
        run_cli(root + "/tools/gossip-sim --config " + write("bad.json", j).string());
    CHECK(rc == 2);
    CHECK(err.find("sim.events[0] (kill): peer 7 does not exist") != std::string::npos);
  }
  SUBCASE("an unknown event") {
    Json j = base;
    j["sim"]["events"] = Json::array({{{"at_s", 1}, {"explode", true}}});
    const auto [rc, err] =
        run_cli(root + "/tools/gossip-sim --config " + write("bad.json", j).string());
    CHECK(rc == 2);
    CHECK(err.find("sim.events[0]") != std::string::npos);
    CHECK(err.find("explode") != std::string::npos);
  }
  SUBCASE("a time in the past") {
    Json j = base;
    j["sim"]["events"] = Json::array({{{"at_s", -2}, {"leave", {1}}}});
    const auto [rc, err] =
        run_cli(root + "/tools/gossip-sim --config " + write("bad.json", j).string());
    CHECK(rc == 2);
    CHECK(err.find("sim.events[0] (leave): at_s -2 is a time in the past") != std::string::npos);
  }
  SUBCASE("--peers that leaves a scripted peer out") {
    Json j = base;
    j["sim"]["events"] = Json::array({{{"at_s", 1}, {"kill", {3}}}});
    const auto [rc, err] =
        run_cli(root + "/tools/gossip-sim --peers 2 --config " + write("ok.json", j).string());
    CHECK(rc == 2);
    CHECK(err.find("peer 3 does not exist") != std::string::npos);
  }
  SUBCASE("an output folder that holds an earlier run") {
    fs::create_directories(dir / "used");
    std::ofstream(dir / "used" / "metrics.jsonl") << "{}\n";
    const auto [rc, err] = run_cli(root + "/tools/gossip-sim --out " + (dir / "used").string() +
                                   " --config " + write("ok.json", base).string());
    CHECK(rc == 2);
    CHECK(err.find("holds an earlier run") != std::string::npos);
  }
  // stdout and stderr of a command, apart.
  auto run_cli_both = [&](const std::string& cmd) {
    const auto out = dir / "stdout.txt", err = dir / "stderr.txt";
    const int rc = std::system((cmd + " >" + out.string() + " 2>" + err.string()).c_str());
    return std::make_tuple(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, gossip::test::read_text(out),
                           gossip::test::read_text(err));
  };
  SUBCASE("a config without a sim section: refused before the start line") {
    Json j = base;
    j.erase("sim");
    const auto cfg = write("peer.json", j);
    for (const std::string extra : {"", " --peers 3"}) {
      const auto [rc, out, err] =
          run_cli_both(root + "/tools/gossip-sim --out " + (dir / "nosim").string() + extra +
                       " --config " + cfg.string());
      INFO(err);
      CHECK(rc == 2);
      CHECK(err.find(cfg.string() + ": has no \"sim\" section") != std::string::npos);
      CHECK(err.find("gossip-peer --config") != std::string::npos);
      CHECK(out.empty());  // no "gossip-sim: N peers, ..., output in ..." line
      CHECK_FALSE(fs::exists(dir / "nosim"));
    }
  }
  SUBCASE("an --out that is unusable: refused before the start line") {
    std::ofstream(dir / "afile") << "x\n";
    fs::create_directories(dir / "used2");
    std::ofstream(dir / "used2" / "metrics.jsonl") << "{}\n";
    const auto cfg = write("ok.json", base);
    const auto [rc1, out1, err1] = run_cli_both(
        root + "/tools/gossip-sim --out " + (dir / "afile").string() + " --config " + cfg.string());
    CHECK(rc1 == 2);
    CHECK(err1.find("afile: exists and is not a folder") != std::string::npos);
    CHECK(out1.empty());
    const auto [rc2, out2, err2] = run_cli_both(
        root + "/tools/gossip-sim --out " + (dir / "used2").string() + " --config " + cfg.string());
    CHECK(rc2 == 2);
    CHECK(err2.find("holds an earlier run") != std::string::npos);
    CHECK(out2.empty());
  }
  SUBCASE("gossip-peer refuses a simulation config") {
    const auto [rc, err] =
        run_cli(root + "/peers/gossip-peer --config " + write("sim.json", base).string());
    CHECK(rc == 2);
    CHECK(err.find("gossip-sim") != std::string::npos);
  }
}
