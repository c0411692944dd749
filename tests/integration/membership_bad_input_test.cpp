// Bad input over the wire: an authenticated peer (it holds the swarm key and
// completes the real handshake) sends malformed, oversized and contradictory
// membership frames to a member of a 4-peer swarm. Each is rejected without
// harming anyone's view; the protocol's precedence rules hold for claims
// about unknown, stale, dead and self entries.
#include <doctest/doctest.h>

#include <random>

#include "membership_cluster.hpp"

using namespace gossip;
using namespace gossip::membership;
using namespace gossip::membership::testing;

namespace {

std::string random_id(std::mt19937_64& rng) {
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 64; ++i) id += kHex[rng() & 0x0f];
  return id;
}

// Dials `address` expecting `id`; null on failure (co_spawn futures need a
// default-constructible result).
asio::awaitable<std::shared_ptr<net::Session>> dial_or_null(std::shared_ptr<net::Node> node,
                                                            std::string address, std::string id) {
  auto ep = net::parse_endpoint(address);
  if (!ep) co_return nullptr;
  auto r = co_await node->dial(*ep, id);
  co_return r ? *r : nullptr;
}

std::vector<uint8_t> garbage(size_t n, uint8_t fill) {
  return std::vector<uint8_t>(n, fill);
}

}  // namespace

TEST_CASE(
    "malformed, oversized and contradictory membership frames are rejected without harming the "
    "view") {
  Cluster c(fast_options());
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  for (int i = 1; i < 4; ++i) REQUIRE(c.start_and_join(c.add(), {0}).is_ok());
  REQUIRE(Cluster::wait_until([&] { return c.converged(); }, 10s).has_value());
  Peer& victim = c.peer(0);
  Swarm& vs = *victim.swarm;

  // The attacker: a real Node with the swarm key but no membership of its own,
  // which may send control frames up to 1 MiB.
  net::NetConfig nc;
  nc.frames.max_control_body = 1 << 20;
  auto attacker_identity = crypto::StaticKeypair::generate();
  const std::string attacker_id = crypto::peer_id(attacker_identity.public_key);
  auto attacker = std::make_shared<net::Node>(c.io(), nc, attacker_identity, c.swarm_key());
  REQUIRE(attacker->listen({asio::ip::make_address("127.0.0.1"), 0}).is_ok());
  const std::string attacker_address =
      "127.0.0.1:" + std::to_string(attacker->local_endpoint().port());
  auto dial = [&] {
    auto s =
        asio::co_spawn(c.io(), dial_or_null(attacker, victim.address, victim.id), asio::use_future)
            .get();
    REQUIRE(s != nullptr);
    return s;
  };
  auto session = dial();
  auto send = [&](uint8_t type, const std::vector<uint8_t>& body) {
    auto f = asio::co_spawn(c.io(), session->send_frame(type, body), asio::use_future);
    return f.get();
  };
  auto message = [&](MessageType type) {
    Message m;
    m.type = type;
    m.from = attacker_id;
    m.from_address = attacker_address;
    m.from_incarnation = 1;
    if (type == MessageType::kPing) m.target = victim.id;
    return m;
  };
  auto send_message = [&](const Message& m) {
    return send(static_cast<uint8_t>(m.type), encode(m));
  };
  uint64_t expect_rejected = vs.stats().frames_rejected;
  auto rejected_reaches = [&](uint64_t n) {
    return Cluster::wait_until([&] { return vs.stats().frames_rejected >= n; }, 3s).has_value();
  };

  // Malformed: random bytes as a PING, an empty ACK, an unknown type of the
  // membership range.
  REQUIRE(send(0x10, garbage(100, 0xc1)).is_ok());
  REQUIRE(send(0x11, {}).is_ok());
  REQUIRE(send(0x2a, garbage(10, 0x80)).is_ok());
  expect_rejected += 3;
  CHECK(rejected_reaches(expect_rejected));

  // Oversized content: 257 piggybacked updates (the limit is 256).
  std::mt19937_64 rng(99);
  Message big = message(MessageType::kPing);
  for (int i = 0; i < 257; ++i) {
    big.updates.push_back(
        Update{Member{random_id(rng), "10.1.1.1:7400", 1, MemberState::kAlive}, ""});
  }
  REQUIRE(send_message(big).is_ok());
  expect_rejected += 1;
  CHECK(rejected_reaches(expect_rejected));

  // Contradictory: a sender claiming to be another member, an ACK from a
  // peer the victim does not know, a PING addressed to someone else.
  Message impostor = message(MessageType::kPing);
  impostor.from = c.peer(2).id;
  impostor.from_address = c.peer(2).address;
  REQUIRE(send_message(impostor).is_ok());
  Message stray_ack = message(MessageType::kAck);
  stray_ack.target = attacker_id;
  stray_ack.seq = 1;
  REQUIRE(send_message(stray_ack).is_ok());
  Message misaddressed = message(MessageType::kPing);
  misaddressed.target = c.peer(3).id;
  REQUIRE(send_message(misaddressed).is_ok());
  expect_rejected += 3;
  CHECK(rejected_reaches(expect_rejected));
  CHECK(session->is_open());                          // none of that costs the session
  CHECK_FALSE(vs.state_of(attacker_id).has_value());  // rejected messages teach nothing

  // Stale incarnation: "peer 2 is dead" at an older incarnation is ignored.
  const uint64_t inc2 = c.peer(2).swarm->self().incarnation;
  Message stale = message(MessageType::kPing);
  stale.updates.push_back(
      Update{Member{c.peer(2).id, c.peer(2).address, inc2 - 1, MemberState::kDead}, ""});
  REQUIRE(send_message(stale).is_ok());
  // A dead member claiming alive without a higher incarnation stays dead.
  const std::string ghost = random_id(rng);
  auto ghost_update = [&](uint64_t inc, MemberState st) {
    Message m = message(MessageType::kPing);
    m.updates.push_back(Update{Member{ghost, "127.0.0.1:9", inc, st}, ""});
    REQUIRE(send_message(m).is_ok());
  };
  ghost_update(7, MemberState::kAlive);
  ghost_update(7, MemberState::kDead);
  ghost_update(7, MemberState::kAlive);
  ghost_update(6, MemberState::kAlive);
  CHECK(Cluster::wait_until([&] { return vs.state_of(attacker_id).has_value(); }, 3s).has_value());
  std::this_thread::sleep_for(100ms);
  CHECK(vs.state_of(ghost) == MemberState::kDead);
  CHECK(vs.state_of(c.peer(2).id) == MemberState::kAlive);
  // An accusation against the victim itself is refuted, not believed.
  const uint64_t victim_inc = vs.self().incarnation;
  Message accuse = message(MessageType::kPing);
  accuse.updates.push_back(
      Update{Member{victim.id, victim.address, victim_inc, MemberState::kDead}, ""});
  REQUIRE(send_message(accuse).is_ok());
  CHECK(Cluster::wait_until([&] { return vs.self().incarnation > victim_inc; }, 3s).has_value());
  CHECK(vs.self().state == MemberState::kAlive);

  // Oversized frame: 100 KiB is above the 64 KiB control-frame limit; the
  // victim's net layer closes the session before allocating it.
  const uint64_t bad_frames = victim.node->counters().bad_frame;
  REQUIRE(send(0x10, garbage(100 * 1024, 0)).is_ok());
  CHECK(Cluster::wait_until([&] { return !session->is_open(); }, 3s).has_value());
  CHECK(victim.node->counters().bad_frame == bad_frames + 1);

  // Every real peer still sees every other real peer alive.
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      if (i != j) CHECK(c.view(i, j) == MemberState::kAlive);
    }
  }
  attacker->close();
}
