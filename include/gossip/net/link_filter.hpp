// LinkFilter: fault injection at the network level, over the real TCP/Noise
// stack. It sits between a Node and its SessionHandler (usually the Router)
// and can
//  - cut links: the peer ids a predicate blocks lose their open sessions when
//    the predicate is installed, sessions that complete a handshake with them
//    later (accepted or dialed) are closed before the upper layer sees them,
//    and Node::dial with an expected peer id it blocks fails at once;
//  - shape links: frames this Node sends to a shaped peer are paced to a
//    bandwidth cap and delayed by a one-way latency (sender side: install the
//    shape on both ends of a slow link);
//  - drop exchanges: each blob this Node receives is, with a set probability,
//    cut like a connection dropped mid-transfer (receiver side).
// Tests and the simulator's partition / slow-link / loss events use it; the
// sessions really fail or really slow down, so every protocol above sees
// exactly what the network would show it.
//
// Install it as the Node's handler AND as its link filter, before listen()
// and dial():
//   auto filter = std::make_shared<net::LinkFilter>(router);
//   node->set_handler(filter);
//   node->set_link_filter(filter);
// Threads: every member function is safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "gossip/core/hash.hpp"
#include "gossip/net/session.hpp"

namespace gossip::net {

// How this Node's outgoing data to one peer is slowed. Model (applied by the
// session's writer to each socket write, never blocking an io thread: the
// writer holds a filled write on a strand timer):
//  - bandwidth: writes leave no faster than bytes_per_s on average, per
//    session and direction (a virtual link clock; each paced write carries at
//    most ~10 ms of data, and a write held up by the socket earns back at
//    most 10 ms of burst);
//  - latency: data the writer picks up after the link went idle (nothing
//    queued) leaves `latency` after it was queued (plus any pacing), so a
//    request / reply sees one `latency` per shaped direction. While a queue
//    streams (a blob, a burst of frames, or frames queued during the hold)
//    latency is not added again per write: a bulk transfer takes about
//    latency + bytes / bytes_per_s.
// Handshake messages are not shaped. Zero fields mean "no latency" / "no cap".
struct LinkShape {
  std::chrono::milliseconds latency{0};
  double bytes_per_s = 0;  // 0 = no cap
};

class LinkFilter final : public SessionHandler {
 public:
  // Returns true when the link to `peer_id` is blocked. Called under the
  // filter's lock from session strands and dialers: must be fast and must
  // not call back into the filter.
  using Predicate = std::function<bool(std::string_view peer_id)>;
  // The shape of this Node's link to `peer_id`, or nullopt for none. Called
  // from session strands (not under the filter's lock), once per session
  // after each shape() call: must be thread-safe and must not block.
  using ShapeOf = std::function<std::optional<LinkShape>(std::string_view peer_id)>;

  // Forwards every admitted session's callbacks to `inner` (may be null:
  // then admitted sessions only answer STATUS_REQ).
  explicit LinkFilter(std::shared_ptr<SessionHandler> inner);

  // Installs `blocked` (replacing any previous predicate) and closes the open
  // sessions with every peer it blocks (asynchronously, on their strands).
  void block(Predicate blocked);
  // Lets every peer through again (sessions closed earlier stay closed).
  void clear();
  // Whether the link to `peer_id` is blocked now.
  bool is_blocked(std::string_view peer_id) const;
  // Sessions refused or closed because of the filter, and dials it refused.
  uint64_t refused() const;
  // Counts a dial the Node refused because of the filter (Node calls this).
  void count_refused_dial();

  // Installs `shape_of` (replacing any previous one; null = clear_shape()).
  // Open sessions, and sessions opened later, apply it from their next
  // socket write on: frames already being paced keep their old schedule.
  // Shaping is applied by the sending Node only.
  void shape(ShapeOf shape_of);
  // Removes the shaping: sessions send at full speed from their next write.
  void clear_shape();
  // Installation counter, 0 while shape() was never called: sessions
  // re-read their shape when it changes (one atomic load per write).
  uint64_t shape_generation() const { return shape_generation_.load(std::memory_order_acquire); }
  // The shape of the link to `peer_id` under the current installation.
  std::optional<LinkShape> shape_of(std::string_view peer_id) const;

  // From now on each blob this Node receives on an admitted session is cut,
  // with probability `fraction` (clamped to [0, 1]; 0 turns dropping off),
  // the way a connection dropped mid-transfer is: the inner handler sees the
  // blob begin, then its receiver's failed end, then on_closed, and the sender's
  // session closes. Draws come from a generator seeded with `seed`
  // (deterministic for one sequence of blobs).
  void set_drop(double fraction, uint64_t seed);
  // Blobs cut by set_drop so far.
  uint64_t dropped() const;

  void on_open(Session& session) override;
  void on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) override;
  core::Result<BlobReceiver> on_blob_begin(Session& session, const BlobBegin& begin) override;
  void on_closed(Session& session, const core::Status& reason) override;

 private:
  bool blocked_locked(std::string_view peer_id) const;
  bool admitted(Session& session) const;
  bool draw_drop_locked();

  std::shared_ptr<SessionHandler> inner_;
  mutable std::mutex mu_;
  Predicate blocked_;
  std::map<const Session*, std::weak_ptr<Session>> admitted_;  // sessions inner_ saw open
  std::map<const Session*, uint32_t> cutting_;  // admitted, blob stream being dropped
  uint64_t refused_ = 0;
  std::shared_ptr<const ShapeOf> shape_of_;  // null: no shaping
  std::atomic<uint64_t> shape_generation_{0};
  double drop_fraction_ = 0;
  core::SplitMix64 drop_rng_{0};
  uint64_t dropped_ = 0;
};

}  // namespace gossip::net
