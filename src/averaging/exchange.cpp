// Running an exchange on the engine's strand, one coroutine per side:
//   initiate: dial, OFFER, then REPLY or BUSY, then our blob out and the
//             partner's in and validated, ACKs both ways (in any order),
//             then the hand-off to the trainer thread;
//   respond:  (handle_offer checked the OFFER and sent REPLY) the trainer's
//             snapshot, then the same as above.
// Frames, blobs, the trainer and helper coroutines (dial, send) report events
// through the exchange's channel, and so does the exchange's timer.
// Every decision (what an event means, when to apply, what counts as
// failure) is the ExchangeMachine's: this file only carries them out.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>

#include "core.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"

namespace gossip::averaging::detail {

namespace {

using Kind = ExchangeEvent::Kind;

// The machine's reading of one event. The timer arrives as kStop with a
// kTimeout status (arm_timer).
Decision feed(ExchangeMachine& m, const ExchangeEvent& ev, const std::string& partner) {
  switch (ev.kind) {
    case Kind::kDialed:
      return m.on_link_error(ev.status);  // only when the dial failed
    case Kind::kReply:
      return m.on_reply(ev.weight);
    case Kind::kBusy:
      return m.on_busy();
    case Kind::kRefuse:
      return m.on_refuse(ev.code, ev.text, partner);
    case Kind::kAck:
      return m.on_ack();
    case Kind::kOtherSnapshot:
      return m.on_other_snapshot(ev.status);
    case Kind::kOwnSnapshot:
      return m.on_own_snapshot();
    case Kind::kOwnSent:
      return m.on_own_sent(ev.status);
    case Kind::kClosed:
      return m.on_closed(ev.status);
    case Kind::kStop:
      // The timer fired at the deadline: never let clock granularity make
      // the machine see "not yet" and leave the exchange without a timeout.
      if (ev.status.code() == core::Code::kTimeout) {
        return m.on_time(std::max(Clock::now(), m.deadline()));
      }
      return m.on_stop();
  }
  return {};
}

}  // namespace

std::shared_ptr<Exchange> Core::for_current(net::Session* s, uint64_t xid) {
  if (current_ && !current_->machine.ended() && current_->xid() == xid &&
      current_->session.get() == s) {
    return current_;
  }
  return nullptr;
}

void Core::deliver(const std::shared_ptr<Exchange>& ex, ExchangeEvent ev) {
  // An exchange sees about eight events; only a partner flooding duplicate
  // frames (which the machine ignores anyway) could fill the 16 slots.
  if (!ex->events.try_send(asio::error_code{}, std::move(ev))) {
    core::log_rate_limited(
        core::LogLevel::kWarn, "averaging", "event-overflow",
        "dropped an event of exchange " + std::to_string(ex->xid()) + ": its queue is full");
  }
}

asio::awaitable<ExchangeEvent> Core::next_event(Exchange& ex) {
  co_return co_await ex.events.async_receive(asio::use_awaitable);
}

void Core::arm_timer(const std::shared_ptr<Exchange>& ex) {
  // The timer is one more event source: at the deadline it reports through
  // the channel like the rest. (Racing each receive against the timer with
  // awaitable_operators' || would cost two child coroutines and a
  // cancellation per event, several strand hops each.)
  ex->timer.expires_at(ex->machine.deadline());
  std::weak_ptr<Exchange> weak = ex;
  auto self = shared_from_this();
  ex->timer.async_wait([self, weak](const asio::error_code& ec) {
    auto ex = weak.lock();
    if (ec || !ex || ex->machine.ended()) return;
    self->deliver(ex, {Kind::kStop, core::timeout_error("exchange deadline")});
  });
}

asio::awaitable<void> Core::run_to_end(std::shared_ptr<Exchange> ex) {
  while (!ex->machine.ended()) {
    const ExchangeEvent ev = co_await next_event(*ex);
    act(ex, feed(ex->machine, ev, ex->peer_id));
  }
}

asio::awaitable<void> Core::initiate(std::shared_ptr<Exchange> ex, Member peer) {
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
  try {
    // Reuse any open session with the partner (the Node's registry), else
    // dial. The dial reports through the channel, so a timeout or stop()
    // ends the exchange at once even while the dial still hangs.
    auto s = node_.session_to(peer.peer_id);
    if (!s) {
      auto self = shared_from_this();
      asio::co_spawn(
          strand_,
          [self, ex, peer]() -> asio::awaitable<void> {
            auto r = co_await self->node_.reach(peer.endpoint, peer.peer_id);
            ExchangeEvent ev{Kind::kDialed};
            if (r) {
              ev.session = *r;
            } else {
              ev.status = r.status().with_context("dial " + core::short_peer_id(peer.peer_id) +
                                                  " at " + peer.address());
            }
            if (!ex->machine.ended()) self->deliver(ex, std::move(ev));
          },
          asio::detached);
      const ExchangeEvent ev = co_await next_event(*ex);
      if (ev.kind != Kind::kDialed || !ev.session) {
        act(ex, feed(ex->machine, ev, ex->peer_id));  // dial failed, timed out or stopped
        co_return;
      }
      s = ev.session;  // now in the Node's registry for the next exchange
    }
    // OFFER; then REPLY or BUSY, both blobs and both ACKs.
    ex->session = s;
    blobs_.expect(s.get(), {kSnapshotBlob, ex->xid(), ex->other_wire(), ex});
    Offer offer{ex->xid(),        ex->step,  ex->machine.w_own(),
                ex->layout.codec, ex->count, fingerprint_};
    offer.mode = opt_.mode;
    if (opt_.mode == GossipMode::kOuter) offer.outer_steps = opt_.outer.steps;
    if (!s->try_send_frame(kOffer, encode(offer))) {
      act(ex,
          ex->machine.on_link_error(core::Status(core::Code::kClosed, "could not queue OFFER")));
      co_return;
    }
    co_await run_to_end(ex);
  } catch (const std::exception& e) {
    act(ex, ex->machine.on_link_error(core::internal_error(std::string("exchange: ") + e.what())));
  }
}

asio::awaitable<void> Core::respond(std::shared_ptr<Exchange> ex) {
  try {
    co_await run_to_end(ex);  // starts with waiting for the trainer's snapshot
  } catch (const std::exception& e) {
    act(ex, ex->machine.on_link_error(core::internal_error(std::string("exchange: ") + e.what())));
  }
}

void Core::handle_offer(std::shared_ptr<net::Session> s, Offer offer) {
  if (auto refusal = check_offer(offer, fingerprint_, model_.param_count, opt_.mode, s->peer_id(),
                                 node_.peer_id())) {
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
  auto ex = std::make_shared<Exchange>(strand_, pool_, offer.codec, model_.param_count, machine);
  ex->peer_id = s->peer_id();
  ex->session = s;
  ex->outer = opt_.mode == GossipMode::kOuter;
  current_ = ex;
  arm_timer(ex);
  blobs_.expect(s.get(), {kSnapshotBlob, ex->xid(), ex->other_wire(), ex});
  if (!s->try_send_frame(kReply, encode(Reply{ex->xid(), opt_.weight}))) {
    act(ex, ex->machine.on_link_error(core::Status(core::Code::kClosed, "could not queue REPLY")));
    return;
  }
  mailbox_.want_snapshot(ex);
  asio::co_spawn(strand_, respond(ex), asio::detached);
}

void Core::handle_busy(net::Session* s, uint64_t xid) {
  if (auto f = fetch_for(s, xid)) {
    finish_fetch(f, core::Status(core::Code::kBusy, "donor busy serving other joiners"));
    return;
  }
  if (auto ex = for_current(s, xid)) deliver(ex, {Kind::kBusy});
}

void Core::handle_refuse(net::Session* s, Refuse refuse) {
  if (auto f = fetch_for(s, refuse.xid)) {
    finish_fetch(f, fetch_refusal_status(refuse));
    return;
  }
  if (auto ex = for_current(s, refuse.xid)) {
    ExchangeEvent ev{Kind::kRefuse};
    ev.code = refuse.code;
    ev.text = std::move(refuse.reason);
    deliver(ex, std::move(ev));
  }
}

void Core::handle_snapshot_blob(net::Session* s, uint64_t xid, core::Status st) {
  auto ex = for_current(s, xid);
  if (!ex) return;
  if (st) {
    // Validate in wire form (one read-only pass); dequantizing is left to
    // the pass that uses the values.
    if (auto v = validate(ex->layout, ex->other_wire()); !v) {
      st = core::corrupt("snapshot from " + core::short_peer_id(ex->peer_id) +
                         " rejected: " + v.message());
    }
  }
  deliver(ex, {Kind::kOtherSnapshot, std::move(st)});
}

void Core::send_own(std::shared_ptr<Exchange> ex) {
  auto self = shared_from_this();
  asio::co_spawn(
      strand_,
      [self, ex]() -> asio::awaitable<void> {
        const auto header = blob_header(kSnapshotBlob, ex->xid());
        auto st = co_await ex->session->send_blob(header, ex->own_wire());
        if (st) self->counters_.add([&](Counters& c) { c.bytes_out += ex->own_wire().size(); });
        if (!ex->machine.ended()) self->deliver(ex, {Kind::kOwnSent, std::move(st)});
      },
      asio::detached);
}

bool Core::act(const std::shared_ptr<Exchange>& ex, const Decision& d) {
  if (d.send_own) send_own(ex);
  if (d.send_ack) ex->session->try_send_frame(kAck, encode_xid(ex->xid()));
  if (d.ended) finish(ex, d);
  return d.ended.has_value();
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
    core::log_debug("averaging",
                    "partner " + core::short_peer_id(ex->peer_id) + " busy; backing off");
  } else if (ending == Ending::kStopped) {
    core::log_info("averaging", "exchange " + side + core::short_peer_id(ex->peer_id) +
                                    " abandoned, nothing applied: this peer is leaving");
  } else {
    log_failure("exchange " + side + core::short_peer_id(ex->peer_id) +
                " failed, nothing applied: " + d.why.to_string());
  }
  mailbox_.ended(ex.get(), ex->machine.role(), ending, Clock::now());
}

}  // namespace gossip::averaging::detail
