// Failure detection over real loopback TCP with real encryption: a peer that
// stops answering abruptly (its Node closed, no LEAVE) is marked dead
// everywhere with default settings and never offered as a random pick again,
// then comes back with the same identity and a higher incarnation; a
// graceful leave is marked `left` everywhere; a peer whose membership strand
// stalls and then resumes is suspected but never declared dead.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <random>

#include "membership_cluster.hpp"

using namespace gossip;
using namespace gossip::membership;
using namespace gossip::membership::testing;

namespace {

// `n` peers, each joining through a random earlier one; waits for every
// view to be complete.
void build(Cluster& c, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  for (int i = 1; i < n; ++i) {
    const int via = std::uniform_int_distribution<int>(0, i - 1)(rng);
    const auto st = c.start_and_join(c.add(), {via});
    REQUIRE_MESSAGE(st.is_ok(), st.to_string());
  }
  REQUIRE_MESSAGE(Cluster::wait_until([&] { return c.converged(); }, 15s).has_value(),
                  "swarm of " << n << " did not converge");
}

}  // namespace

TEST_CASE(
    "a peer that stops answering is marked dead everywhere within 15 s (default settings), then "
    "rejoins") {
  Cluster c(Options{});
  build(c, 16, 16);
  const int victim = 5;
  const std::string victim_id = c.peer(victim).id;
  const uint64_t old_incarnation = c.peer(victim).swarm->self().incarnation;

  c.crash(victim);
  const auto took = Cluster::wait_until([&] { return c.all_see(victim, MemberState::kDead); }, 15s);
  REQUIRE_MESSAGE(took.has_value(), "the crashed peer is not dead everywhere after 15 s");
  MESSAGE("16 peers, default settings: crash known everywhere after " << *took << " s");
  CHECK(*took > 1.0);  // not before a probe period and a suspicion timeout
  // Never offered as a partner from now on.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 16; ++i) {
      if (i == victim) continue;
      auto pick = c.peer(i).swarm->random_live_member();
      REQUIRE(pick.has_value());
      CHECK(pick->id != victim_id);
    }
    std::this_thread::sleep_for(25ms);
  }
  CHECK(c.converged());  // the others still see each other alive

  // Same identity, same address, back again: alive everywhere, higher incarnation.
  const auto st = c.start_and_join(victim, {0});
  REQUIRE_MESSAGE(st.is_ok(), st.to_string());
  CHECK(c.peer(victim).swarm->self().incarnation > old_incarnation);
  const auto back = Cluster::wait_until([&] { return c.converged(); }, 10s);
  REQUIRE_MESSAGE(back.has_value(), "the restarted peer is not alive everywhere");
  MESSAGE("restarted peer alive everywhere after " << *back << " s");
}

TEST_CASE("a graceful leave is marked left everywhere within 3 s (default settings)") {
  Cluster c(Options{});
  build(c, 16, 7);
  const int leaver = 9;
  const auto t0 = std::chrono::steady_clock::now();
  c.leave(leaver);
  const auto took = Cluster::wait_until([&] { return c.all_see(leaver, MemberState::kLeft); }, 3s);
  REQUIRE_MESSAGE(took.has_value(), "the leave is not known everywhere after 3 s");
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("16 peers: leave known everywhere " << total << " s after leave() began");
  // Left, not failed: nobody saw it dead on the way.
  for (int i = 0; i < 16; ++i) {
    if (i != leaver) CHECK(c.view(i, leaver) == MemberState::kLeft);
  }
  CHECK(c.converged());
}

TEST_CASE("a peer whose membership stalls until it is suspected is not declared dead") {
  // Probe period 500 ms keeps the test short; the ratios are the defaults'.
  Options o;
  o.probe_interval = Ms(500);
  o.probe_timeout = Ms(250);
  // The victim's Swarm strand runs on an io_context of its own, so that
  // blocking that context's only thread stalls its membership for real (its
  // sessions keep running on the shared context and queue the frames).
  IoThreads stall_io(1);  // outlives the cluster
  Cluster c(o);
  const int victim = 0;
  c.add();
  c.start(victim, &stall_io.io);
  REQUIRE(c.peer(victim).swarm->join_wait({}, 1s).is_ok());
  for (int i = 1; i < 8; ++i) REQUIRE(c.start_and_join(c.add(), {0}).is_ok());
  REQUIRE(Cluster::wait_until([&] { return c.converged(); }, 10s).has_value());

  std::atomic<int> suspected{0}, declared_dead{0};
  // Watch through the snapshots of every other peer while it stalls.
  const Options& opts = o;
  const Millis full = Millis(static_cast<int64_t>(
      opts.suspicion_mult * std::log2(9.0) * static_cast<double>(opts.probe_interval.count())));
  // With several accusers Lifeguard shortens the timeout down to this floor.
  const Millis floor =
      Millis(static_cast<int64_t>(opts.suspicion_min_fraction * static_cast<double>(full.count())));
  // The stall lasts at least half the floor and until another peer suspects
  // the victim (a probe and its indirect probes must time out first: how
  // soon depends on when a peer's round-robin reaches the victim and, on a
  // loaded machine, on scheduling), at most one whole suspicion timeout. It
  // ends within one observation (20 ms) of the first suspicion, so the
  // refutation has almost the whole floor to spare however late the notice
  // came; a stall never noticed in a whole timeout is a failure.
  const Millis min_stall = floor / 2, max_stall = full;
  MESSAGE("stalling for " << min_stall.count() << " to " << max_stall.count()
                          << " ms (suspicion timeout " << full.count()
                          << " ms, shortened to no less than " << floor.count() << " ms)");
  std::atomic<bool> noticed{false};
  std::atomic<int64_t> stalled_ms{0};
  const auto t0 = std::chrono::steady_clock::now();
  auto since_t0 = [t0] {
    return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - t0);
  };
  asio::post(stall_io.io, [&, since_t0] {
    while (since_t0() < max_stall && !(noticed && since_t0() >= min_stall)) {
      std::this_thread::sleep_for(5ms);
    }
    stalled_ms = since_t0().count();
  });
  // Observe until a whole suspicion timeout (and a second) after the stall.
  while (stalled_ms == 0 || since_t0() < Millis(stalled_ms.load()) + full + Ms(1000)) {
    for (int i = 1; i < 8; ++i) {
      const auto v = c.view(i, victim);
      if (v == MemberState::kSuspect) suspected++;
      if (v == MemberState::kDead) declared_dead++;
    }
    noticed = noticed || suspected > 0;
    std::this_thread::sleep_for(20ms);
  }
  MESSAGE("stalled " << stalled_ms.load() << " ms; observations of the stalled peer: suspect "
                     << suspected.load() << ", dead " << declared_dead.load());
  CHECK(suspected.load() > 0);       // the stall was noticed...
  CHECK(declared_dead.load() == 0);  // ...and refuted in time
  CHECK(c.peer(victim).swarm->stats().protocol.refutations > 0);
  CHECK(c.converged());
}
