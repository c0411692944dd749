// Hostile and broken peers against a real Node over loopback TCP: every byte
// of every handshake message flipped, transport messages flipped, replayed,
// reordered and dropped, blob data flipped, a connection cut mid-blob, bad
// frame lengths from an authenticated peer, a slow-loris handshake, a
// connection flood from one address, and low-order (all-zero) public keys.
// In every case the session is closed and no forged or partial plaintext
// reaches the upper layer.
#include <doctest/doctest.h>

#include "net_test_support.hpp"

using namespace gossip;
using namespace gossip::net;
using namespace gossip::net::testing;

TEST_CASE("every byte of every handshake message flipped: no session, nothing delivered") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto ra = std::make_shared<Recorder>(), rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra);
  auto b = make_node(io.io, swarm, rb);
  // Handshake message sizes for XXpsk3 with empty payloads (dir, index, bytes).
  struct Msg {
    int dir;
    size_t index;
    size_t size;
  };
  const std::vector<Msg> msgs = {{0, 0, 48}, {1, 0, 96}, {0, 1, 64}};
  std::vector<std::tuple<int, size_t, size_t>> cases;
  for (const auto& m : msgs)
    for (size_t pos = 0; pos < m.size; ++pos) cases.emplace_back(m.dir, m.index, pos);
  std::atomic<size_t> sizes_ok{0};
  Relay relay(b->local_endpoint(),
              [&](size_t conn, int dir, size_t index, std::vector<uint8_t>& msg) {
                const auto& [cdir, cindex, pos] = cases[conn];
                for (const auto& m : msgs)
                  if (m.dir == dir && m.index == index && m.size == msg.size()) sizes_ok++;
                if (dir == cdir && index == cindex) msg[pos] ^= 0x01;
                return Action::kForward;
              });
  size_t dial_failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto s = io.run(a->dial(relay.endpoint()));
    if (!s) {
      ++dial_failed;
      continue;
    }
    // Only a flip in message 3 lets the initiator finish; the responder
    // rejected it, so the session dies without delivering anything.
    CHECK(std::get<0>(cases[i]) == 0);
    CHECK(std::get<1>(cases[i]) == 1);
    (void)io.run((*s)->send_frame(0x10, bytes_of("must not arrive")));
    REQUIRE(ra->wait([&] { return ra->closes.size() == i + 1 - dial_failed; }));
  }
  CHECK(sizes_ok.load() >= cases.size());  // the message sizes above are right
  CHECK(dial_failed == 48 + 96);
  CHECK(b->counters().handshakes_ok == 0);
  REQUIRE(rb->wait([&] { return b->counters().handshake_failed == cases.size(); }));
  std::lock_guard l(rb->mu);
  CHECK(rb->sessions.empty());
  CHECK(rb->frames.empty());
  CHECK(ra->frames.empty());
}

namespace {

// Dials b through a relay applying `tamper` to dialer->listener transport
// messages, sends frames "one", "two", "three" as separate Noise messages and
// returns what b received once the session closed (or after a timeout).
std::vector<std::string> transport_attack(Action act_on_first, bool flip,
                                          CounterSnapshot* counters) {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto ra = std::make_shared<Recorder>(), rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra);
  auto b = make_node(io.io, swarm, rb);
  Relay relay(b->local_endpoint(), [&](size_t, int dir, size_t index, std::vector<uint8_t>& msg) {
    if (dir != 0 || index != 2) return Action::kForward;  // first transport message
    if (flip) msg[msg.size() / 2] ^= 0x80;
    return act_on_first;
  });
  auto s = io.run(a->dial(relay.endpoint()));
  REQUIRE(s.is_ok());
  for (const char* f : {"one", "two", "three"}) {
    (void)io.run((*s)->send_frame(0x10, bytes_of(f)));
    std::this_thread::sleep_for(30ms);  // one frame per Noise message
  }
  CHECK(rb->wait([&] { return rb->closes.size() == 1; }, 5s));
  *counters = b->counters();
  std::lock_guard l(rb->mu);
  std::vector<std::string> got;
  for (auto& f : rb->frames) got.push_back(f.second);
  return got;
}

}  // namespace

TEST_CASE("tampered transport messages close the session before any forged plaintext") {
  CounterSnapshot c;
  SUBCASE("bit flipped") {
    CHECK(transport_attack(Action::kForward, true, &c).empty());
    CHECK(c.decrypt_failed == 1);
  }
  SUBCASE("replayed") {
    CHECK(transport_attack(Action::kDuplicate, false, &c) == std::vector<std::string>{"one"});
    CHECK(c.decrypt_failed == 1);
  }
  SUBCASE("reordered") {
    CHECK(transport_attack(Action::kHoldForSwap, false, &c).empty());
    CHECK(c.decrypt_failed == 1);
  }
  SUBCASE("dropped") {
    CHECK(transport_attack(Action::kDrop, false, &c).empty());
    CHECK(c.decrypt_failed == 1);
  }
}

TEST_CASE("a connection cut mid-blob reports truncated and the partial blob is discarded") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto ra = std::make_shared<Recorder>(), rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra);
  auto b = make_node(io.io, swarm, rb);
  constexpr size_t kSize = 20u << 20;
  rb->expected_blob = kSize;
  Relay relay(b->local_endpoint(), nullptr, 5u << 20);
  auto s = io.run(a->dial(relay.endpoint()));
  REQUIRE(s.is_ok());
  const auto data = pattern(kSize, 5);
  auto st = io.run((*s)->send_blob({}, data));
  CHECK_FALSE(st.is_ok());
  REQUIRE(rb->wait([&] { return rb->closes.size() == 1; }));
  std::lock_guard l(rb->mu);
  REQUIRE(rb->blob_ends.size() == 1);
  CHECK(rb->blob_ends[0].code() == core::Code::kClosed);
  CHECK(rb->blob_ends[0].message().find("truncated") != std::string::npos);
  CHECK(b->counters().blob_truncated == 1);
}

// Blob data is decrypted straight into the destination: a forgery must still
// end the blob as truncated, never as complete.
TEST_CASE("a flipped bit in blob data truncates the blob and closes the session") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto b = make_node(io.io, swarm, rb);
  constexpr size_t kSize = 1u << 20;
  rb->expected_blob = kSize;
  std::atomic<int> big{0};
  Relay relay(b->local_endpoint(), [&](size_t, int dir, size_t, std::vector<uint8_t>& msg) {
    // The third blob data message (chunk headers travel in 25-byte messages).
    if (dir == 0 && msg.size() > 60000 && ++big == 3) msg[msg.size() / 2] ^= 0x01;
    return Action::kForward;
  });
  auto s = io.run(a->dial(relay.endpoint()));
  REQUIRE(s.is_ok());
  const auto data = pattern(kSize, 6);
  (void)io.run((*s)->send_blob({}, data));
  REQUIRE(rb->wait([&] { return rb->closes.size() == 1; }));
  std::lock_guard l(rb->mu);
  REQUIRE(rb->blob_ends.size() == 1);
  CHECK(rb->blob_ends[0].code() == core::Code::kClosed);
  CHECK(rb->blob_ends[0].message().find("truncated") != std::string::npos);
  CHECK(rb->closes[0].code() == core::Code::kAuth);
  CHECK(b->counters().decrypt_failed == 1);
  CHECK(b->counters().blob_truncated == 1);
}

TEST_CASE("frame lengths 0, limit+1 and 2^32-1 from an authenticated peer close the session") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<Recorder>();
  auto b = make_node(io.io, swarm, rb);
  const auto me = crypto::StaticKeypair::generate();
  const uint32_t limit = static_cast<uint32_t>(b->config().frames.max_control_body);
  int n = 0;
  for (uint32_t len : {0u, limit + 2, 0xffffffffu}) {
    RawNoiseClient c(b->local_endpoint());
    REQUIRE(c.handshake(me, swarm).is_ok());
    uint8_t hdr[5];
    put_be32(hdr, len);
    hdr[4] = 0x10;
    c.send_plain(hdr);
    CHECK(c.closed_by_peer());
    ++n;
    CHECK(rb->wait([&] { return rb->closes.size() == static_cast<size_t>(n); }));
  }
  CHECK(b->counters().bad_frame == 3);
  CHECK(rb->frames.empty());
}

TEST_CASE("a slow-loris handshake is closed at the deadline") {
  IoThreads io;
  NetConfig cfg = test_config();
  cfg.handshake_timeout = 1s;
  auto b = make_node(io.io, crypto::SwarmKey::generate(), std::make_shared<Recorder>(), cfg);
  asio::io_context cio;
  asio::ip::tcp::socket sock(cio);
  sock.connect(b->local_endpoint());
  const auto t0 = std::chrono::steady_clock::now();
  asio::error_code ec;
  uint8_t msg1[50] = {0, 48};
  size_t i = 0;
  while (!ec && i < sizeof msg1) {
    asio::write(sock, asio::buffer(msg1 + i++, 1), ec);
    std::this_thread::sleep_for(300ms);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ec);  // the node hung up
  CHECK(secs >= 1.0);
  CHECK(secs < 2.5);
  CHECK(b->counters().handshake_timeout == 1);
}

TEST_CASE("a connection flood from one address hits the caps; a good peer still gets in") {
  IoThreads io;
  NetConfig cfg = test_config();
  cfg.handshake_timeout = 1s;
  cfg.max_pending_per_address = 4;
  cfg.max_pending_handshakes = 16;
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<Recorder>();
  auto b = make_node(io.io, swarm, rb, cfg);
  auto a = make_node(io.io, swarm, std::make_shared<Recorder>());
  asio::io_context cio;
  std::vector<asio::ip::tcp::socket> flood;
  for (int i = 0; i < 40; ++i) {
    flood.emplace_back(cio);
    flood.back().open(asio::ip::tcp::v4());
    flood.back().bind({asio::ip::make_address("127.0.0.2"), 0});
    flood.back().connect(b->local_endpoint());
  }
  REQUIRE(rb->wait([&] { return b->counters().refused_pending_address == 36; }, 5s));
  auto s = io.run(a->dial(b->local_endpoint(), b->peer_id()));
  CHECK(s.is_ok());
  CHECK(b->counters().accepted == 41);
  // The four admitted flood connections time out and free their slots.
  CHECK(rb->wait([&] { return b->counters().handshake_timeout == 4; }, 3s));
}

TEST_CASE("a session cap refuses connections beyond it") {
  IoThreads io;
  NetConfig cfg = test_config();
  cfg.max_sessions = 2;
  const auto swarm = crypto::SwarmKey::generate();
  auto b = make_node(io.io, swarm, std::make_shared<Recorder>(), cfg);
  auto a = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto s1 = io.run(a->dial(b->local_endpoint()));
  auto s2 = io.run(a->dial(b->local_endpoint()));
  auto s3 = io.run(a->dial(b->local_endpoint()));
  CHECK(s1.is_ok());
  CHECK(s2.is_ok());
  CHECK_FALSE(s3.is_ok());
  CHECK(b->counters().refused_sessions == 1);
}

TEST_CASE("all-zero (low-order) public keys abort the handshake") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<Recorder>();
  auto b = make_node(io.io, swarm, rb);
  crypto::StaticKeypair zero = crypto::StaticKeypair::generate();
  zero.public_key.fill(0);
  SUBCASE("zero ephemeral key in message 1") {
    RawNoiseClient c(b->local_endpoint());
    const auto me = crypto::StaticKeypair::generate();
    CHECK_FALSE(c.handshake(me, swarm, &zero).is_ok());
  }
  SUBCASE("zero static key in message 3") {
    RawNoiseClient c(b->local_endpoint());
    (void)c.handshake(zero, swarm);  // the initiator's side may complete
    CHECK(c.closed_by_peer());
  }
  CHECK(rb->wait([&] { return b->counters().handshake_failed == 1; }));
  CHECK(rb->sessions.empty());
}
