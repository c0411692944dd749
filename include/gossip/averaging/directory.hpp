// PeerDirectory: where the averaging engine finds partners. Membership
// implements it over its live member list; tests and tools use a static list.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gossip/net/endpoint.hpp"

namespace gossip::averaging {

// A partner the engine can dial: its peer id (hex static key, checked by the
// handshake) and its advertised address, parsed where it entered the peer
// (membership, config, a test) and dialed as it is.
struct Member {
  std::string peer_id;
  net::Endpoint endpoint;
  std::string address() const { return endpoint.to_string(); }
};

class PeerDirectory {
 public:
  virtual ~PeerDirectory() = default;
  // A live member other than this peer, chosen uniformly at random, or
  // nullopt when none is known. Must be thread-safe (called from the trainer
  // thread and from network threads).
  virtual std::optional<Member> random_live_peer() = 0;
  // Every live member other than this peer (for state-sync fallbacks), in any
  // order. Thread-safe.
  virtual std::vector<Member> live_peers() = 0;
};

// A fixed list (tests, benchmarks, `--join` lists). Thread-safe.
class StaticDirectory final : public PeerDirectory {
 public:
  explicit StaticDirectory(std::vector<Member> members, uint64_t seed = std::random_device{}())
      : members_(std::move(members)), rng_(seed) {}
  std::optional<Member> random_live_peer() override {
    std::lock_guard l(mu_);
    if (members_.empty()) return std::nullopt;
    return members_[std::uniform_int_distribution<size_t>(0, members_.size() - 1)(rng_)];
  }
  std::vector<Member> live_peers() override {
    std::lock_guard l(mu_);
    return members_;
  }
  // Replaces the list (e.g. a test removing a killed peer).
  void set(std::vector<Member> members) {
    std::lock_guard l(mu_);
    members_ = std::move(members);
  }

 private:
  std::mutex mu_;
  std::vector<Member> members_;
  std::mt19937_64 rng_;
};

}  // namespace gossip::averaging
