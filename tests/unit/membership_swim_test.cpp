// Membership scenarios on the simulated swarm (real encoded messages, a
// simulated clock and network): joins converge, a crash is detected
// everywhere in time and the dead peer is never picked again, a graceful
// leave spreads at once, and a briefly stalled peer ends up alive.
#include <doctest/doctest.h>

#include <random>

#include "gossip/membership/simulation.hpp"

using namespace gossip::membership;

namespace {

// Starts `n` peers, each joining through a random earlier one, `gap` apart,
// and waits for convergence.
void grow(SimulatedSwarm& s, int n, Millis gap, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; ++i) {
    s.add_peer();
    std::vector<int> seeds;
    if (i > 0) seeds.push_back(static_cast<int>(rng() % static_cast<uint64_t>(i)));
    s.start(i, seeds);
    s.run_for(gap);
  }
  REQUIRE(s.run_until([&] { return s.converged(); }, Millis(60000)));
}

// Runs `duration` and checks every 100 ms that no running peer holds
// `subject` as alive or picks it as a live peer.
void check_never_picked(SimulatedSwarm& s, int subject, Millis duration) {
  for (Millis t{0}; t < duration; t += Millis(100)) {
    s.run_for(Millis(100));
    for (int i = 0; i < static_cast<int>(s.size()); ++i) {
      if (!s.running(i) || i == subject) continue;
      REQUIRE(s.view(i, subject) != MemberState::kAlive);
      for (int k = 0; k < 4; ++k) {
        auto pick = s.node(i).random_live_member();
        REQUIRE(pick.has_value());
        REQUIRE(pick->id != s.id(subject));
      }
    }
  }
}

}  // namespace

TEST_CASE("32 peers joining through random earlier members converge to full views") {
  SimulatedSwarm s(Options{}, NetworkModel{Millis(1), Millis(30), 0.01}, 1);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 32; ++i) {
    s.add_peer();
    s.start(i, i == 0 ? std::vector<int>{}
                      : std::vector<int>{static_cast<int>(rng() % static_cast<uint64_t>(i))});
    s.run_for(Millis(200));
  }
  auto t = s.run_until([&] { return s.converged(); }, Millis(30000));
  REQUIRE(t.has_value());
  MESSAGE("32 peers (1% loss) converged " << t->count() << " ms after the last join");
  CHECK(s.undecodable() == 0);
  for (int i = 0; i < 32; ++i) CHECK(s.node(i).live_count() == 31);
}

TEST_CASE("16 peers joining through one seed at the same moment converge") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 2);
  for (int i = 0; i < 16; ++i) s.add_peer();
  s.start(0, {});
  s.run_for(Millis(500));
  for (int i = 1; i < 16; ++i) s.start(i, {0});
  auto t = s.run_until([&] { return s.converged(); }, Millis(20000));
  REQUIRE(t.has_value());
  MESSAGE("16 simultaneous joiners converged in " << t->count() << " ms");
  CHECK(*t < Millis(10000));
}

TEST_CASE("a joiner whose seed is not up yet keeps retrying") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 3);
  s.add_peer();
  s.add_peer();
  s.start(1, {0});  // peer 0 is down
  s.run_for(Millis(5000));
  CHECK_FALSE(s.node(1).joined());
  s.start(0, {});
  REQUIRE(s.run_until([&] { return s.converged(); }, Millis(5000)));
  CHECK(s.node(1).joined());
}

TEST_CASE("a crash is known everywhere within 15 s and the dead peer is never picked") {
  SimulatedSwarm s(Options{}, NetworkModel{Millis(1), Millis(20), 0.01}, 4);
  grow(s, 16, Millis(100), 4);
  s.run_for(Millis(10000));
  const int victim = 7;
  s.crash(victim);
  auto t = s.run_until([&] { return s.all_see(victim, MemberState::kDead); }, Millis(30000));
  REQUIRE(t.has_value());
  MESSAGE("crash known everywhere after " << t->count() << " ms (16 peers, 1% loss)");
  CHECK(*t <= Millis(15000));
  check_never_picked(s, victim, Millis(30000));
  for (int i = 0; i < 16; ++i) {
    if (i == victim) continue;
    bool dead_event = false;
    for (const auto& [at, e] : s.events(i)) {
      dead_event |= e.kind == EventKind::kDead && e.member.id == s.id(victim);
    }
    CHECK(dead_event);
  }
}

TEST_CASE("a graceful leave is known everywhere within 3 s, even with 5% loss") {
  SimulatedSwarm s(Options{}, NetworkModel{Millis(1), Millis(20), 0.05}, 5);
  grow(s, 16, Millis(100), 5);
  const int leaver = 3;
  s.leave(leaver);
  auto t = s.run_until([&] { return s.all_see(leaver, MemberState::kLeft); }, Millis(10000));
  REQUIRE(t.has_value());
  MESSAGE("leave known everywhere after " << t->count() << " ms");
  CHECK(*t <= Millis(3000));
  check_never_picked(s, leaver, Millis(10000));
  for (int i = 0; i < 16; ++i) {
    if (i == leaver) continue;
    bool left = false, dead = false;
    for (const auto& [at, e] : s.events(i)) {
      if (e.member.id != s.id(leaver)) continue;
      left |= e.kind == EventKind::kLeft;
      dead |= e.kind == EventKind::kDead;
    }
    CHECK(left);
    CHECK_FALSE(dead);  // left, not failed
  }
}

TEST_CASE("a peer stalled for half the suspicion timeout ends up alive everywhere") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 6);
  grow(s, 16, Millis(100), 6);
  s.run_for(Millis(5000));
  const int stalled = 9;
  const Millis half = s.node(0).suspicion_timeout(0) / 2;
  const uint64_t inc_before = s.node(stalled).self().incarnation;
  s.set_stalled(stalled, true);
  bool ever_dead = false;
  for (Millis t{0}; t < half; t += Millis(50)) {
    s.run_for(Millis(50));
    for (int i = 0; i < 16; ++i)
      ever_dead |= i != stalled && s.view(i, stalled) == MemberState::kDead;
  }
  s.set_stalled(stalled, false);
  auto t = s.run_until([&] { return s.all_see(stalled, MemberState::kAlive); }, Millis(10000));
  REQUIRE(t.has_value());
  const std::string outcome = ever_dead ? "declared dead, then refuted" : "never declared dead";
  MESSAGE("stalled " << half.count() << " ms: " << outcome << "; alive everywhere " << t->count()
                     << " ms after the stall; incarnation +"
                     << s.node(stalled).self().incarnation - inc_before);
  CHECK_FALSE(ever_dead);
  s.run_for(Millis(20000));
  CHECK(s.converged());
}

TEST_CASE("membership bytes stay flat while nothing changes, and syncs are rare") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 7);
  grow(s, 24, Millis(50), 7);
  s.run_for(Millis(30000));
  const uint64_t b0 = s.frame_bytes();
  const uint64_t m0 = s.messages();
  s.run_for(Millis(60000));
  const double per_peer_s = static_cast<double>(s.frame_bytes() - b0) / 24 / 60;
  const double msgs_per_peer_s = static_cast<double>(s.messages() - m0) / 24 / 60;
  MESSAGE("24 peers idle: " << per_peer_s << " bytes and " << msgs_per_peer_s
                            << " messages per peer per second");
  CHECK(msgs_per_peer_s < 2.5);  // one PING + its ACK per period, a SYNC pair every 10 s
  CHECK(per_peer_s < 1000);
  CHECK(s.rejected() == 0);
}

TEST_CASE("an owner that ticks only at next_deadline() keeps probing on schedule") {
  const TimePoint t0{};
  auto a = Membership::create(Options{}, std::string(64, 'a'), "10.0.0.1:7400", 1, 9, t0);
  REQUIRE(a.is_ok());
  Message join;
  join.type = MessageType::kJoin;
  join.from = std::string(64, 'b');
  join.from_address = "10.0.0.2:7400";
  REQUIRE(a->on_message(join.from, join, t0).is_ok());
  (void)a->take_outbox();
  TimePoint now = t0;
  int pings = 0, ping_reqs = 0;
  while (now < t0 + Millis(10000)) {
    const TimePoint next = a->next_deadline();
    REQUIRE(next > now);
    REQUIRE(next <= now + Options{}.probe_interval);
    now = next;
    a->tick(now);
    for (const auto& out : a->take_outbox()) {
      pings += out.message.type == MessageType::kPing;
      ping_reqs += out.message.type == MessageType::kPingReq;
    }
  }
  // Nobody answers: the member is probed, suspected, then declared dead.
  CHECK(pings >= 2);
  CHECK(ping_reqs == 0);  // no other member to ask
  CHECK(a->find(join.from)->state == MemberState::kDead);
  CHECK(a->local_health() > 0);  // probes without helpers that fail count against us
}

TEST_CASE("a peer's new flags and incarnation (set_self_address) reach every member") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 5);
  grow(s, 8, Millis(200), 11);
  Membership& p = s.node(3);
  const Member before = p.self();
  CHECK_FALSE(p.set_self_address(before.address, before.flags));  // unchanged: nothing to say
  CHECK_FALSE(p.set_self_address("not an address", kMemberPrivate));
  CHECK_FALSE(p.set_self_address(before.address, 0x80));  // unknown flag bit
  REQUIRE(p.set_self_address(before.address, kMemberPrivate));
  CHECK(p.self().incarnation == before.incarnation + 1);
  CHECK(p.self().is_private());
  REQUIRE(s.run_until(
      [&] {
        for (int i = 0; i < 8; ++i) {
          if (i == 3) continue;
          auto m = s.node(i).find(s.id(3));
          if (!m || !m->is_private() || m->incarnation != before.incarnation + 1) return false;
        }
        return true;
      },
      Millis(10000)));
  for (int i = 0; i < 8; ++i) {
    if (i != 3) CHECK(s.view(i, 3) == MemberState::kAlive);
  }
  CHECK(s.rejected() == 0);
}
