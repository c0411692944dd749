// Running an exchange on the engine's strand: dialing and OFFER, answering
// OFFERs, streaming our snapshot, validating the partner's, the timeout, and
// carrying out what the exchange's ExchangeMachine decides (act / finish).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>

#include "core.hpp"
#include "gossip/core/log.hpp"

namespace gossip::averaging::detail {

namespace {
std::string short_id(const std::string& id) { return id.substr(0, 12); }
}  // namespace

std::shared_ptr<net::Session> Core::find_session(const std::string& peer_id) {
  auto [lo, hi] = sessions_.equal_range(peer_id);
  for (auto it = lo; it != hi; ++it) {
    if (auto s = it->second.lock(); s && s->is_open()) return s;
  }
  return nullptr;
}

std::shared_ptr<Exchange> Core::for_current(net::Session* s, uint64_t xid) {
  if (current_ && !current_->machine.ended() && current_->xid() == xid &&
      current_->session.get() == s) {
    return current_;
  }
  return nullptr;
}

void Core::arm_timer(const std::shared_ptr<Exchange>& ex) {
  ex->timer.expires_at(ex->machine.deadline());
  auto self = shared_from_this();
  ex->timer.async_wait([self, ex](const asio::error_code& ec) {
    if (ec) return;
    // The timer fired at the deadline: never let clock granularity make the
    // machine see "not yet" and leave the exchange without a timeout.
    self->act(ex, ex->machine.on_time(std::max(Clock::now(), ex->machine.deadline())));
  });
}

asio::awaitable<void> Core::run_initiator(std::shared_ptr<Exchange> ex, Member peer) {
  if (current_ && !current_->machine.ended()) {
    act(ex, ex->machine.on_link_error(core::internal_error("an exchange is already in flight")));
    co_return;
  }
  current_ = ex;
  arm_timer(ex);
  if (mailbox_.stopping()) {
    act(ex, ex->machine.on_stop());
    co_return;
  }
  auto s = find_session(peer.peer_id);
  if (!s) {
    auto r = co_await node_.dial(peer.address(), peer.peer_id);
    if (ex->machine.ended()) co_return;  // timed out or stopped meanwhile
    if (!r) {
      act(ex, ex->machine.on_link_error(r.status().with_context("dial " + short_id(peer.peer_id) +
                                                                " at " + peer.address())));
      co_return;
    }
    s = *r;
    sessions_.emplace(peer.peer_id, s);
  }
  ex->session = s;
  blobs_.expect(s.get(), {kSnapshotBlob, ex->xid(), ex->other_wire(), ex});
  const Offer offer{ex->xid(), ex->step, ex->machine.w_own(), ex->format, ex->count, fingerprint_};
  if (!s->try_send_frame(kOffer, encode(offer))) {
    act(ex, ex->machine.on_link_error(core::Status(core::Code::kClosed, "could not queue OFFER")));
  }
}

void Core::handle_offer(std::shared_ptr<net::Session> s, Offer offer) {
  if (auto refusal =
          check_offer(offer, fingerprint_, model_.param_count, s->peer_id(), node_.peer_id())) {
    log_failure("refused OFFER: " + refusal->reason);
    counters_.add([&](Counters& c) {
      c.refused++;
      c.last_failure = "refused OFFER: " + refusal->reason;
    });
    s->try_send_frame(kRefuse, encode(Refuse{offer.xid, refusal->reason, refusal->code}));
    return;
  }
  if (!mailbox_.claim_for_offer()) {
    counters_.add([](Counters& c) { c.busy_answered++; });
    s->try_send_frame(kBusy, encode_xid(offer.xid));
    return;
  }
  const ExchangeMachine machine(Role::kResponder, offer.xid, opt_.weight, offer.weight,
                                Clock::now(), opt_.exchange_timeout);
  auto ex = std::make_shared<Exchange>(strand_, pool_, offer.format, model_.param_count, machine);
  ex->peer_id = s->peer_id();
  ex->session = s;
  current_ = ex;
  arm_timer(ex);
  blobs_.expect(s.get(), {kSnapshotBlob, ex->xid(), ex->other_wire(), ex});
  if (!s->try_send_frame(kReply, encode(Reply{ex->xid(), opt_.weight}))) {
    act(ex, ex->machine.on_link_error(core::Status(core::Code::kClosed, "could not queue REPLY")));
    return;
  }
  mailbox_.want_snapshot(ex);  // the machine sends ours once the trainer took it
}

void Core::handle_busy(net::Session* s, uint64_t xid) {
  if (auto f = fetch_for(s, xid)) {
    finish_fetch(f, core::Status(core::Code::kBusy, "donor busy serving other joiners"));
    return;
  }
  if (auto ex = for_current(s, xid)) act(ex, ex->machine.on_busy());
}

void Core::handle_refuse(net::Session* s, Refuse refuse) {
  if (auto f = fetch_for(s, refuse.xid)) {
    finish_fetch(f, fetch_refusal_status(refuse));
    return;
  }
  if (auto ex = for_current(s, refuse.xid)) {
    act(ex, ex->machine.on_refuse(refuse.code, refuse.reason, s->peer_id()));
  }
}

void Core::handle_snapshot_blob(net::Session* s, uint64_t xid, core::Status st) {
  auto ex = for_current(s, xid);
  if (!ex) return;
  if (st) {
    // Validate in wire form (one read-only pass); dequantizing is left to
    // the pass that uses the values.
    const size_t bad = first_non_finite_wire(ex->format, ex->other_wire());
    if (bad < ex->count) {
      st = core::corrupt("snapshot from " + short_id(ex->peer_id) +
                         " rejected: non-finite value at element " + std::to_string(bad) + " of " +
                         std::to_string(ex->count));
    }
  }
  act(ex, ex->machine.on_other_snapshot(st));
}

void Core::send_own(std::shared_ptr<Exchange> ex) {
  auto self = shared_from_this();
  asio::co_spawn(
      strand_,
      [self, ex]() -> asio::awaitable<void> {
        const auto header = blob_header(kSnapshotBlob, ex->xid());
        auto st = co_await ex->session->send_blob(header, ex->own_wire());
        if (st) self->counters_.add([&](Counters& c) { c.bytes_out += ex->own_wire().size(); });
        self->act(ex, ex->machine.on_own_sent(st));
      },
      asio::detached);
}

void Core::act(const std::shared_ptr<Exchange>& ex, const Decision& d) {
  if (d.send_own) send_own(ex);
  if (d.send_ack) ex->session->try_send_frame(kAck, encode_xid(ex->xid()));
  if (d.ended) finish(ex, d);
}

void Core::finish(const std::shared_ptr<Exchange>& ex, const Decision& d) {
  ex->timer.cancel();
  if (current_ == ex) current_.reset();
  const Ending ending = *d.ended;
  if (ending == Ending::kApplied) {
    // Both snapshots are final here (the partner ACKed ours, so our snapshot
    // was taken and ex->path is set).
    prepare_apply(*ex);
    mailbox_.ready_to_apply(ex);
    return;
  }
  if (ex->session) {
    blobs_.unexpect(ex->session.get(), ex->xid());
    if (d.refuse && ex->session->is_open()) {
      ex->session->try_send_frame(kRefuse, encode(Refuse{ex->xid(), d.why.message(), *d.refuse}));
    }
  }
  counters_.add([&](Counters& c) {
    if (ending == Ending::kStopped) {
      return;
    } else if (ending == Ending::kBusy) {
      c.exchanges_busy++;
    } else {
      c.exchanges_failed++;
      if (ending == Ending::kRefused) c.refused++;
      c.last_failure = d.why.to_string();
    }
  });
  const std::string side = ex->initiator() ? "with " : "from ";
  if (ending == Ending::kBusy) {
    core::log_debug("averaging", "partner " + short_id(ex->peer_id) + " busy; backing off");
  } else if (ending == Ending::kStopped) {
    core::log_info("averaging", "exchange " + side + short_id(ex->peer_id) +
                                    " abandoned, nothing applied: this peer is leaving");
  } else {
    log_failure("exchange " + side + short_id(ex->peer_id) +
                " failed, nothing applied: " + d.why.to_string());
  }
  mailbox_.ended(ex.get(), ex->machine.role(), ending, Clock::now());
}

}  // namespace gossip::averaging::detail
