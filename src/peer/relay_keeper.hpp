// RelayKeeper: the relay reservations of one peer (docs/design.md "Peers
// behind NAT"). They are held while the peer is private
// (net.relay.auto_reserve) or always (net.relay.reserve), with up to
// net.relay.reserve_count public live members; one whose relay left the view
// or turned private, or that was not granted within 15 s, is dropped and
// another member tried. Tended once a second by one chain of timer callbacks
// on the peer's io_context, so its bookkeeping needs no lock.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gossip/core/endpoint.hpp"
#include "gossip/membership/reach.hpp"
#include "gossip/membership/swarm.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/relay.hpp"

namespace gossip::peer {

class RelayKeeper {
 public:
  // Borrows all four; they must outlive the keeper's last tick (stop(), then
  // the io_context's threads joined).
  RelayKeeper(asio::io_context& io, net::Node& node, membership::Swarm& swarm,
              membership::Reach& reach, net::Traversal& traversal, std::vector<std::string> seeds);

  // Tends the reservations now and every second after.
  void start();
  // The chain ends at its next tick (any thread).
  void stop() { stop_ = true; }

 private:
  struct Reservation {
    core::Endpoint endpoint;
    std::optional<std::string> id;  // unknown for a seed address
    std::chrono::steady_clock::time_point since;
  };
  void tick();
  void tend();

  asio::io_context& io_;
  net::Node& node_;
  membership::Swarm& swarm_;
  membership::Reach& reach_;
  net::Traversal& traversal_;
  const std::vector<std::string> seeds_;  // the bootstrap addresses
  asio::steady_timer timer_;
  std::atomic<bool> stop_{false};
  // The timer chain's own state.
  std::map<std::string, Reservation> reservations_;                       // by address
  std::map<std::string, std::chrono::steady_clock::time_point> shunned_;  // id -> until
  bool reserving_ = false;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace gossip::peer
