// gossip-bench membership: the membership figures of real peers in one
// process (loopback TCP, real Noise handshakes and encryption, one
// io_context on two threads), with default protocol settings unless told
// otherwise. For each swarm size: the swarm is built (each peer joining
// through a random earlier member), membership bytes are counted over a
// steady-state window, then a new peer joins, a member crashes (Node closed,
// no LEAVE) and another leaves; each is timed until every other peer's view
// shows it. Prints a table, then one JSON object on the last line.
//
//   gossip-bench membership [--peers 16,64] [--settle-s 10] [--steady-s 20] [--probe-ms 1000]
//                           [--unused-ms 0]
// --unused-ms sets net.unused_timeout_ms (sessions that carried nothing for
// that long close; 0: never): a full mesh of 256 peers in one process needs
// 65,280 sockets otherwise.
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/membership/swarm.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/router.hpp"

namespace gossip::bench {
namespace {

using namespace std::chrono_literals;
using membership::MemberState;
using SteadyClock = std::chrono::steady_clock;

struct BenchPeer {
  crypto::StaticKeypair identity = crypto::StaticKeypair::generate();
  std::string id = crypto::peer_id(identity.public_key);
  std::string address;
  std::shared_ptr<net::Node> node;
  std::shared_ptr<net::Router> router;
  std::unique_ptr<membership::Swarm> swarm;
  bool running = false;
};

class BenchSwarm {
 public:
  BenchSwarm(membership::Options options, net::NetConfig net)
      : options_(options),
        net_(net),
        key_(crypto::SwarmKey::generate()),
        guard_(asio::make_work_guard(io_)) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~BenchSwarm() {
    for (auto& p : peers) stop(*p);
    std::this_thread::sleep_for(200ms);
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }

  // Adds and starts a peer, joining through peer `via` (-1: founds the swarm).
  bool add(int via) {
    auto p = std::make_unique<BenchPeer>();
    p->node = std::make_shared<net::Node>(io_, net_, p->identity, key_);
    p->router = std::make_shared<net::Router>();
    p->node->set_handler(p->router);
    membership::SwarmConfig cfg;
    cfg.protocol = options_;
    p->swarm = std::make_unique<membership::Swarm>(io_, p->node, *p->router, cfg);
    if (!p->node->listen({asio::ip::make_address("127.0.0.1"), 0}).is_ok()) return false;
    p->address = "127.0.0.1:" + std::to_string(p->node->local_endpoint().port());
    if (!p->swarm->start().is_ok()) return false;
    std::vector<std::string> seeds;
    if (via >= 0) seeds.push_back(peers[static_cast<size_t>(via)]->address);
    const auto st = p->swarm->join_wait(seeds, 10s);
    if (!st.is_ok()) {
      std::fprintf(stderr, "membership bench: %s\n", st.to_string().c_str());
      return false;
    }
    p->running = true;
    peers.push_back(std::move(p));
    return true;
  }
  void crash(size_t i) { stop(*peers[i]); }
  void leave(size_t i) {
    peers[i]->swarm->leave_wait();
    stop(*peers[i]);
  }

  // Every running peer but `subject` sees it in `state` (gone counts for dead/left).
  bool all_see(size_t subject, MemberState state) {
    for (size_t o = 0; o < peers.size(); ++o) {
      if (o == subject || !peers[o]->running) continue;
      auto v = peers[o]->swarm->state_of(peers[subject]->id);
      if (!v && state != MemberState::kAlive) continue;
      if (v != state) return false;
    }
    return true;
  }
  bool converged() {
    size_t running = 0;
    for (auto& p : peers) running += p->running ? 1 : 0;
    for (auto& p : peers) {
      if (p->running && p->swarm->live_count() != running - 1) return false;
    }
    return true;
  }
  // Membership frame bytes (header + body) sent by the running peers.
  uint64_t bytes_sent() {
    uint64_t b = 0;
    for (auto& p : peers) {
      if (p->running) b += p->swarm->stats().bytes_sent;
    }
    return b;
  }
  // Sum of the protocol counters of the running peers.
  membership::SwarmStats totals() {
    membership::SwarmStats t;
    for (auto& p : peers) {
      if (!p->running) continue;
      const auto s = p->swarm->stats();
      t.frames_sent += s.frames_sent;
      t.frames_dropped += s.frames_dropped;
      t.dials += s.dials;
      t.protocol.probes += s.protocol.probes;
      t.protocol.probe_failures += s.protocol.probe_failures;
      t.protocol.refutations += s.protocol.refutations;
      t.protocol.syncs += s.protocol.syncs;
    }
    return t;
  }
  // Everything on the wire: Noise handshakes, tags, lengths, keepalives.
  uint64_t wire_bytes_sent() {
    uint64_t b = 0;
    for (auto& p : peers) {
      if (p->running) b += p->node->counters().bytes_sent;
    }
    return b;
  }

  std::vector<std::unique_ptr<BenchPeer>> peers;

 private:
  static void stop(BenchPeer& p) {
    if (!p.running) return;
    p.running = false;
    p.swarm->stop();
    p.node->close();
  }

  membership::Options options_;
  net::NetConfig net_;
  crypto::SwarmKey key_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// Seconds until `done()` holds (polled every 20 ms), or -1 after `limit`.
template <typename F>
double time_until(F done, std::chrono::seconds limit) {
  const auto t0 = SteadyClock::now();
  while (!done()) {
    if (SteadyClock::now() - t0 > limit) return -1;
    std::this_thread::sleep_for(20ms);
  }
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

nlohmann::json measure(int n, const membership::Options& options, const net::NetConfig& net,
                       int settle_s, int steady_s, std::mt19937& rng) {
  BenchSwarm s(options, net);
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < n; ++i) {
    const int via = i == 0 ? -1 : std::uniform_int_distribution<int>(0, i - 1)(rng);
    if (!s.add(via)) return {{"peers", n}, {"error", "could not build the swarm"}};
  }
  const double converge_s = time_until([&] { return s.converged(); }, 60s);
  const double build_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();

  // Let the join wave's piggybacked updates run out before measuring.
  std::this_thread::sleep_for(std::chrono::seconds(settle_s));
  const auto t_before = s.totals();
  const uint64_t b0 = s.bytes_sent(), w0b = s.wire_bytes_sent();
  const auto w0 = SteadyClock::now();
  std::this_thread::sleep_for(std::chrono::seconds(steady_s));
  const double window = std::chrono::duration<double>(SteadyClock::now() - w0).count();
  const double bytes_per_peer_s = static_cast<double>(s.bytes_sent() - b0) / window / n;
  const double wire_per_peer_s = static_cast<double>(s.wire_bytes_sent() - w0b) / window / n;
  const auto t_after = s.totals();

  const int via = std::uniform_int_distribution<int>(0, n - 1)(rng);
  const auto j0 = SteadyClock::now();
  s.add(via);
  const size_t joiner = s.peers.size() - 1;
  double join_s = time_until([&] { return s.all_see(joiner, MemberState::kAlive); }, 60s);
  if (join_s >= 0) join_s = std::chrono::duration<double>(SteadyClock::now() - j0).count();

  const size_t victim = static_cast<size_t>(std::uniform_int_distribution<int>(0, n - 1)(rng));
  s.crash(victim);
  const double crash_s = time_until([&] { return s.all_see(victim, MemberState::kDead); }, 60s);

  const size_t leaver = (victim + 1) % static_cast<size_t>(n);
  const auto l0 = SteadyClock::now();
  s.leave(leaver);
  double leave_s = time_until([&] { return s.all_see(leaver, MemberState::kLeft); }, 30s);
  if (leave_s >= 0) leave_s = std::chrono::duration<double>(SteadyClock::now() - l0).count();

  return {
      {"peers", n},
      {"build_s", build_s},
      {"converge_after_last_join_s", converge_s},
      {"join_known_everywhere_s", join_s},
      {"crash_known_everywhere_s", crash_s},
      {"leave_known_everywhere_s", leave_s},
      {"bytes_per_peer_per_s", bytes_per_peer_s},
      {"wire_bytes_per_peer_per_s", wire_per_peer_s},
      {"steady_window_s", window},
      {"window_probes", t_after.protocol.probes - t_before.protocol.probes},
      {"window_probe_failures", t_after.protocol.probe_failures - t_before.protocol.probe_failures},
      {"window_refutations", t_after.protocol.refutations - t_before.protocol.refutations},
      {"window_frames_dropped", t_after.frames_dropped - t_before.frames_dropped},
      {"window_dials", t_after.dials - t_before.dials}};
}

int run_membership(int argc, char** argv) {
  std::vector<int> sizes{16, 64};
  int steady_s = 20;
  int settle_s = 10;
  membership::Options options;
  net::NetConfig net;
  for (int i = 1; i < argc; ++i) {
    const bool has = i + 1 < argc;
    if (std::strcmp(argv[i], "--peers") == 0 && has) {
      sizes.clear();
      for (char* tok = std::strtok(argv[++i], ","); tok; tok = std::strtok(nullptr, ",")) {
        sizes.push_back(std::atoi(tok));
      }
    } else if (std::strcmp(argv[i], "--steady-s") == 0 && has) {
      steady_s = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--settle-s") == 0 && has) {
      settle_s = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--probe-ms") == 0 && has) {
      options.probe_interval = membership::Millis(std::atoi(argv[++i]));
      options.probe_timeout = options.probe_interval / 2;
    } else if (std::strcmp(argv[i], "--unused-ms") == 0 && has) {
      net.unused_timeout = std::chrono::milliseconds(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: gossip-bench membership [--peers 16,64] [--settle-s 10] [--steady-s 20] "
                   "[--probe-ms 1000] [--unused-ms 0]\n");
      return 2;
    }
  }
  if (!options.validate().is_ok() || steady_s < 1 || settle_s < 0) {
    std::fprintf(stderr, "gossip-bench membership: bad options\n");
    return 2;
  }
  std::mt19937 rng(2024);
  nlohmann::json results = nlohmann::json::array();
  std::printf("%6s %10s %10s %10s %10s %14s %14s\n", "peers", "build s", "join s", "crash s",
              "leave s", "bytes/peer/s", "wire B/peer/s");
  for (int n : sizes) {
    if (n < 3) continue;
    nlohmann::json r = measure(n, options, net, settle_s, steady_s, rng);
    if (r.contains("error")) {
      std::printf("%6d %s\n", n, r["error"].get<std::string>().c_str());
    } else {
      std::printf(
          "%6d %10.2f %10.2f %10.2f %10.2f %14.0f %14.0f\n", n, r["build_s"].get<double>(),
          r["join_known_everywhere_s"].get<double>(), r["crash_known_everywhere_s"].get<double>(),
          r["leave_known_everywhere_s"].get<double>(), r["bytes_per_peer_per_s"].get<double>(),
          r["wire_bytes_per_peer_per_s"].get<double>());
    }
    std::fflush(stdout);
    results.push_back(r);
  }
  nlohmann::json out = {{"bench", "membership"},
                        {"probe_interval_ms", options.probe_interval.count()},
                        {"unused_timeout_ms", net.unused_timeout.count()},
                        {"results", results}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

const Registrar kReg{
    {"membership",
     "join/crash/leave known-everywhere times and membership bytes, real peers on loopback",
     &run_membership}};

}  // namespace
}  // namespace gossip::bench
