// gossip-peer surviving crashes, as real processes: SIGKILL after a
// checkpoint and at random moments, then a restart with the same config that
// resumes (the step never goes back to 0, metrics show continuity) and
// finishes with a sane model; SIGTERM writes a final checkpoint and exits 0;
// a damaged newest checkpoint is reported and the previous one used.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gossip/peer/checkpoint.hpp"
#include "peer_process.hpp"
#include "preconditions.hpp"

using namespace gossip::test;
namespace peer = gossip::peer;

namespace {

fs::path temp_dir(const std::string& name) {
  return gossip::test::temp_dir("resume", name);
}

// Polls until `ready` holds; fails after `timeout_s` or when `p` has exited.
template <typename F>
void wait_for(const Proc& p, F ready, const std::string& what, double timeout_s = 20) {
  gossip::test::wait_for({&p}, ready, what, timeout_s, std::chrono::milliseconds(2));
}

int count_files(const fs::path& dir, const std::string& suffix) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    n += e.path().filename().string().ends_with(suffix) ? 1 : 0;
  }
  return n;
}

// The step of the newest checkpoint file in `dir`, 0 when there is none.
int64_t newest_checkpoint(const fs::path& dir) {
  int64_t newest = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto step = peer::checkpoint_step_from_name(e.path().filename().string());
    if (step) newest = std::max(newest, *step);
  }
  return newest;
}

// The step of each "start" record in a metrics file, in order.
std::vector<int64_t> start_steps(const fs::path& metrics) {
  std::vector<int64_t> steps;
  for (const auto& l : metrics_of(metrics)) {
    if (l.at("type") == "start") steps.push_back(l.at("step").get<int64_t>());
  }
  return steps;
}

// The seed's regression task, a few thousand steps a second on one core.
fs::path synthetic_config(const fs::path& dir, int64_t steps, int64_t ckpt_every,
                          int64_t metrics_every) {
  const fs::path p = dir / "config.json";
  Json training = {{"device", "cpu"}, {"eval", {{"every_epochs", 4}}}};
  if (steps > 0) training["steps"] = steps;  // none: run until stopped
  std::ofstream(p) << Json{{"peer", {{"network", false}, {"data_dir", "run"}}},
                           {"model",
                            {{"layers", {10, 32, 1}}, {"loss", "mse"}, {"activation", "tanh"}}},
                           {"optimizer", {{"type", "adam"}, {"lr", 0.005}}},
                           {"data",
                            {{"dataset", {{"type", "synthetic_regression"}}}, {"batch", 32}}},
                           {"training", training},
                           {"checkpoint", {{"every_steps", ckpt_every}, {"keep", 2}}},
                           {"metrics", {{"every_steps", metrics_every}, {"progress_every_s", 0.2}}}}
                          .dump(2);
  return p;
}

}  // namespace

TEST_CASE("SIGKILL after a checkpoint: the restart resumes and finishes with a sane model") {
  const fs::path dir = temp_dir("kill");
  const fs::path cfg = synthetic_config(dir, 12000, 500, 500);
  const fs::path run = dir / "run";

  Proc first = spawn(cfg, dir, "first");
  wait_for(
      first, [&] { return has_checkpoint(run); }, "the first checkpoint");
  ::kill(first.pid, SIGKILL);
  CHECK(wait_exit(first) == 128 + SIGKILL);

  Proc second = spawn(cfg, dir, "second");
  REQUIRE(wait_exit(second) == 0);
  const Json s = summary_of(second);
  INFO(read_text(second.err));
  CHECK(s.at("start_step").get<int64_t>() >= 500);  // did not go back to 0
  CHECK(s.at("steps") == 12000);
  CHECK(s.at("stopped") == false);
  CHECK(s.at("test_loss").get<double>() < 0.05);  // targets have unit variance
  CHECK(read_text(second.err).find("resuming from") != std::string::npos);

  // Metrics: two starts, the second at the resumed step; train records every
  // 500 steps with no gap from 500 to the end.
  const auto lines = metrics_of(run / "metrics.jsonl");
  std::vector<int64_t> starts;
  std::set<int64_t> train_steps;
  for (const auto& l : lines) {
    if (l.at("type") == "start") starts.push_back(l.at("step"));
    if (l.at("type") == "train") train_steps.insert(l.at("step").get<int64_t>());
  }
  REQUIRE(starts.size() == 2);
  CHECK(starts[0] == 0);
  CHECK(starts[1] == s.at("start_step").get<int64_t>());
  CHECK(train_steps.size() == 24);
  CHECK(*train_steps.begin() == 500);
  CHECK(*train_steps.rbegin() == 12000);
  CHECK(lines.back().at("type") == "eval");
  fs::remove_all(dir);
}

TEST_CASE("killed with SIGKILL at random moments, the peer always resumes") {
  const fs::path dir = temp_dir("random");
  const fs::path cfg = synthetic_config(dir, 40000, 200, 200);
  const fs::path run = dir / "run";
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> delay_ms(0, 250);  // 40000 steps take about 2 s
  // Each run that got as far as its start record started from the newest
  // checkpoint on disk when it was spawned (0: none yet, a fresh start).
  size_t starts_seen = 0;
  int resumed = 0;
  for (int i = 0; i < 8; ++i) {
    const int64_t newest = newest_checkpoint(run);
    Proc p = spawn(cfg, dir, "kill" + std::to_string(i));
    const int ms = delay_ms(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    ::kill(p.pid, SIGKILL);
    const int rc = wait_exit(p);
    CHECK((rc == 128 + SIGKILL || rc == 0));
    const auto starts = start_steps(run / "metrics.jsonl");
    if (starts.size() == starts_seen) continue;  // killed before it wrote one
    CAPTURE(i);
    REQUIRE(starts.size() == starts_seen + 1);
    CHECK(starts.back() == newest);
    resumed += newest > 0 ? 1 : 0;
    starts_seen = starts.size();
  }
  if (newest_checkpoint(run) == 0) {
    // On a slow or loaded host none of the random kills may have come after
    // the first checkpoint (a run's start-up alone can take 250 ms). One more
    // run, killed once it has written a checkpoint, so that the resume below
    // always has something to resume from.
    const size_t before = start_steps(run / "metrics.jsonl").size();
    Proc p = spawn(cfg, dir, "kill-after-checkpoint");
    wait_for(
        p, [&] { return newest_checkpoint(run) > 0; }, "a checkpoint");
    ::kill(p.pid, SIGKILL);
    CHECK(wait_exit(p) == 128 + SIGKILL);
    const auto starts = start_steps(run / "metrics.jsonl");
    REQUIRE(starts.size() == before + 1);
    CHECK(starts.back() == 0);  // nothing on disk when it was spawned
    starts_seen = starts.size();
  }
  const int64_t newest = newest_checkpoint(run);
  REQUIRE_MESSAGE(newest > 0, "no killed run wrote a checkpoint: nothing to resume from");
  Proc last = spawn(cfg, dir, "last");
  REQUIRE(wait_exit(last) == 0);
  const std::string err = read_text(last.err);
  const Json s = summary_of(last);
  MESSAGE(resumed << " killed runs resumed; the last one from step " << s.at("start_step"));
  CHECK(s.at("start_step") == newest);
  CHECK(err.find("resuming from " + (run / peer::checkpoint_file_name(newest)).string()) !=
        std::string::npos);
  CHECK(s.at("steps") == 40000);
  CHECK(s.at("test_loss").get<double>() < 0.05);
  // Atomic writes: no kill ever left a checkpoint that had to be rejected,
  // and no temp file survives a restart.
  CHECK_MESSAGE(err.find("unusable") == std::string::npos, err);
  CHECK(count_files(run, ".rejected") == 0);
  CHECK(count_files(run, ".tmp") == 0);
  CHECK(count_files(run, ".bin") == 2);  // keep 2
  // The step each run started from never went back.
  const auto starts = start_steps(run / "metrics.jsonl");
  REQUIRE(starts.size() == starts_seen + 1);
  CHECK(starts.back() == newest);
  for (size_t k = 1; k < starts.size(); ++k) CHECK(starts[k] >= starts[k - 1]);
  fs::remove_all(dir);
}

TEST_CASE("SIGTERM finishes the step, writes the final checkpoint and exits 0") {
  const fs::path dir = temp_dir("term");
  const fs::path cfg =
      synthetic_config(dir, 0, 0, 100);  // run until stopped, final checkpoint only
  const fs::path run = dir / "run";
  auto wait_for_train_record = [&](const Proc& p) {
    wait_for(
        p, [&] { return read_text(run / "metrics.jsonl").find("\"train\"") != std::string::npos; },
        "a train record");
  };
  Proc p = spawn(cfg, dir, "term");
  wait_for_train_record(p);
  ::kill(p.pid, SIGTERM);
  REQUIRE(wait_exit(p) == 0);
  const Json s = summary_of(p);
  const int64_t steps = s.at("steps");
  CHECK(steps >= 100);
  CHECK(s.at("stopped") == true);
  const fs::path ckpt = run / peer::checkpoint_file_name(steps);
  CHECK(s.at("checkpoint") == ckpt.string());
  auto state = peer::read_checkpoint_file(ckpt);
  REQUIRE(state.is_ok());
  CHECK(state->step == steps);
  CHECK(state->optimizer_steps == steps);
  CHECK(state->weight == 8192.0);  // gossip.weight "samples": the shard's rows

  // SIGINT on the restart: it resumed exactly there.
  fs::remove(run / "metrics.jsonl");
  Proc again = spawn(cfg, dir, "again");
  wait_for_train_record(again);
  ::kill(again.pid, SIGINT);
  REQUIRE(wait_exit(again) == 0);
  const Json s2 = summary_of(again);
  CHECK(s2.at("start_step") == steps);
  CHECK(s2.at("steps").get<int64_t>() > steps);
  fs::remove_all(dir);
}

TEST_CASE("--data-dir moves checkpoints and metrics; two peers cannot share a folder") {
  const fs::path dir = temp_dir("datadir");
  const fs::path cfg = synthetic_config(dir, 0, 0, 100);
  const fs::path elsewhere = dir / "elsewhere";
  const std::vector<std::string> args{"--data-dir", elsewhere.string()};
  Proc a = spawn(cfg, dir, "a", args);
  wait_for(
      a,
      [&] { return read_text(elsewhere / "metrics.jsonl").find("\"train\"") != std::string::npos; },
      "a train record");
  Proc b = spawn(cfg, dir, "b", args);
  CHECK(wait_exit(b) == 1);
  CHECK(read_text(b.err).find("in use by another gossip-peer") != std::string::npos);
  ::kill(a.pid, SIGTERM);
  REQUIRE(wait_exit(a) == 0);
  const Json s = summary_of(a);
  CHECK(fs::exists(elsewhere / peer::checkpoint_file_name(s.at("steps"))));
  CHECK_FALSE(fs::exists(dir / "run"));
  fs::remove_all(dir);
}

TEST_CASE("a damaged newest checkpoint is reported and the previous one used; none: fresh") {
  const fs::path dir = temp_dir("damaged");
  const fs::path cfg = synthetic_config(dir, 2000, 500, 500);
  const fs::path run = dir / "run";
  Proc p = spawn(cfg, dir, "full");
  REQUIRE(wait_exit(p) == 0);
  const fs::path newest = run / "ckpt-000002000.bin";
  REQUIRE(fs::exists(newest));
  {
    std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(300);
    f.put('\x5a');
  }
  Proc q = spawn(cfg, dir, "flipped");
  REQUIRE(wait_exit(q) == 0);
  const std::string err = read_text(q.err);
  INFO(err);
  CHECK(err.find("ckpt-000002000.bin") != std::string::npos);
  CHECK(err.find("checksum mismatch") != std::string::npos);
  CHECK(err.find("resuming from " + (run / "ckpt-000001500.bin").string()) != std::string::npos);
  CHECK(summary_of(q).at("start_step") == 1500);
  CHECK(summary_of(q).at("steps") == 2000);

  for (const auto& e : fs::directory_iterator(run)) {
    if (e.path().extension() == ".bin") fs::resize_file(e.path(), 100);
  }
  Proc r = spawn(cfg, dir, "fresh");
  REQUIRE(wait_exit(r) == 0);
  const std::string err2 = read_text(r.err);
  INFO(err2);
  CHECK(err2.find("no valid checkpoint") != std::string::npos);
  CHECK(err2.find("starting fresh") != std::string::npos);
  CHECK(summary_of(r).at("start_step") == 0);
  CHECK(summary_of(r).at("steps") == 2000);
  fs::remove_all(dir);
}

TEST_CASE("Fashion-MNIST: killed mid-run and restarted, it reaches the usual accuracy") {
  require_fashion_mnist();
  const fs::path dir = temp_dir("fmnist");
  const fs::path cfg = dir / "config.json";
  std::ofstream(cfg) << R"({
    "peer": {"network": false, "data_dir": "run"},
    "model": {"layers": [784, 32, 10]},
    "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
    "data": {"dataset": {"type": "fashion_mnist"}, "batch": 64},
    "training": {"device": "cpu", "epochs": 2, "eval": {"max_rows": 2000}},
    "checkpoint": {"every_steps": 300, "keep": 2},
    "metrics": {"every_steps": 100}
  })";
  Proc first = spawn(cfg, dir, "first");
  wait_for(
      first, [&] { return has_checkpoint(dir / "run"); }, "the first checkpoint");
  ::kill(first.pid, SIGKILL);
  wait_exit(first);
  Proc second = spawn(cfg, dir, "second");
  REQUIRE(wait_exit(second, 60) == 0);
  const Json s = summary_of(second);
  INFO(read_text(second.err));
  CHECK(s.at("start_step").get<int64_t>() >= 300);
  CHECK(s.at("steps") == 1876);  // 2 epochs of ceil(60000 / 64)
  CHECK(s.at("epochs") == 2);
  CHECK(s.at("test_accuracy").get<double>() > 0.80);
  fs::remove_all(dir);
}
