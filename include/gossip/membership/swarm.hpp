// Swarm: one peer's membership on the real network. It runs the SWIM state
// machine (swim.hpp) on a strand of the shared io_context, carries its
// messages as frames 0x10..0x2f over the Node's secure sessions, and offers
// the averaging engine and the peer program a thread-safe view: live
// members, a uniformly random live member, events, stats.
//
// Wiring (the owner builds the Node and its Router; Swarm registers itself):
//   auto node = std::make_shared<net::Node>(io, net_cfg, identity, swarm_key);
//   auto router = std::make_shared<net::Router>();
//   node->set_handler(router);
//   membership::Swarm swarm(io, node, *router, cfg);   // before listen()
//   node->listen(...);
//   swarm.start();                                     // knows the address now
//   swarm.join_wait({"10.0.0.4:7400"}, 10s);           // or co_await join()
//   ...
//   swarm.leave_wait();                                // LEAVE, flushed
//
// Sessions: a message to a member goes over any open session with that peer
// (one it dialed, one it accepted, or one another protocol opened: the
// session writer interleaves control frames between blob chunks, so
// membership frames never wait behind more than one parameter chunk). With
// none open it dials the member's address expecting the member's peer id
// (the handshake refuses anyone else), at most max_dials at once, each dial
// a coroutine of its own; frames wait in a small per-peer queue meanwhile.
// A failed dial drops the queued frames (SWIM treats them as lost) and backs
// off. Sessions this Swarm dialed are closed after session_idle without
// membership traffic; others belong to whoever opened them.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/membership/options.hpp"
#include "gossip/membership/swim.hpp"

namespace gossip::net {
class Node;
class Router;
}  // namespace gossip::net

namespace gossip::membership {

namespace detail {
struct SwarmCore;
}

// First and last frame type the Swarm claims on the Router (0x10..0x18 are
// used; the rest of the range is reserved for membership).
inline constexpr uint8_t kFirstSwarmFrame = 0x10;
inline constexpr uint8_t kLastSwarmFrame = 0x2f;

struct SwarmConfig {
  Options protocol;
  // "host:port" other peers dial to reach this one. Empty: the Node's
  // listening endpoint, which then must not be a wildcard address.
  std::string advertise;
  // 0: wall-clock milliseconds at start(), so that a restarted peer (same
  // identity) always comes back with a higher incarnation.
  uint64_t incarnation = 0;
  uint64_t seed = 0;              // 0: from std::random_device
  size_t max_dials = 8;           // dials in flight at once
  size_t max_queued_frames = 64;  // per peer, while its session is dialed
  size_t max_own_sessions = 32;   // dialed sessions kept open (LRU beyond)
  Millis session_idle{5000};      // dialed sessions idle this long are closed
  Millis min_dial_backoff{100};   // after a failed dial; doubles per failure
  Millis max_dial_backoff{1000};
};

struct SwarmStats {
  uint64_t bytes_sent = 0;  // membership frame bytes (5-byte header + body)
  uint64_t bytes_received = 0;
  uint64_t frames_sent = 0;
  uint64_t frames_received = 0;
  uint64_t frames_rejected = 0;  // undecodable, or refused by the state machine
  uint64_t frames_dropped = 0;   // no session could carry them (dial failed, queue full)
  uint64_t dials = 0;
  uint64_t dial_failures = 0;
  Stats protocol;  // the state machine's own counters
};

class Swarm {
 public:
  using EventHandler = std::function<void(const Event&)>;

  // Registers the Swarm on `router` for kFirstSwarmFrame..kLastSwarmFrame:
  // construct it before the Node listens or dials. `io` carries the Swarm's
  // strand (usually the Node's io_context). The Swarm keeps only a weak
  // reference to the Node (the Node's handler chain owns the Swarm's core);
  // a dial in flight holds it until it completes. Nothing runs until start().
  Swarm(asio::io_context& io, std::shared_ptr<net::Node> node, net::Router& router,
        SwarmConfig config);
  ~Swarm();  // stop()
  Swarm(const Swarm&) = delete;
  Swarm& operator=(const Swarm&) = delete;

  // Called on the Swarm's strand for every membership change; must not block.
  // Set before start().
  void set_event_handler(EventHandler handler);

  // Creates the state machine (this peer alone, not yet joined) and starts
  // its timers. Fails on bad options or when no address can be advertised.
  // Any thread, once.
  core::Status start();

  // Joins through `seeds` ("host:port", tried together, JOIN re-sent every
  // protocol.join_retry, with a dial backoff per address) and completes when
  // a seed answered with its member list, or fails after `timeout` with a
  // kUnavailable message naming every address tried and why it failed. A
  // seed whose failure cannot change (the dial reached this peer's own
  // identity key; its host name does not exist) is given up at once, and
  // when every seed is given up the join fails without waiting for
  // `timeout`. A seed that closes the session right after the handshake,
  // before sending anything, is reported as most likely using another swarm
  // key. `cancelled` (optional) is polled every 20 ms on the Swarm's strand
  // (so it must be cheap and thread-safe); once it returns true the join
  // fails with kClosed. With no seeds (or only this peer's own address)
  // this peer founds a swarm and it completes at once. After a failure the
  // machine keeps trying in the background until leave()/stop(). Requires
  // start().
  asio::awaitable<core::Status> join(std::vector<std::string> seeds, Millis timeout,
                                     std::function<bool()> cancelled = {});
  // Blocking join(); must not be called from a thread running `io`.
  core::Status join_wait(std::vector<std::string> seeds, Millis timeout,
                         std::function<bool()> cancelled = {});

  // Leaves gracefully: LEAVE to every live member, then waits up to `flush`
  // for those frames to be handed to sessions and written. The Swarm is
  // inert afterwards (no probes, incoming messages ignored).
  asio::awaitable<void> leave(Millis flush = Millis(1000));
  // Blocking leave(); must not be called from a thread running `io`.
  void leave_wait(Millis flush = Millis(1000));

  // Replaces this peer's advertised address and flags (kMemberPrivate,
  // kMemberMapped) under a new incarnation, which gossip spreads (the Reach
  // protocol calls it once a dial-back confirmed an address, or none could).
  // Asynchronous; no effect before start() or after stop(). Any thread.
  void set_self_address(std::string address, uint8_t flags);

  // Stops timers and ignores further traffic without a word (a crash, as far
  // as the others can tell, unless leave() ran first); closes the sessions
  // this Swarm dialed. Idempotent; any thread.
  void stop();

  // Snapshots, consistent as of the last message or timer the Swarm
  // handled. Any thread.
  const std::string& peer_id() const;
  Member self() const;
  bool joined() const;
  // Every known member except self, sorted by id, any state.
  std::vector<Member> members() const;
  // Alive members except self (suspects excluded), sorted by id.
  std::vector<Member> live_members() const;
  size_t live_count() const;
  // How this peer sees `peer_id` (nullopt: unknown).
  std::optional<MemberState> state_of(std::string_view peer_id) const;
  // A uniformly random alive member other than self and `exclude_id`.
  std::optional<Member> random_live_member(std::string_view exclude_id = {});
  SwarmStats stats() const;

 private:
  std::shared_ptr<detail::SwarmCore> core_;
};

}  // namespace gossip::membership
