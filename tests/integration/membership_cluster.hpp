// A cluster of real peers in one process for the membership integration
// tests: each peer is a net::Node on 127.0.0.1 (real Noise handshakes, real
// keys generated in memory) with a LinkFilter (real fault injection) in front
// of a Router carrying a membership::Swarm. One io_context, two threads,
// carries them all; a peer may get its own io_context instead (to stall its
// membership strand for real).
#pragma once

#include <doctest/doctest.h>

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gossip/crypto/keys.hpp"
#include "gossip/membership/swarm.hpp"
#include "gossip/net/link_filter.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/router.hpp"

namespace gossip::membership::testing {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// An io_context run by `n` threads until destroyed.
class IoThreads {
 public:
  explicit IoThreads(int n = 2) : guard_(asio::make_work_guard(io)) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { io.run(); });
  }
  ~IoThreads() {
    guard_.reset();
    io.stop();
    for (auto& t : threads_) t.join();
  }
  asio::io_context io;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// Fast protocol settings for the tests that do not ask for defaults.
inline Options fast_options() {
  Options o;
  o.probe_interval = Ms(200);
  o.probe_timeout = Ms(100);
  o.sync_interval = Ms(2000);
  o.reconnect_interval = Ms(2000);
  o.join_retry = Ms(500);
  return o;
}

struct Peer {
  crypto::StaticKeypair identity;
  std::string id;
  uint16_t port = 0;
  std::string address;
  std::shared_ptr<net::Node> node;
  std::shared_ptr<net::Router> router;
  std::shared_ptr<net::LinkFilter> filter;
  std::unique_ptr<Swarm> swarm;
  bool running = false;
};

class Cluster {
 public:
  explicit Cluster(Options options, int threads = 2)
      : options_(options), io_(threads), key_(crypto::SwarmKey::generate()) {}
  ~Cluster() {
    for (auto& p : peers) stop_peer(*p);
    // Let sessions and coroutines wind down before the threads go.
    std::this_thread::sleep_for(100ms);
  }

  // Adds a peer with a fresh identity (not started).
  int add() {
    auto p = std::make_unique<Peer>();
    p->identity = crypto::StaticKeypair::generate();
    p->id = crypto::peer_id(p->identity.public_key);
    peers.push_back(std::move(p));
    return static_cast<int>(peers.size()) - 1;
  }

  // (Re)starts peer `i` with its identity: a new Node, Router, filter and
  // Swarm, listening on its previous port if it had one. `swarm_io` puts
  // the Swarm's strand on another io_context.
  void start(int i, asio::io_context* swarm_io = nullptr, SwarmConfig cfg = {}) {
    Peer& p = *peers[static_cast<size_t>(i)];
    net::NetConfig nc;
    nc.handshake_timeout = 2s;
    p.node = std::make_shared<net::Node>(io_.io, nc, p.identity, key_);
    p.router = std::make_shared<net::Router>();
    p.filter = std::make_shared<net::LinkFilter>(p.router);
    p.node->set_handler(p.filter);
    p.node->set_link_filter(p.filter);
    cfg.protocol = options_;
    p.swarm = std::make_unique<Swarm>(swarm_io ? *swarm_io : io_.io, p.node, *p.router, cfg);
    auto st = p.node->listen({asio::ip::make_address("127.0.0.1"), p.port});
    REQUIRE_MESSAGE(st.is_ok(), st.to_string());
    p.port = p.node->local_endpoint().port();
    p.address = "127.0.0.1:" + std::to_string(p.port);
    REQUIRE(p.swarm->start().is_ok());
    p.running = true;
  }

  // Starts peer `i` and joins through the peers `seeds` (none: founds a swarm).
  core::Status start_and_join(int i, const std::vector<int>& seeds, Ms timeout = 5s) {
    start(i);
    std::vector<std::string> addresses;
    for (int s : seeds) addresses.push_back(peers[static_cast<size_t>(s)]->address);
    return peer(i).swarm->join_wait(addresses, timeout);
  }

  // Drops the peer without a word: no LEAVE, sessions and listener closed.
  void crash(int i) { stop_peer(peer(i)); }

  // Leaves gracefully, then closes the peer.
  void leave(int i) {
    peer(i).swarm->leave_wait();
    stop_peer(peer(i));
  }

  Peer& peer(int i) { return *peers[static_cast<size_t>(i)]; }
  int size() const { return static_cast<int>(peers.size()); }
  asio::io_context& io() { return io_.io; }
  const crypto::SwarmKey& swarm_key() const { return key_; }

  // How `observer` sees `subject`.
  std::optional<MemberState> view(int observer, int subject) {
    return peer(observer).swarm->state_of(peer(subject).id);
  }
  // Every running peer except `subject` sees it in `state` (for dead and
  // left, not knowing it counts too).
  bool all_see(int subject, MemberState state) {
    for (int o = 0; o < size(); ++o) {
      if (o == subject || !peer(o).running) continue;
      auto v = view(o, subject);
      const bool gone_ok = !v && (state == MemberState::kDead || state == MemberState::kLeft);
      if (!gone_ok && v != state) return false;
    }
    return true;
  }
  // Every running peer in `group` (all when empty) sees exactly the other
  // running peers of the group as alive.
  bool converged(const std::vector<int>& group = {}) {
    std::vector<int> g = group;
    if (g.empty()) {
      for (int i = 0; i < size(); ++i) g.push_back(i);
    }
    for (int o : g) {
      if (!peer(o).running) continue;
      for (int s : g) {
        if (s == o || !peer(s).running) continue;
        if (view(o, s) != MemberState::kAlive) return false;
      }
    }
    return true;
  }

  // Polls `done` every 20 ms; returns the seconds it took, or nullopt.
  static std::optional<double> wait_until(const std::function<bool()>& done, Ms limit) {
    const auto t0 = std::chrono::steady_clock::now();
    while (true) {
      if (done())
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (std::chrono::steady_clock::now() - t0 > limit) return std::nullopt;
      std::this_thread::sleep_for(20ms);
    }
  }

  std::vector<std::unique_ptr<Peer>> peers;

 private:
  void stop_peer(Peer& p) {
    if (!p.running) return;
    p.running = false;
    p.swarm->stop();
    p.node->close();
    p.swarm.reset();
    p.router.reset();
    p.filter.reset();
    p.node.reset();
  }

  Options options_;
  IoThreads io_;
  crypto::SwarmKey key_;
};

}  // namespace gossip::membership::testing
