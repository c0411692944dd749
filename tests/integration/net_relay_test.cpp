// Relayed sessions and hole punching over real loopback TCP with real keys:
// three Nodes (A, a relay R, a private B that reserved with R) in one
// process. A reaches B through R (blob bytes intact, R counts them), or by
// a punch coordinated by R; and R refuses what it must: a target that never
// reserved, an unknown token, circuits over its cap, a half that never
// finds its other half, an idle circuit; a relay that closes mid-blob cuts
// the blob cleanly (reported truncated). Plus the preamble codec and the
// punch rate limiter.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "../../src/net/socket_deadline.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/net/link_filter.hpp"
#include "gossip/net/relay.hpp"
#include "gossip/net/router.hpp"
#include "net_test_support.hpp"

using namespace gossip;
using namespace gossip::net;
using namespace std::chrono_literals;
using testing::IoThreads;
using testing::Recorder;

namespace {

// One Node with a Router: a Recorder for the test's frames (0x10-0x1f) and
// blobs (header byte 0x10), and a Traversal for 0x68-0x6f.
struct Peer {
  Peer(IoThreads& io, const crypto::SwarmKey& swarm, NetConfig cfg = testing::test_config())
      : recorder(std::make_shared<Recorder>()), router(std::make_shared<Router>()) {
    node = std::make_unique<Node>(io.io, cfg, crypto::StaticKeypair::generate(), swarm);
    router->add(0x10, 0x1f, recorder);
    traversal = std::make_unique<Traversal>(io.io, *node);
    traversal->install(*router);
    node->set_handler(router);
    auto st = node->listen({asio::ip::make_address("127.0.0.1"), 0});
    if (!st) throw std::runtime_error(st.to_string());
  }
  ~Peer() {
    traversal->close();
    node->close();
  }
  core::Endpoint endpoint() const { return {"127.0.0.1", node->local_endpoint().port()}; }

  std::shared_ptr<Recorder> recorder;
  std::shared_ptr<Router> router;
  std::unique_ptr<Node> node;
  std::unique_ptr<Traversal> traversal;
};

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds t = 10s) {
  const auto end = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

bool has_session_with(Recorder& r, const std::string& id) {
  for (const auto& s : r.sessions) {
    if (s->peer_id() == id) return true;
  }
  return false;
}

Token token_of(const std::string& hex) {
  REQUIRE(hex.size() == 64);
  Token t{};
  for (size_t i = 0; i < 32; ++i)
    t[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return t;
}

std::vector<uint8_t> make_pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
  return v;
}

// B reserves with R; A opens a session with R.
std::shared_ptr<Session> setup(IoThreads& io, Peer& a, Peer& r, Peer& b) {
  b.traversal->reserve_with(r.endpoint(), r.node->peer_id());
  REQUIRE(eventually([&] { return r.traversal->counters().reservations == 1; }));
  auto s = io.run(a.node->dial(r.endpoint(), r.node->peer_id()));
  REQUIRE(s.is_ok());
  return *s;
}

}  // namespace

TEST_CASE("A reaches a private B through the relay: bytes intact, the relay counts them") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  Peer a(io, swarm), r(io, swarm), b(io, swarm);
  auto to_r = setup(io, a, r, b);
  const auto before_a = a.node->counters().bytes_sent, before_b = b.node->counters().bytes_sent;

  auto s = io.run(a.traversal->dial_relayed(to_r, b.node->peer_id()));
  REQUIRE_MESSAGE(s.is_ok(), s.status().to_string());
  CHECK((*s)->peer_id() == b.node->peer_id());  // authenticated end to end
  CHECK(b.recorder->wait([&] { return has_session_with(*b.recorder, a.node->peer_id()); }));

  constexpr size_t kSize = 8u << 20;
  b.recorder->expected_blob = kSize;
  const auto data = make_pattern(kSize);
  const uint8_t header[] = {0x10};
  auto sent = io.run((*s)->send_blob(header, data));
  CHECK(sent.is_ok());
  REQUIRE(b.recorder->wait([&] { return b.recorder->blob_ends.size() == 1; }, 30s));
  CHECK(b.recorder->blob_ends[0].is_ok());
  CHECK(std::memcmp(b.recorder->blob.data(), data.data(), kSize) == 0);

  const auto c = r.traversal->counters();
  CHECK(c.circuits_opened == 1);
  CHECK(c.circuits_active == 1);
  // Every byte A and B sent over the circuit, and nothing else: at least the
  // blob, at most all they sent since (their sessions with R included).
  REQUIRE(eventually([&] { return r.traversal->counters().relay_bytes >= kSize; }));
  const auto sent_a = a.node->counters().bytes_sent - before_a;
  const auto sent_b = b.node->counters().bytes_sent - before_b;
  CHECK(r.traversal->counters().relay_bytes <= sent_a + sent_b);
  CHECK(r.traversal->counters().relay_bytes >= kSize);
}

TEST_CASE("reach: direct fails, punching is off, the relay carries it and the path is remembered") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig no_punch = testing::test_config();
  no_punch.punch.enabled = false;
  Peer a(io, swarm, no_punch), r(io, swarm), b(io, swarm);
  setup(io, a, r, b);
  // B's advertised address is one nobody listens on: truly undialable.
  const core::Endpoint nowhere{"127.0.0.1", 1};
  auto s = io.run(a.node->reach(nowhere, b.node->peer_id()));
  REQUIRE_MESSAGE(s.is_ok(), s.status().to_string());
  CHECK((*s)->peer_id() == b.node->peer_id());
  const auto paths = a.traversal->paths();
  REQUIRE(paths.contains(b.node->peer_id()));
  const PathInfo& p = paths.at(b.node->peer_id());
  CHECK(p.kind == PathKind::kRelayed);
  CHECK(p.via == r.node->peer_id());
  CHECK(p.reason.find("direct: connect to 127.0.0.1:1") != std::string::npos);
  CHECK(a.traversal->counters().relayed_ok == 1);
}

TEST_CASE("reach: a punch coordinated by R connects A and B without the relay") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  Peer a(io, swarm), r(io, swarm), b(io, swarm);
  auto to_r = setup(io, a, r, b);
  // Direct to B's real port is what the punch uses; the direct dial itself
  // goes to a dead port, as to a peer behind NAT.
  auto s =
      io.run(a.traversal->dial_punched(to_r, b.node->peer_id(), b.node->local_endpoint().port()));
  REQUIRE_MESSAGE(s.is_ok(), s.status().to_string());
  CHECK((*s)->peer_id() == b.node->peer_id());
  CHECK(b.recorder->wait([&] { return has_session_with(*b.recorder, a.node->peer_id()); }));
  // Exactly one side runs the handshake as initiator: the lower peer id.
  CHECK((*s)->is_initiator() == (a.node->peer_id() < b.node->peer_id()));
  CHECK(r.traversal->counters().circuits_opened == 0);
  CHECK(eventually([&] { return b.traversal->counters().punched_ok == 1; }));
}

TEST_CASE("reach: a link the LinkFilter cuts is not retried by a punch or a relay") {
  // The simulator's partitions: a detour must not undo them.
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  Peer a(io, swarm), r(io, swarm), b(io, swarm);
  auto filter = std::make_shared<LinkFilter>(a.router);
  a.node->set_handler(filter);
  a.node->set_link_filter(filter);
  const std::string b_id = b.node->peer_id();
  filter->block([b_id](std::string_view id) { return id == b_id; });
  setup(io, a, r, b);
  auto s = io.run(a.node->reach(b.endpoint(), b_id));
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().message().find("blocked by the link filter") != std::string::npos);
  const auto c = a.traversal->counters();
  CHECK(c.punched_failed + c.punched_ok + c.relayed_failed + c.relayed_ok == 0);
  CHECK(r.traversal->counters().circuits_opened == 0);
}

TEST_CASE("a peer torn down mid-punch: its reach ends as closed and never touches its Node") {
  // The io_context outlives the peer here, as in any host that runs many
  // peers on one pool: A's reach resumes after A's Node is gone. It must see
  // that its Traversal closed; before, it went on to the next helper through
  // the destroyed Node (use after free).
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig slow = testing::test_config();
  slow.punch.delay = 3000ms;  // R tells both ends to wait this long before dialing
  auto a = std::make_unique<Peer>(io, swarm);
  Peer r(io, swarm, slow), b(io, swarm);
  setup(io, *a, r, b);
  const core::Endpoint nowhere{"127.0.0.1", 1};
  auto reached = io.spawn(a->node->reach(nowhere, b.node->peer_id()));
  // Direct fails at once; the punch request and both PUNCH_SYNCs take a few
  // ms on loopback: both ends then wait out the 3 s delay.
  std::this_thread::sleep_for(800ms);
  a.reset();  // closes A's Traversal and Node, then destroys them
  REQUIRE(reached.wait_for(10s) == std::future_status::ready);
  const auto r_a = reached.get();
  REQUIRE(r_a.has_value());
  CHECK_FALSE(r_a->is_ok());
  CHECK_MESSAGE(r_a->status().message() == "traversal closed", r_a->status().to_string());
  // B, still waiting to punch a peer that is gone, is torn down too (its
  // Peer leaves scope with the punch pending), and R is unharmed.
  CHECK(r.traversal->counters().circuits_active == 0);
}

TEST_CASE("a relayed peer torn down mid-blob: the circuit ends, the other side sees it closed") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig no_punch = testing::test_config();
  no_punch.punch.enabled = false;
  Peer a(io, swarm, no_punch), r(io, swarm);
  auto b = std::make_unique<Peer>(io, swarm);
  setup(io, a, r, *b);
  const core::Endpoint nowhere{"127.0.0.1", 1};
  auto s = io.run(a.node->reach(nowhere, b->node->peer_id()));
  REQUIRE_MESSAGE(s.is_ok(), s.status().to_string());
  REQUIRE(r.traversal->counters().circuits_active == 1);
  constexpr size_t kSize = 32u << 20;
  b->recorder->expected_blob = kSize;
  const auto data = make_pattern(kSize);
  const uint8_t header[] = {0x10};
  auto sending = io.spawn((*s)->send_blob(header, data));
  REQUIRE(eventually([&] { return r.traversal->counters().relay_bytes > (1u << 20); }));
  b.reset();  // mid-blob: B's Traversal, Node and sessions go away
  REQUIRE(sending.wait_for(10s) == std::future_status::ready);
  CHECK(eventually([&] { return !(*s)->is_open(); }));
  CHECK(eventually([&] { return r.traversal->counters().circuits_active == 0; }));
  CHECK(r.traversal->counters().relay_bytes < kSize);  // cut, not delivered
}

TEST_CASE("SocketDeadline: a deadline handler queued as the operation finished closes nothing") {
  // The race the punch and relay-half dials had: the deadline passes while
  // the strand is busy with the operation's own completion, so its handler
  // is queued behind it and cancel() can no longer stop it. The old handler
  // closed the socket it captured by reference, which by then was in use
  // for the next step or gone with the coroutine's frame.
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  auto strand = asio::make_strand(io);
  auto socket = std::make_shared<asio::ip::tcp::socket>(strand, asio::ip::tcp::v4());
  detail::SocketDeadline deadline(strand, socket);
  std::promise<void> done;
  asio::post(strand, [&] {
    deadline.arm(1ms);
    // The other thread takes the expiry meanwhile and queues the handler on
    // the strand, behind this one.
    std::this_thread::sleep_for(100ms);
    deadline.disarm();                              // the awaited operation finished first
    asio::post(strand, [&] { done.set_value(); });  // runs after the queued handler
  });
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  done.get_future().wait();
  CHECK(socket->is_open());
  CHECK_FALSE(deadline.expired());
  // And a deadline left armed does close the socket.
  asio::post(strand, [&] { deadline.arm(1ms); });
  std::this_thread::sleep_for(200ms);
  std::promise<bool> open_after;
  asio::post(strand, [&] { open_after.set_value(socket->is_open()); });
  CHECK_FALSE(open_after.get_future().get());
  CHECK(deadline.expired());
  guard.reset();
  io.stop();
  t1.join();
  t2.join();
}

TEST_CASE("the relay refuses a target that never reserved, and a token nobody asked for") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  Peer a(io, swarm), r(io, swarm), b(io, swarm);
  auto to_r = io.run(a.node->dial(r.endpoint(), r.node->peer_id()));
  REQUIRE(to_r.is_ok());
  auto plain = io.run(b.node->dial(r.endpoint(), r.node->peer_id()));  // no reservation
  REQUIRE(plain.is_ok());
  auto s = io.run(a.traversal->dial_relayed(*to_r, b.node->peer_id()));
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().message().find("never asked to be reached") != std::string::npos);
  CHECK(r.traversal->counters().refused_not_reserved == 1);

  // A half with a made-up token: closed at once, counted.
  asio::io_context raw;
  asio::ip::tcp::socket half(raw);
  half.connect(r.node->local_endpoint());
  Token token{};
  crypto::random_bytes(token);
  asio::write(half, asio::buffer(encode_preamble(PreambleKind::kRelay, token)));
  uint8_t byte;
  asio::error_code ec;
  half.read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::eof);
  CHECK(eventually([&] { return r.traversal->counters().refused_token == 1; }));
  CHECK(r.traversal->counters().circuits_opened == 0);
}

TEST_CASE("the relay refuses circuits over its cap, and pairs a half only in time") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig capped = testing::test_config();
  capped.relay.max_circuits = 1;
  capped.relay.pair_timeout = 300ms;
  Peer a(io, swarm), r(io, swarm, capped), b(io, swarm);
  auto to_r = setup(io, a, r, b);
  auto first = io.run(a.traversal->dial_relayed(to_r, b.node->peer_id()));
  REQUIRE(first.is_ok());
  auto second = io.run(a.traversal->dial_relayed(to_r, b.node->peer_id()));
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().message().find("max_circuits") != std::string::npos);
  CHECK(r.traversal->counters().refused_cap == 1);
  (*first)->close(core::Status(core::Code::kClosed, "done"));
  REQUIRE(eventually([&] { return r.traversal->counters().circuits_active == 0; }));

  // A RELAY_CONNECT whose halves never come (a client speaking the frames
  // itself): the token expires after pair_timeout and is refused later.
  auto client = std::make_shared<Recorder>();
  auto c = testing::make_node(io.io, swarm, client);
  auto cs = io.run(c->dial(r.endpoint(), r.node->peer_id()));
  REQUIRE(cs.is_ok());
  const std::string ask = nlohmann::json{{"rid", 7}, {"target", b.node->peer_id()}}.dump();
  REQUIRE((*cs)->try_send_frame(kRelayConnect, testing::bytes_of(ask)));
  REQUIRE(client->wait([&] { return !client->frames.empty(); }));
  CHECK(client->frames[0].first == kRelayReady);
  const auto ready = nlohmann::json::parse(client->frames[0].second);
  const Token token = token_of(ready["token"].get<std::string>());
  // B was told and connected its half; A's half never comes.
  CHECK(eventually([&] { return r.traversal->counters().pair_timeouts == 1; }, 3s));
  asio::io_context raw;
  asio::ip::tcp::socket late(raw);
  late.connect(r.node->local_endpoint());
  asio::write(late, asio::buffer(encode_preamble(PreambleKind::kRelay, token)));
  CHECK(eventually([&] { return r.traversal->counters().refused_token == 1; }));
  c->close();
}

TEST_CASE("an idle circuit is closed, and so are the sessions over it") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig quick = testing::test_config();
  quick.relay.idle_timeout = 400ms;
  Peer a(io, swarm), r(io, swarm, quick), b(io, swarm);
  auto to_r = setup(io, a, r, b);
  auto s = io.run(a.traversal->dial_relayed(to_r, b.node->peer_id()));
  REQUIRE(s.is_ok());
  // Keepalives come every 15 s by default: the circuit idles out first.
  CHECK(eventually([&] { return r.traversal->counters().idle_closed == 1; }, 5s));
  CHECK(eventually([&] { return !(*s)->is_open(); }, 5s));
  CHECK(r.traversal->counters().circuits_active == 0);
}

TEST_CASE(
    "a relay that closes mid-blob cuts the exchange cleanly: the blob is reported truncated") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig slow = testing::test_config();
  slow.relay.max_bytes_per_s = 2u << 20;  // 2 MiB/s: the blob takes seconds
  Peer a(io, swarm), r(io, swarm, slow), b(io, swarm);
  auto to_r = setup(io, a, r, b);
  auto s = io.run(a.traversal->dial_relayed(to_r, b.node->peer_id()));
  REQUIRE(s.is_ok());
  constexpr size_t kSize = 16u << 20;
  b.recorder->expected_blob = kSize;
  const auto data = make_pattern(kSize);
  const uint8_t header[] = {0x10};
  auto sending = io.spawn((*s)->send_blob(header, data));
  REQUIRE(eventually([&] { return r.traversal->counters().relay_bytes > (1u << 20); }));
  const auto t0 = std::chrono::steady_clock::now();
  r.traversal->close();  // the relay goes away
  REQUIRE(b.recorder->wait([&] { return b.recorder->blob_ends.size() == 1; }, 10s));
  CHECK_FALSE(b.recorder->blob_ends[0].is_ok());
  CHECK(b.recorder->blob_ends[0].message().find("truncated") != std::string::npos);
  CHECK_FALSE(sending.get()->is_ok());
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  // The relay paced the circuit: about 2 MiB/s, not loopback speed.
  CHECK(r.traversal->counters().relay_bytes < kSize);
}

TEST_CASE("a coordinator refuses punch requests over its rate") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig strict = testing::test_config();
  strict.punch.max_per_minute = 2;
  Peer a(io, swarm), r(io, swarm, strict), b(io, swarm);
  auto to_r = setup(io, a, r, b);
  const uint16_t port = b.node->local_endpoint().port();
  auto first = io.run(a.traversal->dial_punched(to_r, b.node->peer_id(), port));
  CHECK_MESSAGE(first.is_ok(), first.status().to_string());
  // The second is served but cannot connect: the first punched connection
  // holds the only 4-tuple the two listening ports have.
  auto second = io.run(a.traversal->dial_punched(to_r, b.node->peer_id(), port));
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().message().find("max_per_minute") == std::string::npos);
  auto third = io.run(a.traversal->dial_punched(to_r, b.node->peer_id(), port));
  REQUIRE_FALSE(third.is_ok());
  CHECK(third.status().message().find("max_per_minute") != std::string::npos);
  CHECK(r.traversal->counters().punch_refused_rate == 1);
}

TEST_CASE("preamble: round trip, and nothing else decodes as one") {
  Token t{};
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint8_t>(i * 7);
  for (auto kind : {PreambleKind::kRelay, PreambleKind::kPunch}) {
    const auto bytes = encode_preamble(kind, t);
    CHECK(bytes[0] == 0);
    CHECK(bytes[1] == 0);  // no Noise message has length 0
    const auto p = decode_preamble(bytes);
    REQUIRE(p);
    CHECK(p->kind == kind);
    CHECK(p->token == t);
  }
  auto bytes = encode_preamble(PreambleKind::kRelay, t);
  bytes[5] ^= 1;
  CHECK_FALSE(decode_preamble(bytes));
  std::array<uint8_t, kPreambleBytes> zeros{};
  CHECK_FALSE(decode_preamble(zeros));
}

TEST_CASE("MinuteLimiter: per key, a sliding minute") {
  MinuteLimiter lim(2);
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  CHECK(lim.allow("a", t0));
  CHECK(lim.allow("a", t0 + 1s));
  CHECK_FALSE(lim.allow("a", t0 + 2s));
  CHECK(lim.allow("b", t0 + 2s));  // another key has its own budget
  CHECK_FALSE(lim.allow("a", t0 + 59s));
  CHECK(lim.allow("a", t0 + 60s));  // the first call left the window
  CHECK_FALSE(lim.allow("a", t0 + 60s));
}

TEST_CASE("throughput: one blob direct and through the relay, same run (printed)") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig open_relay = testing::test_config();
  open_relay.relay.max_bytes_per_s = uint64_t{1} << 40;  // no pacing: measure the copy
  Peer a(io, swarm), r(io, swarm, open_relay), b(io, swarm);
  auto to_r = setup(io, a, r, b);
  auto relayed = io.run(a.traversal->dial_relayed(to_r, b.node->peer_id()));
  REQUIRE(relayed.is_ok());
  auto direct = io.run(a.node->dial(b.node->local_endpoint(), b.node->peer_id()));
  REQUIRE(direct.is_ok());
  constexpr size_t kSize = 32u << 20;
  const auto data = make_pattern(kSize);
  const uint8_t header[] = {0x10};
  double best[2] = {0, 0};  // bytes/s: direct, relayed
  for (int round = 0; round < 3; ++round) {
    for (int which = 0; which < 2; ++which) {
      {
        std::lock_guard l(b.recorder->mu);
        b.recorder->blob_ends.clear();
        b.recorder->expected_blob = kSize;
      }
      const auto t0 = std::chrono::steady_clock::now();
      auto s = which == 0 ? *direct : *relayed;
      REQUIRE(io.run(s->send_blob(header, data)).is_ok());
      REQUIRE(b.recorder->wait([&] { return b.recorder->blob_ends.size() == 1; }, 30s));
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      CHECK(b.recorder->blob_ends[0].is_ok());
      best[which] = std::max(best[which], static_cast<double>(kSize) / secs);
    }
  }
  CHECK(std::memcmp(b.recorder->blob.data(), data.data(), kSize) == 0);
  MESSAGE("32 MiB blob, best of 3: direct " << best[0] / (1 << 20) << " MiB/s, relayed "
                                            << best[1] / (1 << 20) << " MiB/s (ratio "
                                            << best[1] / best[0] << ")");
  CHECK(best[1] > 0);
}
