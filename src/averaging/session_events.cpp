// Core's construction and its SessionHandler side: frames and blobs from the
// Node's session strands are parsed there and handed to the engine's strand.
// A blob we accept carries its BlobSlot in the net::BlobReceiver returned to
// the session, which reports the blob's end exactly once.
#include <asio/post.hpp>

#include "core.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"

namespace gossip::averaging::detail {

namespace {
Schedule::Options schedule_options(const Options& o) {
  return {o.interval_steps, o.interval, o.backoff};
}
}  // namespace

Core::Core(asio::io_context& io_ctx, net::Node& node, std::shared_ptr<PeerDirectory> directory,
           ModelIdentity model, Options options, uint64_t seed)
    : io(io_ctx),
      strand_(asio::make_strand(io_ctx)),
      node_(node),
      directory_(std::move(directory)),
      model_(model),
      opt_(options),
      fingerprint_(fingerprint_hex(model.fingerprint)),
      xids_(seed),
      mailbox_(schedule_options(options), seed ^ 0x5deece66dULL) {}

void Core::post(std::function<void()> fn) {
  asio::post(strand_, std::move(fn));
}

void Core::log_failure(const std::string& what) {
  core::log_rate_limited(core::LogLevel::kWarn, "averaging", what.substr(0, 40), what,
                         std::chrono::seconds(2));
}

// --- session callbacks (session strands) -----------------------------------

void Core::on_closed(net::Session& s, const core::Status& reason) {
  blobs_.forget(&s);
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp, reason] {
    if (auto ex = self->current_; ex && ex->session == sp)
      self->act(ex, ex->machine.on_closed(reason));
    std::vector<std::shared_ptr<StateFetch>> hit;
    for (auto& [xid, f] : self->fetches_) {
      if (f->session == sp) hit.push_back(f);
    }
    for (auto& f : hit) self->finish_fetch(f, reason.with_context("donor connection closed"));
  });
}

void Core::on_frame(net::Session& s, uint8_t type, std::span<const uint8_t> body) {
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  auto bad = [&](const core::Status& st) {
    core::log_rate_limited(
        core::LogLevel::kWarn, "averaging", "bad-frame",
        "ignored malformed frame from " + core::short_peer_id(s.peer_id()) + ": " + st.to_string());
  };
  switch (type) {
    case kOffer: {
      auto m = parse_offer(body);
      if (!m) {
        // Say so to the initiator (a codec this peer does not know, bad
        // codec parameters) rather than leave it waiting for its timeout.
        if (auto xid = parse_xid(body)) {
          s.try_send_frame(kRefuse, encode(Refuse{*xid, "OFFER rejected: " + m.status().message(),
                                                  RefuseCode::kBadOffer}));
        }
        return bad(m.status());
      }
      post([self, sp, m = *m] { self->handle_offer(sp, m); });
      return;
    }
    case kReply: {
      auto m = parse_reply(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] {
        if (auto ex = self->for_current(sp.get(), m.xid))
          self->act(ex, ex->machine.on_reply(m.weight));
      });
      return;
    }
    case kBusy:
    case kAck: {
      auto m = parse_xid(body);
      if (!m) return bad(m.status());
      if (type == kBusy) {
        post([self, sp, xid = *m] { self->handle_busy(sp.get(), xid); });
      } else {
        post([self, sp, xid = *m] {
          if (auto ex = self->for_current(sp.get(), xid)) {
            self->deliver(ex, {ExchangeEvent::Kind::kAck});
          }
        });
      }
      return;
    }
    case kRefuse: {
      auto m = parse_refuse(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] { self->handle_refuse(sp.get(), m); });
      return;
    }
    case kStateReq: {
      auto m = parse_state_request(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] { self->handle_state_req(sp, m); });
      return;
    }
    case kState: {
      auto m = parse_state_info(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] { self->handle_state_info(sp.get(), m); });
      return;
    }
    default:
      bad(core::protocol_error("unknown averaging frame type " + std::to_string(type)));
  }
}

core::Result<net::BlobReceiver> Core::on_blob_begin(net::Session& s, const net::BlobBegin& b) {
  auto tag = parse_blob_header(b.header);
  if (!tag) return tag.status();
  auto slot = blobs_.begin(&s, tag->xid, tag->type);
  if (!slot) {
    return core::protocol_error("unexpected averaging blob (type " + std::to_string(tag->type) +
                                ", xid " + std::to_string(tag->xid) + ")");
  }
  auto self = shared_from_this();
  std::weak_ptr<net::Session> weak = s.weak_from_this();
  if (b.total_bytes != slot->dest.size()) {
    // Wrong size: refuse the blob and fail what waited for it at once.
    auto st = core::corrupt("blob of " + std::to_string(b.total_bytes) + " bytes from " +
                            core::short_peer_id(s.peer_id()) + ", expected exactly " +
                            std::to_string(slot->dest.size()));
    blob_ended(s.shared_from_this(), *slot, st);
    return st;
  }
  const std::span<uint8_t> dest = slot->dest;
  // The session keeps the slot (and the memory it names) until the blob ends.
  return net::BlobReceiver{
      dest, [self, weak, slot = std::move(*slot)](const core::Status& st) {
        if (st) self->counters_.add([&](Counters& c) { c.bytes_in += slot.dest.size(); });
        if (auto sp = weak.lock()) self->blob_ended(sp, slot, st);
      }};
}

void Core::blob_ended(const std::shared_ptr<net::Session>& s, const BlobSlot& slot,
                      const core::Status& st) {
  auto self = shared_from_this();
  post([self, s, slot, st] {
    if (slot.type == kSnapshotBlob)
      self->handle_snapshot_blob(s.get(), slot.xid, st);
    else
      self->handle_state_blob(s.get(), slot.xid, st);
  });
}

}  // namespace gossip::averaging::detail
