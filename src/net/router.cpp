// Router: fans a Node's session callbacks out to the protocol handlers by
// frame-type range; blobs go by the first byte of their header.
#include "gossip/net/router.hpp"

#include <stdexcept>
#include <string>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"

namespace gossip::net {

namespace {
bool reserved(uint8_t t) {
  return t <= kBlobChunk || t == kStatusReq || t == kStatus;
}
}  // namespace

void Router::add(uint8_t first, uint8_t last, std::shared_ptr<SessionHandler> handler) {
  if (first > last || !handler)
    throw std::invalid_argument("Router::add: empty range or null handler");
  for (unsigned t = first; t <= last; ++t) {
    if (reserved(static_cast<uint8_t>(t)) || find(static_cast<uint8_t>(t)) != nullptr) {
      throw std::invalid_argument("Router::add: type " + std::to_string(t) +
                                  " is reserved or already routed");
    }
  }
  routes_.push_back({first, last, std::move(handler)});
}

SessionHandler* Router::find(uint8_t type) const {
  for (const Route& r : routes_) {
    if (type >= r.first && type <= r.last) return r.handler.get();
  }
  return nullptr;
}

void Router::on_open(Session& session) {
  for (const Route& r : routes_) r.handler->on_open(session);
}

void Router::on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) {
  if (SessionHandler* h = find(type)) {
    h->on_frame(session, type, body);
    return;
  }
  {
    std::lock_guard l(mu_);
    ++unrouted_;
  }
  core::log_rate_limited(core::LogLevel::kWarn, "net", "router-unrouted",
                         "dropped frame of unknown type " + std::to_string(type) + " from " +
                             core::short_peer_id(session.peer_id()));
}

core::Result<BlobReceiver> Router::on_blob_begin(Session& session, const BlobBegin& begin) {
  SessionHandler* h = begin.header.empty() ? nullptr : find(begin.header[0]);
  if (h == nullptr) {
    std::lock_guard l(mu_);
    ++unrouted_;
    return core::protocol_error(
        "blob header names no known protocol (first byte " +
        (begin.header.empty() ? std::string("missing") : std::to_string(begin.header[0])) + ")");
  }
  return h->on_blob_begin(session, begin);
}

void Router::on_closed(Session& session, const core::Status& reason) {
  for (const Route& r : routes_) r.handler->on_closed(session, reason);
}

uint64_t Router::unrouted() const {
  std::lock_guard l(mu_);
  return unrouted_;
}

}  // namespace gossip::net
