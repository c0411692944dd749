// SessionRegistry: every session a Node carries, and the open ones by peer id.
// It is the one place that knows which sessions exist: the Node closes them
// all through it, and the protocols above (membership, averaging) ask it for
// an open session to a peer instead of keeping lists of their own.
//
// A session is tracked from its creation (so that close_all() reaches one
// still in its handshake) and indexed by peer id once its handshake
// succeeded. Entries are weak: the registry never keeps a session alive.
//
// Threads: every member function is safe from any thread (one mutex, a leaf:
// no callback runs under it).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/net/session.hpp"

namespace gossip::net {

class SessionRegistry {
 public:
  // A new session (handshake not done). Returns false, tracking nothing,
  // once close_all() ran: the caller must close it.
  bool track(const std::shared_ptr<Session>& session);
  // The handshake succeeded: `session` is found by its peer_id() from now
  // on. Call on the session's strand (peer_id() is set there).
  void opened(const std::shared_ptr<Session>& session);
  // The session closed: forgets it.
  void closed(const Session* session);

  // The oldest session with `peer_id` that is still open (any origin,
  // dialed or accepted), or null.
  std::shared_ptr<Session> find(std::string_view peer_id) const;
  // Stops tracking and closes every session with `reason` (asynchronously,
  // on their strands). Later track() calls return false. Idempotent.
  void close_all(const core::Status& reason);

 private:
  mutable std::mutex mu_;
  bool closed_ = false;
  std::vector<std::weak_ptr<Session>> all_;  // tracked, handshake done or not
  // Open sessions by peer id, oldest first among equal keys.
  std::multimap<std::string, std::weak_ptr<Session>, std::less<>> open_;
};

}  // namespace gossip::net
