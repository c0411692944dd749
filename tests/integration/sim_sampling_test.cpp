// Honest sampling (docs/simulation.md "Sampling"): a look asks every live
// replica at once and waits for all against one deadline; a peer slow to
// answer is late, not dead; alive and the views come from what the
// simulation and each peer's membership know, not from who answered; looks
// keep to their schedule or are flagged. Real peers over loopback TCP, and a
// real delay in the slow peer's answer path.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/sim/simulation.hpp"
#include "peer_process.hpp"

namespace {

using gossip::test::Json;
namespace fs = std::filesystem;

std::vector<Json> samples_of(const Json& summary) {
  std::vector<Json> out;
  std::ifstream in(summary["metrics"].get<std::string>());
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    Json r = Json::parse(line);
    if (r["type"] == "sample") out.push_back(std::move(r));
  }
  return out;
}

Json run(gossip::sim::SimOptions o, const std::string& name) {
  o.name = name;
  o.out = gossip::test::temp_dir("sim_sampling", name) / "out";
  o.progress = false;
  std::atomic<bool> stop{false};
  auto summary = gossip::sim::run_simulation(o, stop);
  REQUIRE_MESSAGE(static_cast<bool>(summary), summary.status().message());
  return *summary;
}

// The seed's regression task (configs/sim-regression.json) on `peers`
// peers for `duration_s`, with a budget no peer spends first.
gossip::config::Config regression(int peers, double duration_s, double sample_every_s) {
  const char* root = std::getenv("GOSSIP_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "GOSSIP_SOURCE_ROOT is set by meson test");
  auto c = gossip::config::load_config(fs::path(root) / "configs" / "sim-regression.json");
  REQUIRE_MESSAGE(static_cast<bool>(c), c.status().message());
  c->sim.peers = peers;
  c->sim.duration_s = duration_s;
  if (sample_every_s > 0) c->sim.sample_every_s = sample_every_s;
  c->training.steps = 100000000;
  return *c;
}

// What every look must say whatever the host's speed: every peer alive
// (none is killed, none spends its budget), each alive peer either answered
// or is late, and the view counts are those of the peers' own views.
void check_look(const Json& r, int peers) {
  INFO("look at t = " << r["t_s"]);
  REQUIRE(r["peers"].size() == static_cast<size_t>(peers));
  CHECK(r["alive"] == peers);
  CHECK(r["late"].get<int64_t>() + r["answered"].get<int64_t>() == peers);
  int64_t late = 0, lo = peers + 1, hi = 0;
  for (const auto& p : r["peers"]) {
    CHECK(p["alive"] == true);
    late += p["late"] == true ? 1 : 0;
    CHECK(p["step"].is_number());
    // Every live peer's view is read from its membership, late or not.
    REQUIRE(p["members"].is_number());
    const auto m = p["members"].get<int64_t>();
    CHECK(m >= 1);
    CHECK(m <= peers);
    lo = std::min(lo, m);
    hi = std::max(hi, m);
    CHECK((p["late"] == true) == p["taken_s"].is_null());
  }
  CHECK(r["late"] == late);
  CHECK(r["members_min"] == lo);
  CHECK(r["members_max"] == hi);
}

}  // namespace

TEST_CASE("a peer slow to answer a look is late, not dead, and alive stays right") {
  gossip::sim::SimOptions o;
  o.config = regression(3, 5.0, 1.0);  // looks wait 0.5 s for the replicas
  o.answer_delay[1] = std::chrono::milliseconds(1500);
  const Json s = run(o, "late");
  const auto samples = samples_of(s);
  REQUIRE(samples.size() >= 3);
  int64_t last_step = -1, others_answered = 0;
  for (const auto& r : samples) {
    check_look(r, 3);
    const auto& slow = r["peers"][1];
    CHECK(slow["late"] == true);
    CHECK(slow["test_loss"].is_null());
    CHECK(r["late"].get<int64_t>() >= 1);
    // Its step still comes from the peer, and it still trains.
    CHECK(slow["step"].get<int64_t>() >= last_step);
    last_step = slow["step"].get<int64_t>();
    if (r["answered"] == 2) ++others_answered;
  }
  CHECK(last_step > 0);
  CHECK(others_answered >= 1);
  // It finished with the others: it was never dead.
  CHECK(s["alive"] == 3);
  CHECK(s["failed_peers"].empty());
  CHECK(s["final_peers"][1]["alive"] == true);
}

TEST_CASE("64 peers: every look counts alive and views right and keeps its schedule") {
  constexpr int kPeers = 64;
  gossip::sim::SimOptions o;
  o.config = regression(kPeers, 6.0, 0.0);
  const double every = o.config.sim.sample_every_s;
  const Json s = run(o, "peers64");
  const auto samples = samples_of(s);
  MESSAGE("64 peers: " << samples.size() << " looks, sampling_slowed " << s["sampling_slowed"]
                       << ", wall " << s["wall_s"]);
  REQUIRE(samples.size() >= 2);
  // The first look is at the start, asked on time: not after every peer
  // in turn had its chance to time out.
  CHECK(samples.front()["t_s"].get<double>() < 0.25 * every);
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& r = samples[i];
    check_look(r, kPeers);
    const double period = r["sample_every_s"].get<double>();
    const double lag = r["t_s"].get<double>() - r["due_s"].get<double>();
    CHECK(lag >= 0);
    // On time, or flagged as not.
    CHECK(r["on_time"] == (lag <= 0.25 * period));
    CHECK(r["completed_s"].get<double>() >= r["answered_s"].get<double>());
    CHECK(r["answered_s"].get<double>() >= r["t_s"].get<double>());
    if (i + 1 < samples.size() - 1) {
      // The schedule does not drift by the looks' own length: looks are due
      // on multiples of the configured period (a slow-down lengthens the
      // period to a multiple of it, and a look that came due while the
      // previous one was still being evaluated was not asked).
      const double next = samples[i + 1]["due_s"].get<double>();
      CHECK(next >= r["due_s"].get<double>() + every - 1e-9);
      CHECK(next / every == doctest::Approx(std::round(next / every)));
    }
    if (period > every) {
      // Slowed down: said in the summary, at a multiple of the configured period.
      REQUIRE(s["sampling_slowed"].is_object());
      CHECK(s["sampling_slowed"]["used_every_s"].get<double>() >= period);
    }
  }
  CHECK(s["samples"] == samples.size());
  int64_t late_looks = 0;
  for (const auto& r : samples) late_looks += r["on_time"] == true ? 0 : 1;
  CHECK(s["samples_late"] == late_looks);
  CHECK(s["alive"] == kPeers);
  CHECK(s["failed_peers"].empty());
}
