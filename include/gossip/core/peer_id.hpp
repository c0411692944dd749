// PeerId: who a peer is, as every module names it: the lowercase hex of its
// static X25519 public key (crypto::peer_id, 64 characters). Logs and error
// messages print its short form, the first 12 hex digits: 48 bits tell the
// peers of any real swarm apart and still fit on a log line.
#pragma once

#include <compare>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace gossip::core {

inline constexpr size_t kShortPeerIdLength = 12;

// The short form of a peer id, as logs and error messages print it: its first
// kShortPeerIdLength characters (all of it when shorter). The one place that
// decides how a peer id is shortened; use it (or PeerId::short_form) wherever
// an id is printed.
inline std::string short_peer_id(std::string_view peer_id) {
  return std::string(peer_id.substr(0, kShortPeerIdLength));
}

// A peer id as a value: compares as its hex string, prints short.
class PeerId {
 public:
  PeerId() = default;
  // `hex` as crypto::peer_id writes it; not checked here (crypto::parse_peer_id
  // checks ids that come from outside).
  explicit PeerId(std::string hex) : hex_(std::move(hex)) {}

  // The full id, for the wire, files and lookups.
  const std::string& hex() const { return hex_; }
  // The short form, for people (short_peer_id).
  std::string short_form() const { return short_peer_id(hex_); }
  bool empty() const { return hex_.empty(); }

  friend bool operator==(const PeerId&, const PeerId&) = default;
  friend std::strong_ordering operator<=>(const PeerId&, const PeerId&) = default;

 private:
  std::string hex_;
};

}  // namespace gossip::core
