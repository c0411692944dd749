// LinkFilter: admits or refuses sessions by peer id, forwards the callbacks
// of admitted sessions to the inner handler, hands the sessions' writers
// their link shape, and cuts a seeded fraction of received blobs. The pacing
// itself lives in the session writer (session_io.cpp), which asks
// shape_of() whenever shape_generation() changes.
#include "gossip/net/link_filter.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"

namespace gossip::net {

namespace {
core::Status blocked_status(std::string_view peer_id) {
  return core::unavailable("link to peer " + core::short_peer_id(peer_id) +
                           " blocked by the link filter");
}

core::Status dropped_status() {
  return core::Status(core::Code::kClosed,
                      "connection dropped mid-blob by the link filter (simulated loss)");
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

void LinkFilter::shape(ShapeOf shape_of) {
  std::lock_guard l(mu_);
  shape_of_ = shape_of ? std::make_shared<const ShapeOf>(std::move(shape_of)) : nullptr;
  shape_generation_.fetch_add(1, std::memory_order_acq_rel);
}

void LinkFilter::clear_shape() {
  shape(nullptr);
}

std::optional<LinkShape> LinkFilter::shape_of(std::string_view peer_id) const {
  std::shared_ptr<const ShapeOf> f;
  {
    std::lock_guard l(mu_);
    f = shape_of_;
  }
  // Called outside the lock: the simulator's function may take its own.
  if (!f) return std::nullopt;
  return (*f)(peer_id);
}

void LinkFilter::set_drop(double fraction, uint64_t seed) {
  std::lock_guard l(mu_);
  drop_fraction_ = std::clamp(fraction, 0.0, 1.0);
  drop_rng_ = core::SplitMix64(seed);
}

uint64_t LinkFilter::dropped() const {
  std::lock_guard l(mu_);
  return dropped_;
}

bool LinkFilter::draw_drop_locked() {
  if (drop_fraction_ <= 0) return false;
  return drop_rng_.next_unit() < drop_fraction_;
}

bool LinkFilter::admitted(Session& session) const {
  std::lock_guard l(mu_);
  return admitted_.count(&session) != 0 && cutting_.count(&session) == 0 &&
         !blocked_locked(session.peer_id());
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
    core::log_debug("net", "session with " + core::short_peer_id(session.peer_id()) +
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

core::Result<BlobReceiver> LinkFilter::on_blob_begin(Session& session, const BlobBegin& begin) {
  if (!admitted(session)) return blocked_status(session.peer_id());
  if (!inner_) return core::unavailable("no blob receiver installed");
  bool drop = false;
  {
    std::lock_guard l(mu_);
    drop = draw_drop_locked();
  }
  auto rx = inner_->on_blob_begin(session, begin);
  if (drop) {
    // The inner handler took the blob (or refused it) as on a healthy link;
    // the session is then cut, as when a connection dies mid-transfer: the
    // inner receiver's end fails (truncated, or converted here if every byte
    // had already arrived), then on_closed; the sender sees its session
    // close.
    {
      std::lock_guard l(mu_);
      ++dropped_;
      cutting_[&session] = begin.stream_id;
    }
    if (rx && rx->on_end) {
      rx->on_end = [end = std::move(rx->on_end), stream = begin.stream_id](const core::Status& st) {
        if (!st.is_ok()) return end(st);
        end(core::Status(core::Code::kClosed, "truncated: blob " + std::to_string(stream) +
                                                  " cut (" + dropped_status().to_string() +
                                                  "); discard it"));
      };
    }
    core::log_debug("net", "blob " + std::to_string(begin.stream_id) + " from " +
                               core::short_peer_id(session.peer_id()) +
                               " dropped by the link filter");
    session.close(dropped_status());
  }
  return rx;
}

void LinkFilter::on_closed(Session& session, const core::Status& reason) {
  bool known = false;
  {
    std::lock_guard l(mu_);
    known = admitted_.erase(&session) != 0;
    cutting_.erase(&session);
  }
  if (inner_ && known) inner_->on_closed(session, reason);
}

}  // namespace gossip::net
