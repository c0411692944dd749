// gossip.mode "outer" with real gossip-peer processes on loopback (churn, as
// peer_swarm_test does for params mode): three peers average in outer mode;
// one is killed with SIGKILL after a checkpoint that holds an outer state
// with momentum (v != 0) and restarted with the same config. The restart
// hands exactly that checkpoint's phi and v to its engine (its log gives
// their norms, which must equal those of the file's phi and v to 9
// digits), its STATUS says outer mode with the configured H, lr and
// momentum and counts outer syncs, and the swarm keeps training. A joiner
// without a checkpoint downloads phi and v with the parameters (its v is
// not zero: a fresh start would have v = 0). Every peer ends with a low
// test loss.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gossip/peer/checkpoint.hpp"
#include "peer_process.hpp"

using namespace gossip::test;
namespace peer = gossip::peer;

namespace {

constexpr int64_t kOuterSteps = 50;

fs::path outer_config(const fs::path& dir, const std::string& tag, int port) {
  return small_peer_config(dir, tag, port,
                           {{"model", {{"layers", {10, 32, 1}}, {"seed", 1}}},
                            {"gossip",
                             {{"interval_steps", nullptr},
                              {"mode", "outer"},
                              {"outer", {{"steps", kOuterSteps}, {"lr", 0.7}, {"momentum", 0.9}}}}},
                            {"checkpoint", {{"every_steps", 300}, {"keep", 2}}}});
}

// The newest checkpoint in `dir`, or an empty path.
fs::path newest_checkpoint(const fs::path& dir) {
  fs::path newest;
  int64_t best = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto step = peer::checkpoint_step_from_name(e.path().filename().string());
    if (step && static_cast<int64_t>(*step) > best) {
      best = static_cast<int64_t>(*step);
      newest = e.path();
    }
  }
  return newest;
}

// The last train record of the latest run in a metrics file (null: none yet).
Json last_train(const fs::path& metrics) {
  Json last;
  for (auto& l : metrics_of(metrics, /*complete_only=*/true)) {
    if (l.at("type") == "start") last = Json();
    if (l.at("type") == "train") last = std::move(l);
  }
  return last;
}

int64_t last_step(const fs::path& metrics) {
  const Json t = last_train(metrics);
  return t.is_null() ? -1 : t.at("step").get<int64_t>();
}

// gossip-ctl status --json of the peer at `address`; null when it did not answer.
Json status_of(const fs::path& dir, const std::string& address) {
  const auto r = run_program(
      "peers/gossip-ctl",
      "status " + address + " --swarm-key " + (dir / "swarm.key").string() + " --json", dir, "ctl");
  return r.status == 0 ? Json::parse(r.out) : Json();
}

}  // namespace

TEST_CASE("outer mode: a killed peer resumes phi and v from its checkpoint, a joiner gets them") {
  const fs::path dir = temp_dir("outer", "churn");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  for (const char* tag : {"a", "b", "c", "d"}) make_identity(dir / (std::string(tag) + ".key"));
  fs::path cfg_a, cfg_c;
  Proc a, b, c, c2, d;
  Reaper reaper{{&a, &b, &c, &c2, &d}};
  a = start_listening([&](int port) { return cfg_a = outer_config(dir, "a", port); }, dir, "a");
  const std::string addr_a = Json::parse(read_text(cfg_a))["peer"]["listen"];
  const std::vector<std::string> join{"--join", addr_a};
  b = start_listening([&](int port) { return outer_config(dir, "b", port); }, dir, "b", join);
  c = start_listening([&](int port) { return cfg_c = outer_config(dir, "c", port); }, dir, "c",
                      join);
  const std::string addr_c = Json::parse(read_text(cfg_c))["peer"]["listen"];

  // The victim has written a checkpoint after an outer sync: its v is not zero.
  wait_for(
      {&a, &b, &c},
      [&] {
        const fs::path f = newest_checkpoint(dir / "c");
        if (f.empty()) return false;
        auto s = peer::read_checkpoint_file(f);
        return s.is_ok() &&
               std::any_of(s->outer.v.begin(), s->outer.v.end(), [](float x) { return x != 0.0f; });
      },
      "a checkpoint of the victim with outer momentum", 120, std::chrono::milliseconds(50));
  ::kill(c.pid, SIGKILL);
  REQUIRE(wait_exit(c) == 128 + SIGKILL);
  // What the restart will load: the newest checkpoint now (one more may have
  // been written between the look above and the kill).
  const fs::path resume_file = newest_checkpoint(dir / "c");
  auto saved = peer::read_checkpoint_file(resume_file);
  REQUIRE(saved.is_ok());
  REQUIRE(saved->outer.phi.size() == saved->params.size());
  REQUIRE(saved->outer.v.size() == saved->params.size());
  const std::string saved_norms = gossip::averaging::outer_norms_text(saved->outer);
  INFO("checkpoint " << resume_file << ": " << saved_norms);

  // The others keep training while the victim is dead.
  const int64_t a_at_kill = last_step(dir / "a" / "metrics.jsonl");
  wait_for(
      {&a, &b}, [&] { return last_step(dir / "a" / "metrics.jsonl") >= a_at_kill + 300; },
      "a training on after the kill", 120);

  // The restart resumes exactly that checkpoint's phi and v.
  c2 = start_listening([&](int port) { return outer_config(dir, "c", port); }, dir, "c2", join);
  wait_for(
      {&a, &b, &c2}, [&] { return contains(read_text(c2.err), "resumed the outer state"); },
      "the restart's outer state", 60);
  const std::string err_c2 = read_text(c2.err);
  CHECK(contains(err_c2, "resuming from " + resume_file.string()));
  CHECK(contains(err_c2, "resumed the outer state from the checkpoint: " + saved_norms + "\n"));

  // Its STATUS: outer mode as configured, and outer syncs after the restart.
  const std::string addr_c2 =
      Json::parse(read_text(dir / "c.json"))["peer"]["listen"].get<std::string>();
  CHECK(addr_c2 != addr_c);  // start_listening wrote a fresh port
  Json st;
  wait_for(
      {&a, &b, &c2},
      [&] {
        st = status_of(dir, addr_c2);
        return !st.is_null() && st["gossip"]["outer"]["syncs"].get<int64_t>() > 2;
      },
      "outer syncs of the restarted peer", 60, std::chrono::milliseconds(300));
  CHECK(st["gossip"]["mode"] == "outer");
  CHECK(st["gossip"]["outer"]["steps"] == kOuterSteps);
  CHECK(st["gossip"]["outer"]["lr"] == 0.7);
  CHECK(st["gossip"]["outer"]["momentum"] == 0.9);
  CHECK(st["gossip"]["outer"]["syncs"] == st["exchanges"]["ok"]);

  // A joiner without a checkpoint downloads phi and v with the parameters.
  d = start_listening([&](int port) { return outer_config(dir, "d", port); }, dir, "d", join);
  wait_for(
      {&a, &b, &c2, &d}, [&] { return contains(read_text(d.err), "downloaded the swarm's state"); },
      "the joiner's state download", 60);
  const std::string err_d = read_text(d.err);
  const auto at = err_d.find("with its outer state: ||phi|| = ");
  REQUIRE_MESSAGE(at != std::string::npos, err_d);
  const auto v_at = err_d.find("||v|| = ", at);
  REQUIRE(v_at != std::string::npos);
  CHECK(std::stod(err_d.substr(v_at + 8)) > 0);  // a fresh start has v = 0

  // Everyone trains on, the joiner syncs too; then all stop and score low on
  // the test set.
  const int64_t c2_at = last_step(dir / "c" / "metrics.jsonl");
  wait_for(
      {&a, &b, &c2, &d},
      [&] {
        const Json t = last_train(dir / "d" / "metrics.jsonl");
        return last_step(dir / "c" / "metrics.jsonl") >= std::max<int64_t>(c2_at, 0) + 1000 &&
               !t.is_null() && t.value("exchanges_ok", 0) > 0;
      },
      "the restarted peer training on and the joiner's first sync", 120);
  for (Proc* p : {&d, &c2, &b, &a}) ::kill(p->pid, SIGTERM);
  for (Proc* p : {&d, &c2, &b, &a}) {
    REQUIRE(wait_exit(*p, 60) == 0);
    const Json s = summary_of(*p);
    INFO(p->err << ": " << s.dump());
    CHECK(s.at("test_loss").get<double>() < 0.05);  // targets have unit variance
    CHECK(s.at("exchanges_ok").get<int64_t>() > 0);
  }
  CHECK(summary_of(c2).at("start_step").get<int64_t>() == saved->step);
  // The final checkpoint of the restarted peer holds its outer state too.
  auto last = peer::read_checkpoint_file(newest_checkpoint(dir / "c"));
  REQUIRE(last.is_ok());
  CHECK(last->outer.phi.size() == last->params.size());
  fs::remove_all(dir);
}
