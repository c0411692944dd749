// Secure sessions over real loopback TCP with real keys: handshake, a 100 MB
// blob each way at once (bytes must match), control frames flowing during a
// blob, queued blobs of edge sizes, STATUS_REQ, peer-id checks, self-dial,
// wrong swarm key, idle timeout, the AESGCM cipher and a cipher mismatch,
// and the Node's SessionRegistry (session_to).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "net_test_support.hpp"
#include "preconditions.hpp"

using namespace gossip;
using namespace gossip::net;
using namespace gossip::net::testing;

TEST_CASE("handshake, then a 100 MB blob both ways at once with control frames in between") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto ra = std::make_shared<Recorder>(), rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra);
  auto b = make_node(io.io, swarm, rb);
  constexpr size_t kSize = 100u << 20;
  ra->expected_blob = rb->expected_blob = kSize;

  auto s = io.run(a->dial(b->local_endpoint(), b->peer_id()));
  REQUIRE(s.is_ok());
  CHECK((*s)->peer_id() == b->peer_id());
  REQUIRE(rb->wait([&] { return !rb->sessions.empty(); }));
  auto sb = rb->sessions[0];
  CHECK(sb->peer_id() == a->peer_id());
  CHECK_FALSE(sb->is_initiator());

  const auto out_a = pattern(kSize, 1), out_b = pattern(kSize, 2);
  const std::string hdr = R"({"xid":7})";
  auto fa = io.spawn((*s)->send_blob(bytes_of(hdr), out_a));
  auto fb = io.spawn(sb->send_blob(bytes_of(hdr), out_b));
  // Control frames sent while the blobs stream arrive (not after them).
  for (int i = 0; i < 20; ++i) {
    const std::string msg = "ping " + std::to_string(i);
    CHECK(io.run((*s)->send_frame(0x10, bytes_of(msg))).is_ok());
  }
  REQUIRE(rb->wait([&] { return rb->frames.size() == 20; }, 30s));
  CHECK(fa.get()->is_ok());
  CHECK(fb.get()->is_ok());
  REQUIRE(ra->wait([&] { return ra->blob_ends.size() == 1; }, 30s));
  REQUIRE(rb->wait([&] { return rb->blob_ends.size() == 1; }, 30s));
  CHECK(ra->blob_ends[0].is_ok());
  CHECK(rb->blob_ends[0].is_ok());
  CHECK(rb->blob_headers[0] == hdr);
  CHECK(std::memcmp(rb->blob.data(), out_a.data(), kSize) == 0);
  CHECK(std::memcmp(ra->blob.data(), out_b.data(), kSize) == 0);
  CHECK(rb->frames[0].first == 0x10);
  CHECK(rb->frames[19].second == "ping 19");
  CHECK(a->counters().handshakes_ok == 1);
  CHECK(b->counters().handshakes_ok == 1);
  CHECK(a->counters().bytes_sent > kSize);
}

namespace {
// Accepts blobs of any size, each into its own buffer, in arrival order.
class BlobCollector : public Recorder {
 public:
  core::Result<BlobReceiver> on_blob_begin(Session&, const BlobBegin& b) override {
    std::lock_guard l(mu);
    received.push_back(std::make_unique<std::vector<uint8_t>>(b.total_bytes, 0));
    return receive_into(*received.back());
  }
  std::vector<std::unique_ptr<std::vector<uint8_t>>> received;
};
}  // namespace

TEST_CASE("queued blobs of edge sizes arrive whole and in order, control frames between them") {
  IoThreads io(1);  // one thread: the send_blob calls reach the session in spawn order
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<BlobCollector>();
  auto a = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto b = make_node(io.io, swarm, rb);
  auto s = io.run(a->dial(b->local_endpoint()));
  REQUIRE(s.is_ok());
  // Around one Noise message of data (65519 bytes), several, and tiny ones.
  const std::vector<size_t> sizes = {0, 1, 65518, 65519, 65520, 3 * 65519 + 7, 5, 1 << 20};
  std::vector<std::vector<uint8_t>> blobs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    blobs.push_back(pattern(sizes[i], static_cast<uint32_t>(10 + i)));
  }
  std::vector<std::future<std::optional<core::Status>>> sent;
  for (size_t i = 0; i < blobs.size(); ++i) {
    sent.push_back(io.spawn((*s)->send_blob({}, blobs[i])));
    CHECK((*s)->try_send_frame(0x10, bytes_of("between " + std::to_string(i))));
  }
  for (auto& f : sent) CHECK(f.get()->is_ok());
  REQUIRE(rb->wait(
      [&] { return rb->blob_ends.size() == sizes.size() && rb->frames.size() == sizes.size(); }));
  std::lock_guard l(rb->mu);
  REQUIRE(rb->received.size() == sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    CAPTURE(sizes[i]);
    CHECK(rb->blob_ends[i].is_ok());
    CHECK(*rb->received[i] == blobs[i]);
  }
  CHECK(rb->frames.back().second == "between " + std::to_string(sizes.size() - 1));
  CHECK(b->counters().blob_truncated == 0);
}

TEST_CASE("STATUS_REQ is answered with peer_id, step, members and model") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto a = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto b = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto s = io.run(a->dial(b->local_endpoint()));
  REQUIRE(s.is_ok());
  auto st = io.run((*s)->query_status(2s));
  REQUIRE(st.is_ok());
  auto j = nlohmann::json::parse(*st);
  CHECK(j["peer_id"] == b->peer_id());
  CHECK(j["step"] == 0);
  CHECK(j["members"] == 1);
  CHECK(j["model"] == "");
  b->set_status_provider([] { return PeerStatus{42, 5, "mlp-784-128-10"}; });
  j = nlohmann::json::parse(*io.run((*s)->query_status(2s)));
  CHECK(j["step"] == 42);
  CHECK(j["members"] == 5);
  CHECK(j["model"] == "mlp-784-128-10");
}

TEST_CASE("a dial expecting another peer id is closed with both ids named") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto b = make_node(io.io, swarm, rb);
  const std::string other = crypto::peer_id(crypto::StaticKeypair::generate().public_key);
  auto s = io.run(a->dial(b->local_endpoint(), other));
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().code() == core::Code::kAuth);
  CHECK(s.status().message().find(other) != std::string::npos);
  CHECK(s.status().message().find(b->peer_id()) != std::string::npos);
  CHECK(a->counters().peer_id_mismatch == 1);
  CHECK(a->session_count() == 0);
  CHECK_FALSE(rb->wait([&] { return !rb->sessions.empty(); }, 300ms));
}

TEST_CASE("a peer dialing itself is detected and closed") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto r = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, r);
  auto s = io.run(a->dial(a->local_endpoint()));
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().message().find("self-connection") != std::string::npos);
  CHECK(a->counters().self_connection >= 1);
  CHECK_FALSE(r->wait([&] { return !r->sessions.empty(); }, 300ms));
  CHECK(a->session_count() == 0);
}

TEST_CASE("wrong swarm key: no session either way, while a correct peer is served meanwhile") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<Recorder>(), rbad = std::make_shared<Recorder>();
  auto b = make_node(io.io, swarm, rb);
  auto bad = make_node(io.io, crypto::SwarmKey::generate(), rbad);
  auto good = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto f_bad = io.spawn(bad->dial(b->local_endpoint()));
  auto f_good = io.spawn(good->dial(b->local_endpoint()));
  auto s_good = *f_good.get();
  auto s_bad = *f_bad.get();
  REQUIRE(s_good.is_ok());
  CHECK(io.run((*s_good)->send_frame(0x11, bytes_of("hello"))).is_ok());
  REQUIRE(rb->wait([&] { return rb->frames.size() == 1; }));
  // The initiator without the key finishes its side: XXpsk3 mixes the key
  // in at message 3, its last, so it cannot tell. The responder rejects
  // message 3 and hangs up: nothing the intruder sends is ever delivered.
  REQUIRE_MESSAGE(s_bad.is_ok(), s_bad.status().to_string());
  (void)io.run((*s_bad)->send_frame(0x11, bytes_of("intruder")));
  REQUIRE(rbad->wait([&] { return rbad->closes.size() == 1; }));
  std::this_thread::sleep_for(100ms);
  {
    std::lock_guard l(rb->mu);
    CHECK(rb->sessions.size() == 1);  // only the good peer
    CHECK(rb->frames.size() == 1);
    CHECK(rb->frames[0].second == "hello");
  }
  CHECK(rbad->frames.empty());
  CHECK(b->counters().handshake_failed == 1);
}

TEST_CASE("an idle session is closed after the idle timeout; keepalives keep a quiet one open") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  // The keepalive comes 15 times per idle timeout: a loaded machine may
  // delay one by far more than its interval without the session closing.
  NetConfig quiet = test_config();
  quiet.idle_timeout = 1500ms;
  quiet.keepalive_interval = 0ms;  // sends nothing by itself
  NetConfig chatty = test_config();
  chatty.idle_timeout = 1500ms;
  chatty.keepalive_interval = 100ms;
  auto ra = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra, chatty);
  auto b = make_node(io.io, swarm, std::make_shared<Recorder>(), chatty);
  auto c = make_node(io.io, swarm, std::make_shared<Recorder>(), quiet);
  auto ab = io.run(a->dial(b->local_endpoint()));
  auto ac = io.run(a->dial(c->local_endpoint()));
  REQUIRE(ab.is_ok());
  REQUIRE(ac.is_ok());
  // c never sends: a closes that session as idle, no earlier than the idle
  // timeout; a<->b, opened first, stay open on keepalives for two more.
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(ra->wait([&] { return ra->closes.size() == 1; }, 10s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 1000ms);  // not at once
  CHECK(ra->closes[0].code() == core::Code::kTimeout);
  CHECK_FALSE((*ac)->is_open());
  std::this_thread::sleep_for(3000ms);
  CHECK((*ab)->is_open());
  CHECK(a->counters().idle_closed == 1);
}

TEST_CASE("a refused blob is drained and the session keeps working") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto rb = std::make_shared<Recorder>();
  rb->expected_blob = 1000;  // the blob below has another size
  auto a = make_node(io.io, swarm, std::make_shared<Recorder>());
  auto b = make_node(io.io, swarm, rb);
  auto s = io.run(a->dial(b->local_endpoint()));
  REQUIRE(s.is_ok());
  const auto data = pattern(300000, 3);
  CHECK(io.run((*s)->send_blob({}, data)).is_ok());
  CHECK(io.run((*s)->send_frame(0x12, bytes_of("after"))).is_ok());
  REQUIRE(rb->wait([&] { return rb->frames.size() == 1; }));
  CHECK(rb->blob_ends.empty());
  CHECK(b->counters().blob_refused == 1);
  CHECK((*s)->is_open());
}

namespace {
// Everything written to file descriptor 2 while it lives (the log goes there).
class StderrCapture {
 public:
  StderrCapture() : file_(std::tmpfile()), saved_(dup(2)) {
    std::fflush(stderr);
    dup2(fileno(file_), 2);
  }
  ~StderrCapture() {
    restore();
    std::fclose(file_);
  }
  std::string text() {
    restore();
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, file_)) out.append(buf, n);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_;
};
}  // namespace

TEST_CASE("net.cipher aesgcm: peers that agree stream a blob; a ChaChaPoly peer is told why not") {
  if (auto st = crypto::check_cipher_available(crypto::Cipher::kAesGcm); !st) {
    gossip::test::skip("net.cipher aesgcm: " + st.message());
    return;
  }
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  NetConfig aes = test_config();
  aes.cipher = crypto::Cipher::kAesGcm;
  auto ra = std::make_shared<Recorder>(), rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra, aes);
  auto b = make_node(io.io, swarm, rb, aes);
  constexpr size_t kSize = 3u << 20;
  rb->expected_blob = kSize;
  auto s = io.run(a->dial(b->local_endpoint(), b->peer_id()));
  REQUIRE(s.is_ok());
  const auto out = pattern(kSize, 5);
  CHECK(io.run((*s)->send_blob(bytes_of(R"({"xid":1})"), out)).is_ok());
  REQUIRE(rb->wait([&] { return rb->blob_ends.size() == 1; }, 30s));
  CHECK(rb->blob_ends[0].is_ok());
  CHECK(std::memcmp(rb->blob.data(), out.data(), kSize) == 0);

  // A peer left at the default cipher: the AESGCM responder rejects its
  // first message and says which setting differs; the dialer learns that
  // the responder hung up on its first message and is told the same.
  auto chacha = make_node(io.io, swarm, std::make_shared<Recorder>());
  StderrCapture log;
  auto r = io.run(chacha->dial(b->local_endpoint(), b->peer_id()));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("after our first message") != std::string::npos);
  CHECK(r.status().message().find("net.cipher (this peer uses ChaChaPoly)") != std::string::npos);
  for (int i = 0; i < 100 && b->counters().handshake_failed == 0; ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(b->counters().handshake_failed == 1);
  const std::string text = log.text();
  CAPTURE(text);
  CHECK(text.find("failed at message 1") != std::string::npos);
  CHECK(text.find("a different net.cipher (this peer uses AESGCM)") != std::string::npos);
  CHECK(b->counters().handshakes_ok == 1);  // only a's session
}

TEST_CASE("the registry finds an open session by peer id on both sides, and forgets it closed") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto ra = std::make_shared<Recorder>(), rb = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra);
  auto b = make_node(io.io, swarm, rb);
  CHECK(a->session_to(b->peer_id()) == nullptr);
  // A typed endpoint, as membership and averaging dial.
  auto s = io.run(a->dial(Endpoint{"127.0.0.1", b->local_endpoint().port()}, b->peer_id()));
  REQUIRE(s.is_ok());
  CHECK(a->session_to(b->peer_id()) == *s);  // dialed
  REQUIRE(rb->wait([&] { return !rb->sessions.empty(); }));
  CHECK(b->session_to(a->peer_id()) == rb->sessions[0]);  // accepted
  CHECK(a->session_to(a->peer_id()) == nullptr);
  // A second session to the same peer: the oldest open one is found first.
  auto s2 = io.run(a->dial(b->local_endpoint(), b->peer_id()));
  REQUIRE(s2.is_ok());
  CHECK(a->session_to(b->peer_id()) == *s);
  (*s)->close(core::Status(core::Code::kClosed, "test"));
  REQUIRE(ra->wait([&] { return !ra->closes.empty(); }));
  CHECK(a->session_to(b->peer_id()) == *s2);
  a->close();
  CHECK(a->session_to(b->peer_id()) == nullptr);
  REQUIRE(rb->wait([&] { return rb->closes.size() == 2; }));
  CHECK(b->session_to(a->peer_id()) == nullptr);
}
