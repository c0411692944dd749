// gossip-peer as a swarm, end to end: real processes, real loopback TCP and
// real keys made by gossip-keygen. Four peers train Fashion-MNIST shards, the
// second to fourth joining by the first's address; one is killed with
// SIGKILL mid-run and restarted with the same config, resumes from its
// checkpoint and rejoins while the others never stop; all reach 85% test
// accuracy. A joiner without a checkpoint whose model differs from the
// swarm's is refused the state download by every member and exits 2 naming
// both models. Two peers with different models (the joiner resuming its own
// checkpoint) refuse each other's parameters naming both fingerprints, and neither
// crashes. A missing, damaged or too open key file is a config error (exit
// 2) naming the key (and, when missing, the gossip-keygen command). Waits poll for conditions, so a
// loaded machine only makes the tests slower.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/peer/checkpoint.hpp"
#include "peer_process.hpp"
#include "preconditions.hpp"

using namespace gossip::test;

namespace {

// A fresh folder for one test case.
fs::path temp_dir(const std::string& name) {
  return gossip::test::temp_dir("swarm", name);
}

// The last train record of the `run`-th run (1: the first start) when that
// run is the latest one; null when it has not written one yet.
Json last_train_of_run(const fs::path& metrics, int run = 1) {
  Json last;
  int starts = 0;
  for (auto& l : metrics_of(metrics, /*complete_only=*/true)) {
    if (l.at("type") == "start") {
      ++starts;
      last = Json();
    }
    if (l.at("type") == "train") last = std::move(l);
  }
  return starts == run ? last : Json();
}

int64_t last_step(const fs::path& metrics, int run = 1) {
  const Json t = last_train_of_run(metrics, run);
  return t.is_null() ? -1 : t.at("step").get<int64_t>();
}

}  // namespace

TEST_CASE("4 peers on Fashion-MNIST shards: one killed and restarted, all reach 85%") {
  require_fashion_mnist();
  constexpr int kPeers = 4;
  constexpr int kVictim = 2;
  constexpr int64_t kMinSteps = 4000;    // every peer trains at least this far
  constexpr int64_t kMetricsEvery = 20;  // train record interval
  constexpr int64_t kCheckpointEvery = 200;
  const fs::path dir = temp_dir("fmnist");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  std::vector<std::string> ids;
  std::vector<fs::path> data_dirs, configs(kPeers);
  for (int i = 0; i < kPeers; ++i) {
    ids.push_back(make_identity(dir / ("identity-" + std::to_string(i) + ".key")));
    data_dirs.push_back(dir / ("peer" + std::to_string(i)));
  }
  // Runs until stopped (SIGTERM at the end); evaluates on the whole test set
  // once, at the end.
  auto config_for = [&](int i) {
    return [&, i](int port) {
      const fs::path p = dir / ("config-" + std::to_string(i) + ".json");
      std::ofstream(p)
          << Json{{"peer",
                   {{"listen", "127.0.0.1:" + std::to_string(port)},
                    {"identity_key", (dir / ("identity-" + std::to_string(i) + ".key")).string()},
                    {"swarm_key", (dir / "swarm.key").string()},
                    {"data_dir", data_dirs[static_cast<size_t>(i)].string()}}},
                  {"model", {{"layers", {784, 128, 10}}, {"seed", 1}}},
                  // The rate halves every 1500 swarm steps, so the models the
                  // test stops (at >= 4000 steps) are not caught mid-wobble.
                  {"optimizer",
                   {{"type", "sgd"},
                    {"lr", 0.05},
                    {"momentum", 0.9},
                    {"schedule", {{"type", "step"}, {"step_every", 1500}, {"gamma", 0.5}}}}},
                  {"data",
                   {{"dataset", {{"type", "fashion_mnist"}}},
                    {"shard", {{"type", "random"}, {"num_shards", kPeers}, {"index", i}}},
                    {"batch", 64},
                    {"seed", 1}}},
                  {"training", {{"device", "cpu"}, {"eval", {{"every_epochs", 0}}}}},
                  {"gossip", {{"interval_steps", 10}}},
                  {"checkpoint", {{"every_steps", kCheckpointEvery}, {"keep", 2}}},
                  {"metrics", {{"every_steps", kMetricsEvery}, {"progress_every_s", 2.0}}}}
                 .dump(2);
      configs[static_cast<size_t>(i)] = p;
      return p;
    };
  };
  auto metrics = [&](int i) { return data_dirs[static_cast<size_t>(i)] / "metrics.jsonl"; };

  const auto t_start = Clock::now();
  std::vector<Proc> peers(kPeers);
  Proc restarted;
  Reaper reaper;
  for (auto& p : peers) reaper.procs.push_back(&p);
  reaper.procs.push_back(&restarted);

  peers[0] = start_listening(config_for(0), dir, "peer0");
  const std::string first = Json::parse(read_text(configs[0]))["peer"]["listen"];
  const std::vector<std::string> join{"--join", first};
  for (int i = 1; i < kPeers; ++i) {
    peers[static_cast<size_t>(i)] =
        start_listening(config_for(i), dir, "peer" + std::to_string(i), join);
  }
  std::vector<const Proc*> all;
  for (const auto& p : peers) all.push_back(&p);

  // The victim has joined, exchanged with the swarm and written a checkpoint.
  wait_for(
      all,
      [&] {
        const Json t = last_train_of_run(metrics(kVictim));
        return has_checkpoint(data_dirs[kVictim]) && !t.is_null() && t.value("exchanges_ok", 0) > 0;
      },
      "the victim's first checkpoint and exchange");
  std::vector<int64_t> at_kill(kPeers);
  for (int i = 0; i < kPeers; ++i) at_kill[static_cast<size_t>(i)] = last_step(metrics(i));
  ::kill(peers[kVictim].pid, SIGKILL);
  REQUIRE(wait_exit(peers[kVictim]) == 128 + SIGKILL);
  const double kill_s = seconds_since(t_start);
  int64_t newest_checkpoint = -1;
  for (const auto& e : fs::directory_iterator(data_dirs[kVictim])) {
    if (auto step = gossip::peer::checkpoint_step_from_name(e.path().filename().string())) {
      newest_checkpoint = std::max<int64_t>(newest_checkpoint, static_cast<int64_t>(*step));
    }
  }
  REQUIRE(newest_checkpoint >= kCheckpointEvery);
  std::vector<const Proc*> others;
  for (int i = 0; i < kPeers; ++i) {
    if (i != kVictim) others.push_back(&peers[static_cast<size_t>(i)]);
  }
  // While the victim is dead the others keep training.
  wait_for(
      others,
      [&] {
        for (int i = 0; i < kPeers; ++i) {
          if (i != kVictim && last_step(metrics(i)) < at_kill[static_cast<size_t>(i)] + 100) {
            return false;
          }
        }
        return true;
      },
      "the others to train on while the victim is down");

  // Restarted with the same config and arguments: resumes and rejoins.
  restarted = spawn(configs[kVictim], dir, "peer2-restarted", join);
  std::vector<const Proc*> running = others;
  running.push_back(&restarted);
  wait_for(
      running,
      [&] {
        const Json t = last_train_of_run(metrics(kVictim), 2);
        return !t.is_null() && t.value("exchanges_ok", 0) > 0;
      },
      "the restarted victim to exchange with the swarm");
  const double rejoin_s = seconds_since(t_start);
  wait_for(
      running,
      [&] {
        for (int i = 0; i < kPeers; ++i) {
          if (last_step(metrics(i), i == kVictim ? 2 : 1) < kMinSteps) return false;
        }
        return last_step(metrics(kVictim), 2) >= at_kill[kVictim] + 500;
      },
      "every peer to reach step " + std::to_string(kMinSteps));
  // The others see the restarted victim as a live member again.
  wait_for(
      running,
      [&] {
        for (int i = 0; i < kPeers; ++i) {
          const Json t = last_train_of_run(metrics(i), i == kVictim ? 2 : 1);
          if (t.is_null() || t.value("members_alive", 0) != kPeers) return false;
        }
        return true;
      },
      "every peer to count " + std::to_string(kPeers) + " live members");

  std::vector<Proc*> finals;
  for (int i = 0; i < kPeers; ++i) {
    finals.push_back(i == kVictim ? &restarted : &peers[static_cast<size_t>(i)]);
  }
  for (Proc* p : finals) ::kill(p->pid, SIGTERM);
  std::vector<Json> summaries;
  for (Proc* p : finals) {
    INFO(read_text(p->err));
    REQUIRE(wait_exit(*p, 120) == 0);
    summaries.push_back(summary_of(*p));
  }
  const double total_s = seconds_since(t_start);

  for (int i = 0; i < kPeers; ++i) {
    const Json& s = summaries[static_cast<size_t>(i)];
    INFO("peer " << i << ": " << s.dump());
    MESSAGE("peer " << i << ": test accuracy " << s.at("test_accuracy").get<double>() << " after "
                    << s.at("steps") << " steps (started at " << s.at("start_step") << "), "
                    << s.at("exchanges_ok") << " exchanges ok, " << s.at("exchanges_failed")
                    << " failed");
    CHECK(s.at("test_accuracy").get<double>() >= 0.85);
    CHECK(s.at("stopped") == true);
    CHECK(s.at("peer_id") == ids[static_cast<size_t>(i)]);
    CHECK(s.at("exchanges_ok").get<int64_t>() > 0);
    CHECK(s.at("steps").get<int64_t>() >= kMinSteps);
    if (i == 0) {
      CHECK(s.at("from_swarm_state") == false);
      CHECK(s.at("start_step") == 0);
    } else if (i != kVictim) {
      CHECK(s.at("from_swarm_state") == true);  // downloaded the first peer's state
    }
  }
  MESSAGE("killed at " << kill_s << " s, restarted peer exchanging at " << rejoin_s
                       << " s, all stopped at " << total_s << " s");

  // The victim resumed from its own checkpoint, not from 0 nor from the swarm.
  const Json& v = summaries[kVictim];
  const int64_t resumed = v.at("start_step");
  CHECK(resumed == newest_checkpoint);
  CHECK(v.at("from_swarm_state") == false);
  CHECK(contains(read_text(restarted.err), "resuming from"));
  std::vector<int64_t> starts;
  int64_t first_after_restart = -1;
  for (const auto& l : metrics_of(metrics(kVictim))) {
    if (l.at("type") == "start") starts.push_back(l.at("step"));
    if (l.at("type") == "train" && starts.size() == 2 && first_after_restart < 0) {
      first_after_restart = l.at("step");
    }
  }
  REQUIRE(starts.size() == 2);
  CHECK(starts[1] == resumed);
  CHECK(first_after_restart > resumed);

  // The others never stopped: one start, then a train record every
  // kMetricsEvery steps without a gap in steps, and no long pause in time.
  for (int i = 0; i < kPeers; ++i) {
    if (i == kVictim) continue;
    INFO("peer " << i);
    int n_starts = 0;
    int64_t prev_step = -1;
    double prev_time = 0, max_pause_s = 0;
    bool contiguous = true;
    for (const auto& l : metrics_of(metrics(i))) {
      if (l.at("type") == "start") ++n_starts;
      if (l.at("type") != "train") continue;
      const int64_t step = l.at("step");
      const double time = l.at("time");
      if (prev_step >= 0 && step % kMetricsEvery == 0) {
        contiguous = contiguous && step == prev_step + kMetricsEvery;
        max_pause_s = std::max(max_pause_s, time - prev_time);
      }
      if (step % kMetricsEvery == 0) {
        prev_step = step;
        prev_time = time;
      }
    }
    CHECK(n_starts == 1);
    CHECK(contiguous);
    CHECK(prev_step >= kMinSteps);
    CHECK(max_pause_s < 20.0);
    MESSAGE("peer " << i << ": longest pause between train records " << max_pause_s << " s");
  }
  fs::remove_all(dir);
}

namespace {

// A networked synthetic-regression peer with hidden layer `hidden`.
fs::path mismatch_config(const fs::path& dir, const std::string& tag, int port, int hidden,
                         int64_t steps) {
  const fs::path p = dir / (tag + ".json");
  Json training = {{"device", "cpu"}, {"eval", {{"every_epochs", 0}}}};
  if (steps > 0) training["steps"] = steps;  // none: run until stopped
  std::ofstream(p) << Json{
      {"peer",
       {{"listen", "127.0.0.1:" + std::to_string(port)},
        {"identity_key", (dir / (tag + ".key")).string()},
        {"swarm_key", (dir / "swarm.key").string()},
        {"data_dir", (dir / tag).string()}}},
      {"model", {{"layers", {10, hidden, 1}}, {"loss", "mse"}, {"activation", "tanh"}}},
      {"optimizer", {{"type", "adam"}, {"lr", 0.005}}},
      {"data", {{"dataset", {{"type", "synthetic_regression"}}}, {"batch", 32}}},
      {"training", training},
      {"gossip", {{"interval_steps", 10}}},
      {"checkpoint", {{"every_steps", 0}}},
      {"metrics",
       {{"every_steps",
         100}}}}.dump(2);
  return p;
}

}  // namespace

TEST_CASE("two peers with different models refuse each other's parameters and carry on") {
  const fs::path dir = temp_dir("mismatch");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  make_identity(dir / "a.key");
  make_identity(dir / "b.key");
  fs::path cfg_a, cfg_b;
  Proc a, b, fresh, founder;
  Reaper reaper{{&a, &b, &fresh, &founder}};
  a = start_listening([&](int port) { return cfg_a = mismatch_config(dir, "a", port, 32, 0); }, dir,
                      "a");
  const std::string first = Json::parse(read_text(cfg_a))["peer"]["listen"];

  // Without a checkpoint of its own, b would start from the swarm's state:
  // every member refuses it, so b stops naming both models (exit 2, a
  // config that does not fit the swarm) instead of training alone.
  fresh = spawn(mismatch_config(dir, "b", free_port(), 16, 3000), dir, "fresh", {"--join", first});
  const int rc_fresh = wait_exit(fresh, 120);
  const std::string err_fresh = read_text(fresh.err);
  {
    INFO("b (fresh): " << err_fresh);
    CHECK(rc_fresh == 2);
    CHECK(contains(err_fresh, "gossip-peer: model mismatch: this config's model 10-16-1 tanh mse"));
    CHECK(contains(err_fresh, "donor refused: model mismatch"));
    CHECK_FALSE(contains(err_fresh, "starting from this peer's own initialisation"));
    CHECK_FALSE(has_checkpoint(dir / "b"));
    CHECK(!exited(a));
  }

  // With a checkpoint of its own (50 steps as the founder of its own swarm)
  // b resumes, joins a and trains; averaging offers are refused both ways.
  founder = spawn(mismatch_config(dir, "b", free_port(), 16, 50), dir, "founder");
  REQUIRE_MESSAGE(wait_exit(founder, 120) == 0, read_text(founder.err));
  REQUIRE(has_checkpoint(dir / "b"));
  b = start_listening([&](int port) { return cfg_b = mismatch_config(dir, "b", port, 16, 3000); },
                      dir, "b", {"--join", first});
  // b's budget is 3000 steps; a runs until b is done.
  const int rc_b = wait_exit(b, 120);
  CHECK(!exited(a));
  ::kill(a.pid, SIGTERM);
  const int rc_a = wait_exit(a, 60);
  const std::string err_a = read_text(a.err), err_b = read_text(b.err);
  INFO("a: " << err_a);
  INFO("b: " << err_b);
  REQUIRE(rc_a == 0);
  REQUIRE(rc_b == 0);

  const std::string fp_a = fingerprint_hex(cfg_a), fp_b = fingerprint_hex(cfg_b);
  REQUIRE(fp_a != fp_b);
  // The fresh joiner's state download was refused, both fingerprints named.
  CHECK(contains(err_a, "refused STATE_REQ: model mismatch"));
  CHECK(contains(err_fresh, "(fingerprint " + fp_b + ") is not the swarm's: "));
  CHECK(contains(err_fresh, "every member refused this peer's model"));
  CHECK(contains(err_fresh, " has " + fp_a));
  // The resumed b asked for no state.
  CHECK_FALSE(contains(err_b, "donor refused"));
  // Averaging offers are refused both ways, naming both fingerprints.
  for (const std::string* err : {&err_a, &err_b}) {
    CHECK(contains(*err, "refused OFFER: model mismatch"));
    CHECK(contains(*err, "cannot average"));
    CHECK(contains(*err, fp_a));
    CHECK(contains(*err, fp_b));
  }
  const Json sa = summary_of(a), sb = summary_of(b);
  CHECK(sb.at("stopped") == false);  // its own budget finished
  CHECK(sb.at("steps") == 3000);
  CHECK(sb.at("start_step") == 50);
  CHECK(sb.at("from_swarm_state") == false);
  CHECK(sb.at("exchanges_ok") == 0);
  CHECK(sa.at("stopped") == true);
  CHECK(sa.at("exchanges_ok") == 0);
  CHECK(sa.at("steps").get<int64_t>() > 0);
  // Each still learned on its own (targets have unit variance).
  CHECK(sa.at("test_loss").get<double>() < 0.5);
  CHECK(sb.at("test_loss").get<double>() < 0.5);
  fs::remove_all(dir);
}

TEST_CASE("a missing key file is a config error naming the key and the keygen command") {
  const fs::path dir = temp_dir("nokey");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  make_identity(dir / "present.key");
  SUBCASE("identity") {
    const fs::path cfg =
        mismatch_config(dir, "missing", free_port(), 8, 100);  // missing.key absent
    Proc p = spawn(cfg, dir, "identity");
    CHECK(wait_exit(p) == 2);
    const std::string err = read_text(p.err);
    INFO(err);
    const std::string key = (dir / "missing.key").string();
    CHECK(contains(err, "peer.identity_key: " + key + ": no such file"));
    CHECK(contains(err, "gossip-keygen identity --out " + key));
    // One line: rejected before the data was loaded or anything started.
    CHECK(err.find('\n') == err.size() - 1);
    CHECK_FALSE(fs::exists(dir / "missing"));
  }
  SUBCASE("swarm") {
    const fs::path cfg = mismatch_config(dir, "present", free_port(), 8, 100);
    fs::remove(dir / "swarm.key");
    Proc p = spawn(cfg, dir, "swarm");
    CHECK(wait_exit(p) == 2);
    const std::string err = read_text(p.err);
    INFO(err);
    CHECK(contains(err, "peer.swarm_key"));
    CHECK(contains(err, "gossip-keygen swarm --out " + (dir / "swarm.key").string()));
    CHECK(err.find('\n') == err.size() - 1);
  }
  SUBCASE("damaged, too open or of the wrong kind: exit 2 too, before the data is loaded") {
    const fs::path cfg = mismatch_config(dir, "present", free_port(), 8, 100);
    const std::string identity = (dir / "present.key").string();
    struct Case {
      const char* name;
      std::string setup;  // shell, run before the peer starts
      std::string expect;
    } cases[] = {
        {"truncated",
         "head -c 40 " + identity + " > " + identity + ".t && mv " + identity + ".t " + identity +
             " && chmod 600 " + identity,
         "peer.identity_key: " + identity},
        {"too open", "chmod 644 " + identity, "chmod 600"},
        {"swarm key as identity", "cp " + (dir / "swarm.key").string() + " " + identity,
         "peer.identity_key: " + identity},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      make_identity(dir / "present.key.fresh");
      shell("mv " + identity + ".fresh " + identity + " && " + c.setup);
      Proc p = spawn(cfg, dir, std::string("bad-") + c.name);
      CHECK(wait_exit(p) == 2);
      const std::string err = read_text(p.err);
      INFO(err);
      CHECK(contains(err, c.expect));
      CHECK(err.find('\n') == err.size() - 1);  // one line: nothing loaded or started
    }
  }
  fs::remove_all(dir);
}

// --- joining: stop requests and seeds that cannot answer --------------------

namespace {

// Rewrites the JSON config `file` through `edit`.
template <typename Edit>
void edit_config(const fs::path& file, Edit edit) {
  Json j = Json::parse(read_text(file));
  edit(j);
  std::ofstream(file) << j.dump(2);
}

}  // namespace

TEST_CASE("membership.join_timeout_ms bounds how long a peer tries its seeds") {
  const fs::path dir = temp_dir("jointimeout");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  make_identity(dir / "late.key");
  const std::string seed = "127.0.0.1:" + std::to_string(free_port());  // nobody listens
  const fs::path cfg = mismatch_config(dir, "late", free_port(), 8, 0);
  edit_config(cfg, [&](Json& j) {
    j["peer"]["bootstrap"] = {seed};
    j["membership"]["join_timeout_ms"] = 700;
  });
  Proc p = spawn(cfg, dir, "late");
  Reaper reaper{{&p}};
  CHECK(wait_exit(p, 20) == 1);
  const std::string err = read_text(p.err);
  INFO(err);
  CHECK(contains(err, "could not join the swarm: no seed answered within 700 ms; tried " + seed));
  fs::remove_all(dir);
}

TEST_CASE("SIGINT or SIGTERM while joining ends the peer at once, as any stop does") {
  const fs::path dir = temp_dir("joinstop");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  for (const int sig : {SIGINT, SIGTERM}) {
    const std::string tag = sig == SIGINT ? "int" : "term";
    CAPTURE(tag);
    make_identity(dir / (tag + ".key"));
    // Nobody listens at the seed: the join would wait its full 30 s.
    const std::string seed = "127.0.0.1:" + std::to_string(free_port());
    Proc p;
    Reaper reaper{{&p}};
    p = start_listening(
        [&](int port) {
          const fs::path cfg = mismatch_config(dir, tag, port, 8, 0);
          edit_config(cfg, [&](Json& j) { j["peer"]["bootstrap"] = {seed}; });
          return cfg;
        },
        dir, tag);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // inside the join wait
    const auto t0 = Clock::now();
    ::kill(p.pid, sig);
    const int rc = wait_exit(p, 15);
    const double took = seconds_since(t0);
    const std::string err = read_text(p.err);
    INFO(err);
    MESSAGE("exited " << took << " s after the signal");
    CHECK(rc == 0);
    CHECK(took < 3.0);
    CHECK(contains(err, "stopped before joining the swarm"));
    CHECK_FALSE(contains(err, "could not join"));
    CHECK_FALSE(contains(err, "final exchange"));
    const Json s = summary_of(p);
    CHECK(s.at("stopped") == true);
    CHECK(s.at("steps") == 0);
    CHECK(s.at("exchanges_ok") == 0);
    CHECK(s.at("from_swarm_state") == false);
    // The final checkpoint, as after any stop.
    CHECK(fs::exists(s.at("checkpoint").get<std::string>()));
  }
  fs::remove_all(dir);
}

TEST_CASE(
    "joining with another swarm key or with a member's identity key: the joiner names the key") {
  const fs::path dir = temp_dir("joinkeys");
  const std::string keygen = build_root() + "/tools/gossip-keygen";
  shell(keygen + " swarm --out " + (dir / "swarm.key").string() + " >/dev/null");
  shell(keygen + " swarm --out " + (dir / "other.key").string() + " >/dev/null");
  make_identity(dir / "a.key");
  make_identity(dir / "b.key");
  fs::path cfg_a;
  Proc a, b, twin;
  Reaper reaper{{&a, &b, &twin}};
  a = start_listening([&](int port) { return cfg_a = mismatch_config(dir, "a", port, 8, 0); }, dir,
                      "a");
  const std::string first = Json::parse(read_text(cfg_a))["peer"]["listen"];

  // Another swarm key: a refuses the handshake's last message; b says why.
  b = start_listening(
      [&](int port) {
        const fs::path cfg = mismatch_config(dir, "b", port, 8, 0);
        edit_config(cfg, [&](Json& j) { j["peer"]["swarm_key"] = (dir / "other.key").string(); });
        return cfg;
      },
      dir, "b", {"--join", first});
  wait_for(
      {&a, &b}, [&] { return contains(read_text(b.err), "peer.swarm_key"); },
      "the joiner's warning naming peer.swarm_key", 20);
  ::kill(b.pid, SIGTERM);
  CHECK(wait_exit(b, 15) == 0);
  const std::string err_b = read_text(b.err);
  INFO("b: " << err_b);
  CHECK(contains(err_b, "the member closed the connection right after the handshake"));
  CHECK(contains(read_text(a.err), "wrong swarm key"));

  // a's identity key: the dial reaches "itself"; the join fails at once.
  const auto t0 = Clock::now();
  const fs::path cfg_twin = mismatch_config(dir, "twin", free_port(), 8, 0);
  edit_config(cfg_twin, [&](Json& j) { j["peer"]["identity_key"] = (dir / "a.key").string(); });
  twin = spawn(cfg_twin, dir, "twin", {"--join", first});
  const int rc_twin = wait_exit(twin, 20);  // before: 30 s of retries
  const double took = seconds_since(t0);
  const std::string err_twin = read_text(twin.err);
  INFO("twin: " << err_twin);
  MESSAGE("the twin gave up after " << took << " s");
  CHECK(rc_twin == 1);
  CHECK(contains(err_twin, "could not join the swarm"));
  CHECK(contains(err_twin, "self-connection"));
  CHECK(contains(err_twin, "another peer uses the same identity key (peer.identity_key)"));

  ::kill(a.pid, SIGTERM);
  CHECK(wait_exit(a, 30) == 0);
  fs::remove_all(dir);
}

TEST_CASE("a wildcard listen address without peer.advertise is named once") {
  const fs::path dir = temp_dir("advertise");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  make_identity(dir / "w.key");
  Proc p = spawn(mismatch_config(dir, "w", free_port(), 8, 0), dir, "w", {"--listen", "0.0.0.0:0"});
  Reaper reaper{{&p}};
  CHECK(wait_exit(p, 30) == 2);
  const std::string err = read_text(p.err);
  INFO(err);
  CHECK(contains(err, "gossip-peer: membership: no address to advertise"));
  CHECK(contains(err, "peer.advertise"));
  CHECK_FALSE(contains(err, "membership: membership"));
  fs::remove_all(dir);
}
