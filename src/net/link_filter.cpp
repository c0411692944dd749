// LinkFilter: admits or refuses sessions by peer id and forwards the
// callbacks of admitted sessions to the inner handler.
#include "gossip/net/link_filter.hpp"

#include <string>
#include <vector>

#include "gossip/core/log.hpp"

namespace gossip::net {

namespace {
core::Status blocked_status(std::string_view peer_id) {
  return core::unavailable("link to peer " + std::string(peer_id.substr(0, 12)) +
                           " blocked by the link filter");
}
}  // namespace

LinkFilter::LinkFilter(std::shared_ptr<SessionHandler> inner) : inner_(std::move(inner)) {}

void LinkFilter::block(Predicate blocked) {
  std::vector<std::shared_ptr<Session>> to_close;
  {
    std::lock_guard l(mu_);
    blocked_ = std::move(blocked);
    for (auto& [ptr, weak] : admitted_) {
      auto s = weak.lock();
      if (s && blocked_locked(s->peer_id())) to_close.push_back(std::move(s));
    }
    refused_ += to_close.size();
  }
  for (auto& s : to_close) s->close(blocked_status(s->peer_id()));
}

void LinkFilter::clear() {
  std::lock_guard l(mu_);
  blocked_ = nullptr;
}

bool LinkFilter::blocked_locked(std::string_view peer_id) const {
  return blocked_ && blocked_(peer_id);
}

bool LinkFilter::is_blocked(std::string_view peer_id) const {
  std::lock_guard l(mu_);
  return blocked_locked(peer_id);
}

uint64_t LinkFilter::refused() const {
  std::lock_guard l(mu_);
  return refused_;
}

void LinkFilter::count_refused_dial() {
  std::lock_guard l(mu_);
  ++refused_;
}

bool LinkFilter::admitted(Session& session) const {
  std::lock_guard l(mu_);
  return admitted_.count(&session) != 0 && !blocked_locked(session.peer_id());
}

void LinkFilter::on_open(Session& session) {
  bool refuse = false;
  {
    std::lock_guard l(mu_);
    refuse = blocked_locked(session.peer_id());
    if (refuse) {
      ++refused_;
    } else {
      admitted_[&session] = session.weak_from_this();
    }
  }
  if (refuse) {
    core::log_debug("net", "session with " + session.peer_id().substr(0, 12) +
                               " refused by the link filter");
    session.close(blocked_status(session.peer_id()));
    return;
  }
  if (inner_) inner_->on_open(session);
}

void LinkFilter::on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) {
  // Frames still in flight on a session the filter is closing are dropped.
  if (inner_ && admitted(session)) inner_->on_frame(session, type, body);
}

core::Result<std::span<uint8_t>> LinkFilter::on_blob_begin(Session& session,
                                                           const BlobBegin& begin) {
  if (!admitted(session)) return blocked_status(session.peer_id());
  if (!inner_) return core::unavailable("no blob receiver installed");
  return inner_->on_blob_begin(session, begin);
}

void LinkFilter::on_blob_end(Session& session, uint32_t stream_id, const core::Status& status) {
  bool known = false;
  {
    std::lock_guard l(mu_);
    known = admitted_.count(&session) != 0;
  }
  // The inner handler accepted this blob: it gets its end, blocked or not.
  if (inner_ && known) inner_->on_blob_end(session, stream_id, status);
}

void LinkFilter::on_closed(Session& session, const core::Status& reason) {
  bool known = false;
  {
    std::lock_guard l(mu_);
    known = admitted_.erase(&session) != 0;
  }
  if (inner_ && known) inner_->on_closed(session, reason);
}

}  // namespace gossip::net
