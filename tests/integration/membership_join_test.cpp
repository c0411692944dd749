// Joining a swarm over real loopback TCP with real encryption: 32 peers each
// joining through a random earlier member, 16 peers joining through one seed
// at the same moment, and a join that no seed answers. A join notices a
// cancel request at once; seeds that can never answer (this peer's own
// identity key, a host that does not exist) are given up at once; a seed
// with another swarm key is named as the likely cause.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <random>
#include <thread>

#include "gossip/config/config.hpp"
#include "membership_cluster.hpp"
#include "preconditions.hpp"

using namespace gossip;
using namespace gossip::membership;
using namespace gossip::membership::testing;

TEST_CASE(
    "32 peers, each joining through a random earlier member: every view lists all 32 within 10 s") {
  Cluster c(Options{});  // default settings
  std::mt19937 rng(32);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  for (int i = 1; i < 32; ++i) {
    const int seed = std::uniform_int_distribution<int>(0, i - 1)(rng);
    const auto st = c.start_and_join(c.add(), {seed});
    REQUIRE_MESSAGE(st.is_ok(), st.to_string());
  }
  const auto took = Cluster::wait_until([&] { return c.converged(); }, 10s);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_MESSAGE(took.has_value(), "views incomplete after 10 s");
  MESSAGE("32 peers: every view complete " << *took << " s after the last join (" << total
                                           << " s from the first)");
  for (int i = 0; i < 32; ++i) {
    CHECK(c.peer(i).swarm->live_count() == 31);
    CHECK(c.peer(i).swarm->joined());
  }
  // The wire view matches what the peers really are.
  for (const Member& m : c.peer(5).swarm->members()) {
    bool found = false;
    for (int i = 0; i < 32; ++i)
      found = found || (c.peer(i).id == m.id && c.peer(i).address == m.address);
    CHECK(found);
  }
}

TEST_CASE("16 peers joining through the same seed at once end in one swarm") {
  Cluster c(fast_options());
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  for (int i = 1; i < 16; ++i) c.start(c.add());
  std::vector<std::future<core::Status>> joins;
  for (int i = 1; i < 16; ++i) {
    Swarm* s = c.peer(i).swarm.get();
    const std::string seed = c.peer(0).address;
    joins.push_back(std::async(std::launch::async, [s, seed] { return s->join_wait({seed}, 5s); }));
  }
  for (auto& j : joins) {
    const auto st = j.get();
    CHECK_MESSAGE(st.is_ok(), st.to_string());
  }
  const auto took = Cluster::wait_until([&] { return c.converged(); }, 10s);
  REQUIRE_MESSAGE(took.has_value(), "views incomplete after 10 s");
  MESSAGE("16 simultaneous joins through one seed: every view complete after " << *took << " s");
  for (int i = 0; i < 16; ++i) CHECK(c.peer(i).swarm->live_count() == 15);
}

TEST_CASE("a join that no seed answers fails with a message naming every address tried") {
  Cluster c(fast_options());
  c.start(c.add());
  // A port with nobody listening, and a listener that accepts TCP but never
  // speaks Noise (so the handshake times out).
  uint16_t closed_port = 0;
  {
    asio::ip::tcp::acceptor probe(c.io(), {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  asio::ip::tcp::acceptor mute(c.io(), {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<asio::ip::tcp::socket> held;
  std::function<void()> accept_next = [&] {
    mute.async_accept([&](std::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      held.push_back(std::move(s));
      accept_next();
    });
  };
  accept_next();
  const std::string a = "127.0.0.1:" + std::to_string(closed_port);
  const std::string b = "127.0.0.1:" + std::to_string(mute.local_endpoint().port());
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = c.peer(0).swarm->join_wait({a, b}, 3s);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_FALSE(st.is_ok());
  MESSAGE(st.to_string());
  CHECK(st.code() == core::Code::kUnavailable);
  CHECK(st.message().find("could not join") != std::string::npos);
  CHECK(st.message().find(a) != std::string::npos);
  CHECK(st.message().find(b) != std::string::npos);
  CHECK(st.message().find("refused") != std::string::npos);
  CHECK(took >= 2.9);
  CHECK(took < 4.5);
  CHECK_FALSE(c.peer(0).swarm->joined());
  // A malformed seed address is named at once.
  const auto bad = c.peer(0).swarm->join_wait({"nohost"}, 1s);
  CHECK(bad.code() == core::Code::kInvalidArgument);
  CHECK(bad.message().find("nohost") != std::string::npos);
  asio::post(c.io(), [&] { mute.close(); });
  std::this_thread::sleep_for(50ms);
}

namespace {

// A peer outside the cluster with keys of its own choosing, on the
// cluster's io_context: a Node on 127.0.0.1 and a started Swarm.
struct LonePeer {
  LonePeer(Cluster& c, crypto::StaticKeypair identity, crypto::SwarmKey key) {
    net::NetConfig nc;
    nc.handshake_timeout = 2s;
    node = std::make_shared<net::Node>(c.io(), nc, std::move(identity), std::move(key));
    router = std::make_shared<net::Router>();
    node->set_handler(router);
    SwarmConfig sc;
    sc.protocol = fast_options();
    swarm = std::make_unique<Swarm>(c.io(), node, *router, sc);
    REQUIRE(node->listen({asio::ip::make_address("127.0.0.1"), 0}).is_ok());
    REQUIRE(swarm->start().is_ok());
  }
  ~LonePeer() {
    swarm->stop();
    node->close();
    std::this_thread::sleep_for(50ms);
  }
  std::shared_ptr<net::Node> node;
  std::shared_ptr<net::Router> router;
  std::unique_ptr<Swarm> swarm;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("a cancelled join ends soon after the request, long before its timeout") {
  Cluster c(fast_options());
  c.start(c.add());
  uint16_t closed_port = 0;
  {
    asio::ip::tcp::acceptor probe(c.io(), {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  // The seed refuses every dial, so only the cancel (polled every 20 ms) or
  // the 20 s timeout can end the join.
  std::atomic<bool> stop{false};
  std::chrono::steady_clock::time_point stop_at;
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    stop_at = std::chrono::steady_clock::now();
    stop = true;
  });
  const auto st = c.peer(0).swarm->join_wait({"127.0.0.1:" + std::to_string(closed_port)}, 20s,
                                             [&] { return stop.load(); });
  const auto ended = std::chrono::steady_clock::now();
  stopper.join();
  const double after_stop = std::chrono::duration<double>(ended - stop_at).count();
  MESSAGE(st.to_string() << ", " << after_stop << " s after the cancel request");
  CHECK(st.code() == core::Code::kClosed);
  CHECK(contains(st.message(), "cancelled"));
  CHECK(after_stop >= 0);  // not before it was asked to
  CHECK(after_stop < 3);   // a generous margin for a loaded machine; the timeout is 20 s
  CHECK_FALSE(c.peer(0).swarm->joined());
}

TEST_CASE("a seed with another swarm key: the joiner's error names peer.swarm_key") {
  Cluster c(fast_options());
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  LonePeer stranger(c, crypto::StaticKeypair::generate(), crypto::SwarmKey::generate());
  const auto st = stranger.swarm->join_wait({c.peer(0).address}, 2s);
  MESSAGE(st.to_string());
  CHECK(st.code() == core::Code::kUnavailable);
  CHECK(contains(st.message(), c.peer(0).address));
  CHECK(contains(st.message(), "closed the connection right after the handshake"));
  CHECK(contains(st.message(), "peer.swarm_key"));
  CHECK_FALSE(stranger.swarm->joined());
  CHECK(c.peer(0).swarm->live_count() == 0);
}

TEST_CASE(
    "a seed with this peer's own identity key is given up at once, naming peer.identity_key") {
  Cluster c(fast_options());
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  LonePeer twin(c, c.peer(0).identity, c.swarm_key());
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = twin.swarm->join_wait({c.peer(0).address}, 5s);
  const double took = seconds_since(t0);
  MESSAGE(st.to_string() << " after " << took << " s");
  CHECK(st.code() == core::Code::kUnavailable);
  CHECK(contains(st.message(), "self-connection"));
  CHECK(contains(st.message(), "peer.identity_key"));
  CHECK(contains(st.message(), "no seed can be joined"));
  CHECK(took < 1.5);  // not the 5 s timeout
  // The twin made one dial, not one per JOIN retry.
  CHECK(twin.swarm->stats().dials == 1);
}

TEST_CASE("a seed host that does not exist is given up at once; other seeds are still waited for") {
  const std::string host = "no.such.host.invalid";
  {
    // Only meaningful where the resolver answers "no such host" (not "try
    // again": no resolver reachable).
    asio::io_context io;
    asio::ip::tcp::resolver r(io);
    asio::error_code ec;
    (void)r.resolve(host, "7400", ec);
    if (ec != asio::error::host_not_found) {
      gossip::test::skip("unknown seed host: the resolver says '" + ec.message() + "' for " + host +
                         ", not 'host not found'");
      return;
    }
  }
  Cluster c(fast_options());
  c.start(c.add());
  const std::string bad = host + ":7400";
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = c.peer(0).swarm->join_wait({bad}, 5s);
  const double took = seconds_since(t0);
  MESSAGE(st.to_string() << " after " << took << " s");
  CHECK(st.code() == core::Code::kUnavailable);
  CHECK(contains(st.message(), bad));
  CHECK(contains(st.message(), "no seed can be joined"));
  CHECK(took < 1.5);
  // With a seed that might still answer, the join waits for it.
  uint16_t closed_port = 0;
  {
    asio::ip::tcp::acceptor probe(c.io(), {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  const std::string closed = "127.0.0.1:" + std::to_string(closed_port);
  const auto t1 = std::chrono::steady_clock::now();
  const auto mixed = c.peer(0).swarm->join_wait({bad, closed}, 1s);
  const double took_mixed = seconds_since(t1);
  CHECK(took_mixed >= 0.95);
  CHECK(contains(mixed.message(), "no seed answered within 1000 ms"));
  CHECK(contains(mixed.message(), bad + " (resolve"));
  CHECK(contains(mixed.message(), closed + " (connect"));
}

TEST_CASE("the membership section of a config maps onto the protocol options") {
  MembershipConfig mc;
  mc.probe_interval_ms = 750;
  mc.probe_timeout_ms = 300;
  mc.indirect_probes = 2;
  mc.suspicion_mult = 5.0;
  mc.sync_interval_ms = 15000;
  const Options o = options_from(mc);
  CHECK(o.probe_interval == Millis(750));
  CHECK(o.probe_timeout == Millis(300));
  CHECK(o.indirect_probes == 2);
  CHECK(o.suspicion_mult == 5.0);
  CHECK(o.sync_interval == Millis(15000));
  CHECK(o.reconnect_interval == Millis(15000));
  CHECK(o.validate().is_ok());
  // The config defaults are the protocol defaults.
  const Options d = options_from(MembershipConfig{});
  const Options p;
  CHECK(d.probe_interval == p.probe_interval);
  CHECK(d.probe_timeout == p.probe_timeout);
  CHECK(d.indirect_probes == p.indirect_probes);
  CHECK(d.suspicion_mult == p.suspicion_mult);
  CHECK(d.sync_interval == p.sync_interval);
}
