// Link shaping and exchange drops of net::LinkFilter over real loopback TCP
// and real Noise sessions: a sender-side latency delays every message that
// starts on an idle link, a bandwidth cap paces a blob (whose bytes still
// arrive intact), shaping one peer leaves another peer's session on the same
// Node at full speed, and set_drop cuts a seeded fraction of received blobs
// the way a connection dropped mid-transfer does.
#include <doctest/doctest.h>

#include <algorithm>

#include "gossip/net/link_filter.hpp"
#include "net_test_support.hpp"

using namespace gossip;
using namespace gossip::net;
using namespace gossip::net::testing;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A listening Node whose handler and link filter is a LinkFilter in front of
// a Recorder.
struct FilteredNode {
  std::shared_ptr<Recorder> rec = std::make_shared<Recorder>();
  std::shared_ptr<LinkFilter> filter = std::make_shared<LinkFilter>(rec);
  std::unique_ptr<Node> node;
};

FilteredNode make_filtered_node(asio::io_context& io, const crypto::SwarmKey& swarm) {
  FilteredNode f;
  f.node = std::make_unique<Node>(io, test_config(), crypto::StaticKeypair::generate(), swarm);
  f.node->set_handler(f.filter);
  f.node->set_link_filter(f.filter);
  auto st = f.node->listen({asio::ip::make_address("127.0.0.1"), 0});
  if (!st) throw std::runtime_error(st.to_string());
  return f;
}

LinkFilter::ShapeOf shape_only(std::string peer_id, LinkShape shape) {
  return [peer_id = std::move(peer_id), shape](std::string_view p) -> std::optional<LinkShape> {
    if (p == peer_id) return shape;
    return std::nullopt;
  };
}

// Seconds from sending `body` as a control frame until `rec` recorded it.
double one_way(IoThreads& io, Session& s, Recorder& rec, std::string_view body) {
  size_t before = 0;
  {
    std::lock_guard l(rec.mu);
    before = rec.frames.size();
  }
  const auto t0 = Clock::now();
  REQUIRE(io.run(s.send_frame(0x20, bytes_of(body))).is_ok());
  REQUIRE(rec.wait([&] { return rec.frames.size() == before + 1; }, 5s));
  return seconds_since(t0);
}

double status_rtt(IoThreads& io, Session& s) {
  const auto t0 = Clock::now();
  REQUIRE(io.run(s.query_status(5000ms)).is_ok());
  return seconds_since(t0);
}

// Seconds from send_blob until `rec` recorded the blob's end; checks that
// it ended ok with exactly `data`.
double blob_time(IoThreads& io, Session& s, Recorder& rec, const std::vector<uint8_t>& data) {
  size_t before = 0;
  {
    std::lock_guard l(rec.mu);
    before = rec.blob_ends.size();
    rec.expected_blob = data.size();
  }
  const auto t0 = Clock::now();
  REQUIRE(io.run(s.send_blob({}, data)).is_ok());
  REQUIRE(rec.wait([&] { return rec.blob_ends.size() == before + 1; }, 10s));
  const double t = seconds_since(t0);
  std::lock_guard l(rec.mu);
  CHECK(rec.blob_ends.back().is_ok());
  CHECK(rec.blob == data);
  return t;
}

}  // namespace

TEST_CASE("a sender-side latency delays each message that starts on an idle link") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto a = make_filtered_node(io.io, swarm);
  auto b = make_filtered_node(io.io, swarm);
  auto s = io.run(a.node->dial(b.node->local_endpoint(), b.node->peer_id()));
  REQUIRE(s.is_ok());
  REQUIRE(b.rec->wait([&] { return b.rec->sessions.size() == 1; }));

  double plain_rtt = 1e9, plain_one_way = 1e9;
  for (int i = 0; i < 3; ++i) {
    plain_rtt = std::min(plain_rtt, status_rtt(io, **s));
    plain_one_way = std::min(plain_one_way, one_way(io, **s, *b.rec, "plain"));
  }
  // Installed on an open session: picked up at its next write.
  a.filter->shape(shape_only(b.node->peer_id(), LinkShape{80ms, 0}));
  for (int i = 0; i < 3; ++i) {
    const double rtt = status_rtt(io, **s);
    const double ow = one_way(io, **s, *b.rec, "slow");
    MESSAGE("shaped: status rtt " << rtt * 1e3 << " ms, one-way frame " << ow * 1e3 << " ms");
    CHECK(rtt >= 0.080);
    CHECK(ow >= 0.080);
    CHECK(ow < 0.080 + 0.5);
  }
  a.filter->clear_shape();
  double after_rtt = 1e9;
  for (int i = 0; i < 3; ++i) after_rtt = std::min(after_rtt, status_rtt(io, **s));
  MESSAGE("unshaped: status rtt " << plain_rtt * 1e3 << " ms, one-way " << plain_one_way * 1e3
                                  << " ms, after clear_shape " << after_rtt * 1e3 << " ms");
  CHECK(plain_rtt < 0.040);
  CHECK(plain_one_way < 0.040);
  CHECK(after_rtt < 0.040);
  // The reverse direction is not shaped by a's filter: b's frames reach a at once.
  std::shared_ptr<Session> back;
  {
    std::lock_guard l(b.rec->mu);
    back = b.rec->sessions.front();
  }
  a.filter->shape(shape_only(b.node->peer_id(), LinkShape{80ms, 0}));
  double reverse = 1e9;
  for (int i = 0; i < 3; ++i) reverse = std::min(reverse, one_way(io, *back, *a.rec, "back"));
  CHECK(reverse < 0.040);
}

TEST_CASE("a bandwidth cap paces a blob, whose bytes arrive intact") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto a = make_filtered_node(io.io, swarm);
  auto b = make_filtered_node(io.io, swarm);
  a.filter->shape(shape_only(b.node->peer_id(), LinkShape{0ms, 20e6}));
  auto s = io.run(a.node->dial(b.node->local_endpoint(), b.node->peer_id()));
  REQUIRE(s.is_ok());
  const auto data = pattern(4u << 20, 11);
  const double shaped = blob_time(io, **s, *b.rec, data);
  a.filter->clear_shape();
  const double plain = std::min(blob_time(io, **s, *b.rec, data), blob_time(io, **s, *b.rec, data));
  MESSAGE("4 MiB blob: " << shaped << " s at 20 MB/s, " << plain << " s uncapped");
  CHECK(shaped >= 0.18);
  CHECK(shaped < 0.21 + 1.0);  // about 4 MiB / 20 MB/s
  CHECK(plain < shaped / 2);
  CHECK(a.filter->dropped() == 0);
}

TEST_CASE("shaping one peer does not slow another peer's session on the same Node") {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto a = make_filtered_node(io.io, swarm);
  auto b = make_filtered_node(io.io, swarm);
  auto c = make_filtered_node(io.io, swarm);
  a.filter->shape(shape_only(b.node->peer_id(), LinkShape{80ms, 20e6}));
  auto sb = io.run(a.node->dial(b.node->local_endpoint(), b.node->peer_id()));
  auto sc = io.run(a.node->dial(c.node->local_endpoint(), c.node->peer_id()));
  REQUIRE(sb.is_ok());
  REQUIRE(sc.is_ok());
  const auto data_b = pattern(4u << 20, 21), data_c = pattern(4u << 20, 22);
  b.rec->expected_blob = data_b.size();
  const auto t0 = Clock::now();
  auto to_b = io.spawn((*sb)->send_blob({}, data_b));  // streams while c is measured
  double rtt_c = 1e9;
  for (int i = 0; i < 3; ++i) rtt_c = std::min(rtt_c, status_rtt(io, **sc));
  const double blob_c = blob_time(io, **sc, *c.rec, data_c);
  REQUIRE(to_b.get()->is_ok());
  REQUIRE(b.rec->wait([&] { return b.rec->blob_ends.size() == 1; }, 10s));
  const double blob_b = seconds_since(t0);
  MESSAGE("during a paced blob to b (" << blob_b << " s): status rtt to c " << rtt_c * 1e3
                                       << " ms, 4 MiB blob to c " << blob_c << " s");
  CHECK(blob_b >= 0.080 + 0.18);
  CHECK(rtt_c < 0.040);
  CHECK(blob_c < blob_b / 2);
  std::lock_guard l(b.rec->mu);
  CHECK(b.rec->blob_ends.front().is_ok());
  CHECK(b.rec->blob == data_b);
}

namespace {

struct DropRun {
  size_t failed = 0;
  std::vector<bool> pattern;  // per transfer: true = cut
};

// Sends `transfers` blobs of 64 KiB from a plain node to `b`, redialing after
// each cut. A cut must look like a connection dropped mid-blob on both sides.
DropRun drop_run(double fraction, uint64_t seed, size_t transfers) {
  IoThreads io;
  const auto swarm = crypto::SwarmKey::generate();
  auto ra = std::make_shared<Recorder>();
  auto a = make_node(io.io, swarm, ra);
  auto b = make_filtered_node(io.io, swarm);
  b.filter->set_drop(fraction, seed);
  const auto data = pattern(64u << 10, 5);
  b.rec->expected_blob = data.size();
  std::shared_ptr<Session> s;
  DropRun run;
  for (size_t i = 0; i < transfers; ++i) {
    if (!s) {
      auto d = io.run(a->dial(b.node->local_endpoint(), b.node->peer_id()));
      REQUIRE(d.is_ok());
      s = *d;
    }
    size_t ends = 0, closes = 0;
    {
      std::lock_guard l(b.rec->mu);
      ends = b.rec->blob_ends.size();
      closes = b.rec->closes.size();
    }
    const core::Status sent = io.run(s->send_blob({}, data));
    REQUIRE(b.rec->wait([&] { return b.rec->blob_ends.size() == ends + 1; }, 5s));
    bool ok = false;
    {
      std::lock_guard l(b.rec->mu);
      ok = b.rec->blob_ends.back().is_ok();
      if (ok) CHECK(b.rec->blob == data);
    }
    run.pattern.push_back(!ok);
    if (ok) {
      CHECK(sent.is_ok());
      continue;
    }
    ++run.failed;
    // Receiver: failed blob end, then the session closed. Sender: closed too.
    REQUIRE(b.rec->wait([&] { return b.rec->closes.size() == closes + 1; }, 5s));
    REQUIRE(ra->wait([&] { return !s->is_open(); }, 5s));
    s.reset();
  }
  CHECK(b.filter->dropped() == run.failed);
  CHECK(b.node->counters().blob_refused == 0);
  return run;
}

}  // namespace

TEST_CASE("set_drop cuts a seeded fraction of received blobs like a dropped connection") {
  SUBCASE("fraction 1: every transfer fails on both sides") {
    CHECK(drop_run(1.0, 1, 5).failed == 5);
  }
  SUBCASE("fraction 0.5: about half fail, the same ones for the same seed") {
    const DropRun first = drop_run(0.5, 42, 40);
    MESSAGE("set_drop(0.5): " << first.failed << " of 40 transfers cut");
    CHECK(first.failed >= 8);
    CHECK(first.failed <= 32);
    CHECK(drop_run(0.5, 42, 40).pattern == first.pattern);
  }
  SUBCASE("fraction 0: none fail") {
    CHECK(drop_run(0.0, 3, 10).failed == 0);
  }
}
