// Paths to peers behind NAT: relayed sessions and TCP hole punching
// (docs/design.md "Peers behind NAT", docs/protocol.md 0x68-0x6f).
//
// Relay. A private peer B keeps a session of its own with a public member R
// and asks it, RELAY_RESERVE, to be reached through it. A peer A that cannot
// dial B sends R RELAY_CONNECT {target B}; R answers A RELAY_READY {token}
// and tells B RELAY_INCOMING {from A, token}. A and B each open a new TCP
// connection to R's listening port and send a 40-byte preamble (a magic that
// no Noise message can start with, then the token); R pairs the two halves
// and copies bytes both ways (a circuit), within net.relay's caps. A then
// runs the ordinary Noise handshake as initiator, expecting B's peer id, over
// the circuit: R sees ciphertext only and cannot read, alter or impersonate.
//
// Punch. A asks a coordinator C that has sessions with both, PUNCH_REQUEST
// {target B}; C sends both PUNCH_SYNC {peer, address (the IP C observes, the
// port each listens on), delay, token}; after the delay both dial each other
// from their listening port (TCP simultaneous open, or one side's listener
// accepts), exchange the punch preamble, and the lower peer id runs the
// handshake as initiator.
//
// Node::reach (installed by Traversal::install) tries, per member: direct,
// punched, relayed, and remembers what worked (paths()).
//
// Threads: every member function is safe from any thread. The protocol state
// lives on one strand of the Traversal; circuits copy on strands of their own.
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>

#include "gossip/core/endpoint.hpp"
#include "gossip/core/status.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/session.hpp"

namespace gossip::net {

class Router;

// Frame types of NAT traversal (JSON bodies; docs/protocol.md).
enum TraversalFrame : uint8_t {
  kRelayReserve = 0x68,   // {} : "relay to me" (private peer -> relay)
  kRelayReserved = 0x69,  // {ok, reason} : the relay's answer
  kRelayConnect = 0x6a,   // {rid, target}
  kRelayReady = 0x6b,     // {rid, token}
  kRelayRefuse = 0x6c,    // {rid, reason}
  kRelayIncoming = 0x6d,  // {from, token}
  kPunchRequest = 0x6e,   // {rid, target, port, target_port}
  kPunchSync = 0x6f,      // {rid, ok, reason | peer, address, delay_ms, token}
};
inline constexpr uint8_t kTraversalFirst = 0x68, kTraversalLast = 0x6f;

// The preamble that opens a relay half or a punched connection instead of a
// Noise handshake: 8 magic bytes (two zero bytes, which no Noise message
// length can be, then "gtrly1" or "gtpun1") and the 32-byte token.
inline constexpr size_t kPreambleBytes = 40;
using Token = std::array<uint8_t, 32>;
enum class PreambleKind : uint8_t { kRelay = 1, kPunch = 2 };
struct Preamble {
  PreambleKind kind;
  Token token;
};
std::array<uint8_t, kPreambleBytes> encode_preamble(PreambleKind kind, const Token& token);
// Nullopt unless `bytes` is a preamble of a known kind.
std::optional<Preamble> decode_preamble(std::span<const uint8_t, kPreambleBytes> bytes);

// How a member is reached (STATUS's `reached`).
enum class PathKind : uint8_t { kDirect, kPunched, kRelayed, kUnreachable };
const char* path_kind_name(PathKind kind);
struct PathInfo {
  PathKind kind = PathKind::kDirect;
  std::string via;     // the relay's or coordinator's peer id (relayed, punched)
  std::string reason;  // why the better paths failed, last attempt
  std::chrono::steady_clock::time_point when{};
};

// Counts a rate per key in a sliding minute (punch requests per requester,
// punches per coordinator). Deterministic: the time is passed in. Not
// thread-safe.
class MinuteLimiter {
 public:
  explicit MinuteLimiter(size_t per_minute) : per_minute_(per_minute) {}
  // True (and counted) when `key` made fewer than per_minute calls in the
  // minute before `now`.
  bool allow(const std::string& key, std::chrono::steady_clock::time_point now);

 private:
  size_t per_minute_;
  std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> seen_;
};

// Every refusal and every byte, for STATUS and /metrics.
struct TraversalCounters {
  // As a relay.
  uint64_t reservations = 0;  // peers reachable through this relay now
  uint64_t circuits_active = 0;
  uint64_t circuits_opened = 0;  // both halves paired
  uint64_t relay_bytes = 0;      // bytes copied, both directions
  uint64_t refused_disabled = 0;
  uint64_t refused_not_reserved = 0;  // target never asked to be reached here
  uint64_t refused_cap = 0;           // circuits or reservations over the caps
  uint64_t refused_token = 0;         // a half with a token nobody asked for
  uint64_t pair_timeouts = 0;         // a half that never found its other half
  uint64_t idle_closed = 0;           // circuits idle past net.relay.idle_timeout_ms
  // As a peer using paths.
  uint64_t relayed_ok = 0, relayed_failed = 0;
  uint64_t punched_ok = 0, punched_failed = 0;
  uint64_t punch_refused_rate = 0;  // punch requests or syncs over the rate
};

namespace detail {
struct TraversalCore;
}

class Traversal {
 public:
  // Serves and uses relays and punching for `node` (which must outlive it),
  // with node.config().relay / .punch. install() hooks it into the Node.
  Traversal(asio::io_context& io, Node& node);
  ~Traversal();  // close()
  Traversal(const Traversal&) = delete;
  Traversal& operator=(const Traversal&) = delete;

  // Routes 0x68-0x6f to this (before the Node carries sessions), takes the
  // Node's preamble connections and becomes its ReachFunction.
  void install(Router& router);

  // Keeps a reservation with the relay at `relay` (peer id when known): a
  // session of its own, re-established after it closes, until release().
  // A second call for the same address while it is kept does nothing. Any
  // thread.
  void reserve_with(core::Endpoint relay, std::optional<std::string> relay_id);
  // Stops keeping the reservation at `relay` and closes its session (the
  // relay then forgets it). Any thread; nothing when none is kept.
  void release(const core::Endpoint& relay);
  // Relays that accepted a reservation from this peer now.
  std::vector<std::string> reserved_relays() const;

  // Direct, punched, relayed, in that order (a path that worked recently
  // first), remembering the outcome. The punch and relay candidates are the
  // peers with an open session here, the target excepted.
  asio::awaitable<core::Result<std::shared_ptr<Session>>> reach(core::Endpoint endpoint,
                                                                std::string peer_id);
  // One relayed session to `target` through the relay at the other end of
  // `relay` (an open session). Fails with the relay's reason.
  asio::awaitable<core::Result<std::shared_ptr<Session>>> dial_relayed(
      std::shared_ptr<Session> relay, std::string target);
  // One punched session to `target` coordinated by the peer at the other
  // end of `coordinator`; `target_port` is the port the target listens on.
  asio::awaitable<core::Result<std::shared_ptr<Session>>> dial_punched(
      std::shared_ptr<Session> coordinator, std::string target, uint16_t target_port);

  // The path last found to each member.
  std::map<std::string, PathInfo> paths() const;
  TraversalCounters counters() const;

  // Closes circuits and pending halves, forgets reservations. Idempotent.
  void close();

 private:
  std::shared_ptr<detail::TraversalCore> core_;
};

}  // namespace gossip::net
