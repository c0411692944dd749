// Membership under faults: a partition heals, a whole swarm restarts with
// the same identities, and malformed, stale or contradictory messages are
// refused without harming the view (driven directly into one state machine
// of a simulated swarm).
#include <doctest/doctest.h>

#include <random>

#include "gossip/membership/simulation.hpp"

using namespace gossip::membership;

namespace {

void grow(SimulatedSwarm& s, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; ++i) {
    s.add_peer();
    std::vector<int> seeds;
    if (i > 0) seeds.push_back(static_cast<int>(rng() % static_cast<uint64_t>(i)));
    s.start(i, seeds);
    s.run_for(Millis(100));
  }
  REQUIRE(s.run_until([&] { return s.converged(); }, Millis(60000)));
}

bool nobody_dead(SimulatedSwarm& s) {
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    for (int j = 0; j < static_cast<int>(s.size()); ++j) {
      if (i != j && s.running(i) && s.view(i, j) == MemberState::kDead) return false;
    }
  }
  return true;
}

Message from(SimulatedSwarm& s, int sender, MessageType type) {
  const Member self = s.node(sender).self();
  Message m;
  m.type = type;
  m.from = self.id;
  m.from_address = self.address;
  m.from_incarnation = self.incarnation;
  return m;
}

}  // namespace

TEST_CASE("a 12-peer partition for 20 s heals within two sync intervals") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 21);
  grow(s, 12, 21);
  s.run_for(Millis(10000));
  s.set_partition({0, 2, 4, 6, 8, 10});
  s.run_for(Millis(20000));
  // Each side has written the other off.
  CHECK(s.view(0, 1) == MemberState::kDead);
  CHECK(s.view(1, 0) == MemberState::kDead);
  CHECK(s.node(0).live_count() == 5);
  s.heal();
  auto t = s.run_until([&] { return s.converged(); }, Millis(2 * Options{}.sync_interval));
  REQUIRE(t.has_value());
  MESSAGE("partition of 12 peers (6 | 6, 20 s) merged " << t->count() << " ms after healing");
  s.run_for(Millis(20000));
  CHECK(s.converged());
}

TEST_CASE("all peers restarting at once with the same identities: nobody stays dead") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 22);
  grow(s, 16, 22);
  s.run_for(Millis(5000));
  for (int i = 0; i < 16; ++i) s.crash(i);
  s.run_for(Millis(3000));
  // Everyone comes back with the same bootstrap list; seeds may be slower.
  for (int i = 15; i >= 0; --i) {
    s.start(i, {0, 1, 2});
    s.run_for(Millis(37));
  }
  auto t = s.run_until([&] { return s.converged(); }, Millis(20000));
  REQUIRE(t.has_value());
  MESSAGE("16 restarted peers converged " << t->count() << " ms after the last restart");
  CHECK(nobody_dead(s));
}

TEST_CASE("half the swarm restarts after being declared dead: higher incarnations win") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 23);
  grow(s, 16, 23);
  for (int i = 8; i < 16; ++i) s.crash(i);
  REQUIRE(s.run_until(
      [&] { return s.all_see(8, MemberState::kDead) && s.all_see(15, MemberState::kDead); },
      Millis(30000)));
  const uint64_t old_inc = s.node(0).find(s.id(8))->incarnation;
  std::mt19937_64 rng(5);
  for (int i = 8; i < 16; ++i)
    s.start(i, {static_cast<int>(rng() % 16)});  // some seeds are down too
  auto t = s.run_until([&] { return s.converged() && nobody_dead(s); }, Millis(20000));
  REQUIRE(t.has_value());
  MESSAGE("8 restarted peers alive everywhere after " << t->count() << " ms");
  CHECK(s.node(0).find(s.id(8))->incarnation > old_inc);
}

TEST_CASE("malformed, stale and contradictory messages are refused without harming the view") {
  SimulatedSwarm s(Options{}, NetworkModel{}, 24);
  grow(s, 5, 24);
  Membership& a = s.node(0);
  const TimePoint now = s.now();
  const auto view = a.members();
  const uint64_t self_inc = a.self().incarnation;
  auto unchanged = [&] { return a.members() == view; };

  SUBCASE("a peer claiming to be someone else") {
    Message m = from(s, 2, MessageType::kPing);
    m.seq = 1;
    m.target = s.id(0);
    auto st = a.on_message(s.id(1), m, now);
    CHECK(st.code() == gossip::core::Code::kProtocol);
    CHECK(st.message().find("authenticated as") != std::string::npos);
    Message own = from(s, 0, MessageType::kJoin);
    CHECK_FALSE(a.on_message(s.id(0), own, now).is_ok());
    CHECK(unchanged());
  }
  SUBCASE("probes meant for someone else or for ourselves") {
    Message ping = from(s, 1, MessageType::kPing);
    ping.target = s.id(2);
    CHECK(a.on_message(s.id(1), ping, now).message().find("not to this peer") != std::string::npos);
    Message req = from(s, 1, MessageType::kPingReq);
    req.target = s.id(0);
    req.target_address = "10.9.9.9:1";
    CHECK_FALSE(a.on_message(s.id(1), req, now).is_ok());
    CHECK(a.take_outbox().empty());
    CHECK(unchanged());
  }
  SUBCASE("answers from an unknown peer, late acks") {
    Message ack = from(s, 1, MessageType::kAck);
    ack.from = std::string(64, 'e');
    ack.seq = 999;
    ack.target = ack.from;
    CHECK(a.on_message(ack.from, ack, now).message().find("not in the member list") !=
          std::string::npos);
    Message late = from(s, 1, MessageType::kAck);
    late.seq = 123456;
    late.target = s.id(1);
    CHECK(a.on_message(s.id(1), late, now).is_ok());
    CHECK(a.stats().late_acks >= 1);
    CHECK(unchanged());
  }
  SUBCASE("stale incarnations and a changed address at the same incarnation are ignored") {
    const Member b = *a.find(s.id(1));
    Message m = from(s, 3, MessageType::kPing);
    m.target = s.id(0);
    m.updates = {
        Update{Member{b.id, b.address, b.incarnation - 1, MemberState::kDead}, ""},
        Update{Member{s.id(2), "10.66.66.66:1", a.find(s.id(2))->incarnation, MemberState::kAlive},
               ""}};
    CHECK(a.on_message(s.id(3), m, now).is_ok());
    CHECK(unchanged());
  }
  SUBCASE("a dead peer claiming alive without a higher incarnation stays dead, and is told so") {
    s.crash(4);
    REQUIRE(s.run_until([&] { return s.view(0, 4) == MemberState::kDead; }, Millis(30000)));
    const Member dead = *a.find(s.id(4));
    const auto view2 = a.members();
    (void)a.take_outbox();
    Message ping = from(s, 4, MessageType::kPing);  // its old incarnation
    ping.target = s.id(0);
    REQUIRE(ping.from_incarnation == dead.incarnation);
    CHECK(a.on_message(s.id(4), ping, s.now()).is_ok());
    CHECK(a.members() == view2);
    auto out = a.take_outbox();
    REQUIRE(out.size() == 1);
    REQUIRE_FALSE(out[0].message.updates.empty());
    CHECK(out[0].message.updates[0].member == dead);  // so it can refute
    Message gossip = from(s, 1, MessageType::kPing);
    gossip.target = s.id(0);
    gossip.updates = {
        Update{Member{dead.id, dead.address, dead.incarnation, MemberState::kAlive}, ""}};
    CHECK(a.on_message(s.id(1), gossip, s.now()).is_ok());
    CHECK(a.find(s.id(4))->state == MemberState::kDead);
    ping.from_incarnation = dead.incarnation + 1;  // a refutation
    CHECK(a.on_message(s.id(4), ping, s.now()).is_ok());
    CHECK(a.find(s.id(4))->state == MemberState::kAlive);
  }
  SUBCASE("rumours about ourselves are refuted with a higher incarnation") {
    Message m = from(s, 1, MessageType::kPing);
    m.target = s.id(0);
    m.updates = {Update{Member{s.id(0), a.self().address, self_inc, MemberState::kDead}, ""}};
    CHECK(a.on_message(s.id(1), m, now).is_ok());
    CHECK(a.self().incarnation == self_inc + 1);
    m.updates = {Update{Member{s.id(0), "10.66.66.66:1", self_inc + 5, MemberState::kAlive}, ""}};
    CHECK(a.on_message(s.id(1), m, now).is_ok());
    CHECK(a.self().incarnation == self_inc + 6);
    CHECK(a.self().address != "10.66.66.66:1");
    CHECK(a.self().state == MemberState::kAlive);
    CHECK(a.stats().refutations == 2);
  }
  SUBCASE("dead and left records of members never known are not learned") {
    Message m = from(s, 1, MessageType::kPing);
    m.target = s.id(0);
    m.updates = {Update{Member{std::string(64, 'd'), "10.0.0.99:1", 5, MemberState::kDead}, ""},
                 Update{Member{std::string(64, 'f'), "10.0.0.98:1", 5, MemberState::kLeft}, ""}};
    Message leave = from(s, 1, MessageType::kLeave);
    leave.from = std::string(64, 'c');
    CHECK(a.on_message(s.id(1), m, now).is_ok());
    CHECK(a.on_message(leave.from, leave, now).is_ok());
    CHECK(unchanged());
  }
}
