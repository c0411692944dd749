// Member: what every peer knows about every other member of the swarm, and
// the validation rules for the fields that arrive from the network.
//
// A member is identified by its peer id (lowercase hex of its static X25519
// public key, 64 characters) and reached at its advertised "host:port". The
// incarnation is a number only the member itself raises: a newer incarnation
// overrides anything said about an older one, which is how a suspected peer
// refutes and how a restarted peer (same identity, higher incarnation) comes
// back after being marked dead or left.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "gossip/core/status.hpp"

namespace gossip::membership {

// Ordered by precedence: for the same incarnation a later state wins
// (alive < suspect < dead < left); a higher incarnation always wins.
enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };

// "alive", "suspect", "dead", "left".
const char* state_name(MemberState state);

// Member::flags bits: how the member can be reached (docs/design.md "Peers
// behind NAT"). Only the member itself sets them, with a new incarnation.
inline constexpr uint8_t kMemberPrivate = 1;  // nobody could dial it: never dial it
inline constexpr uint8_t kMemberMapped = 2;   // its address is a router port mapping
inline constexpr uint8_t kMemberFlagsMask = kMemberPrivate | kMemberMapped;

struct Member {
  std::string id;            // 64 lowercase hex characters
  std::string address;       // "host:port" or "[v6]:port"
  uint64_t incarnation = 0;  // <= kMaxIncarnation
  MemberState state = MemberState::kAlive;
  uint8_t flags = 0;  // kMemberPrivate | kMemberMapped

  bool is_private() const { return (flags & kMemberPrivate) != 0; }

  bool operator==(const Member&) const = default;
};

// Incarnations stay below 2^53 so they survive JSON tooling (STATUS,
// metrics) unchanged; wall-clock milliseconds fit for the next 280,000 years.
inline constexpr uint64_t kMaxIncarnation = (uint64_t{1} << 53) - 1;
inline constexpr size_t kPeerIdHexChars = 64;
inline constexpr size_t kMaxAddressChars = 262;  // 253-char host + ":" + port + brackets

// Whether `id` is exactly 64 lowercase hex characters.
bool is_valid_peer_id(std::string_view id);

// Checks "host:port": host is a DNS name or IPv4 literal ([A-Za-z0-9.-_],
// 1..253 chars) or a bracketed IPv6 literal ("[::1]"); port is 1..65535
// without sign or leading zeros. The error says what is wrong, quoting (a
// bounded prefix of) the text.
core::Status validate_address(std::string_view address);

// "3f2a…c901 (10.0.0.4:7400) alive #17": for logs; the id is shortened.
std::string describe(const Member& member);

}  // namespace gossip::membership
