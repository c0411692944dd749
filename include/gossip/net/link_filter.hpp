// LinkFilter: fault injection at the network level. It sits between a Node
// and its SessionHandler (usually the Router) and cuts the links to the peer
// ids a predicate blocks: open sessions with them are closed when the
// predicate is installed, sessions that complete a handshake with them later
// (accepted or dialed) are closed before the upper layer sees them, and
// Node::dial with an expected peer id it blocks fails at once. Tests and the
// simulator's partition events use it; the sessions really fail, so every
// protocol above sees exactly what a network partition would show it.
//
// Install it as the Node's handler AND as its link filter:
//   auto filter = std::make_shared<net::LinkFilter>(router);
//   node->set_handler(filter);
//   node->set_link_filter(filter);
// Threads: every member function is safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include "gossip/net/session.hpp"

namespace gossip::net {

class LinkFilter final : public SessionHandler {
 public:
  // Returns true when the link to `peer_id` is blocked. Called under the
  // filter's lock from session strands and dialers: must be fast and must
  // not call back into the filter.
  using Predicate = std::function<bool(std::string_view peer_id)>;

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

  void on_open(Session& session) override;
  void on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) override;
  core::Result<std::span<uint8_t>> on_blob_begin(Session& session, const BlobBegin& begin) override;
  void on_blob_end(Session& session, uint32_t stream_id, const core::Status& status) override;
  void on_closed(Session& session, const core::Status& reason) override;

 private:
  bool blocked_locked(std::string_view peer_id) const;
  bool admitted(Session& session) const;

  std::shared_ptr<SessionHandler> inner_;
  mutable std::mutex mu_;
  Predicate blocked_;
  std::map<const Session*, std::weak_ptr<Session>> admitted_;  // sessions inner_ saw open
  uint64_t refused_ = 0;
};

}  // namespace gossip::net
