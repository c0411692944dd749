// The exchange protocol on the engine's strand: OFFER / REPLY / BUSY /
// REFUSE / ACK, the two snapshot blobs, validation, timeouts, and the
// hand-off of a finished exchange to the trainer thread.
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

void Core::arm_timer(const std::shared_ptr<Exchange>& ex) {
  ex->timer.expires_after(opt_.exchange_timeout);
  auto self = shared_from_this();
  ex->timer.async_wait([self, ex](const asio::error_code& ec) {
    if (ec) return;
    self->fail(ex,
               core::timeout_error("exchange " + std::to_string(ex->xid) + " not finished within " +
                                   std::to_string(self->opt_.exchange_timeout.count()) + " ms"),
               Outcome::kFailed);
  });
}

namespace {
std::shared_ptr<Exchange> current_match(const std::shared_ptr<Exchange>& cur, net::Session* s,
                                        uint64_t xid) {
  if (cur && !cur->finished && cur->xid == xid && cur->session.get() == s) return cur;
  return nullptr;
}
}  // namespace

asio::awaitable<void> Core::run_initiator(std::shared_ptr<Exchange> ex, Member peer) {
  if (current_ && !current_->finished) {
    fail(ex, core::internal_error("an exchange is already in flight"), Outcome::kFailed);
    co_return;
  }
  current_ = ex;
  arm_timer(ex);
  bool stopping = false;
  {
    std::lock_guard l(mail_mu_);
    stopping = stopping_;
  }
  if (stopping) {
    fail(ex, core::Status(core::Code::kClosed, "averaging engine stopped"), Outcome::kStopped);
    co_return;
  }
  auto s = find_session(peer.peer_id);
  if (!s) {
    auto r = co_await node_.dial(peer.address(), peer.peer_id);
    if (ex->finished) co_return;  // timed out or stopped meanwhile
    if (!r) {
      fail(ex, r.status().with_context("dial " + short_id(peer.peer_id) + " at " + peer.address()),
           Outcome::kFailed);
      co_return;
    }
    s = *r;
    sessions_.emplace(peer.peer_id, s);
  }
  ex->session = s;
  expect_blob(s.get(), {kSnapshotBlob, ex->xid, ex->other_wire(), ex});
  const Offer offer{ex->xid, ex->step, ex->w_own, ex->format, ex->count, fingerprint_};
  if (!s->try_send_frame(kOffer, encode(offer))) {
    fail(ex, core::Status(core::Code::kClosed, "could not queue OFFER"), Outcome::kFailed);
  }
}

void Core::handle_offer(std::shared_ptr<net::Session> s, Offer offer) {
  std::string reason;
  if (offer.fingerprint != fingerprint_) {
    reason = std::string(kModelMismatch) + " peer " + short_id(s->peer_id()) + " has model fingerprint " +
             offer.fingerprint + ", peer " + short_id(node_.peer_id()) + " has " + fingerprint_ +
             " (different architecture: cannot average)";
  } else if (offer.count != model_.param_count) {
    reason = "size mismatch: peer " + short_id(s->peer_id()) + " offers " +
             std::to_string(offer.count) + " parameters, this model has " +
             std::to_string(model_.param_count);
  }
  if (!reason.empty()) {
    log_failure("refused OFFER: " + reason);
    add_counters([&](Counters& c) {
      c.refused++;
      c.last_failure = "refused OFFER: " + reason;
    });
    s->try_send_frame(kRefuse, encode(Refuse{offer.xid, reason}));
    return;
  }
  bool accept = false;
  {
    std::lock_guard l(mail_mu_);
    accept = !slot_busy_ && !closed_for_offers_ && !stopping_;
    if (accept) slot_busy_ = true;
  }
  if (!accept) {
    add_counters([](Counters& c) { c.busy_answered++; });
    s->try_send_frame(kBusy, encode_xid(offer.xid));
    return;
  }
  auto ex = std::make_shared<Exchange>(strand_, pool_, offer.format, model_.param_count);
  ex->xid = offer.xid;
  ex->peer_id = s->peer_id();
  ex->session = s;
  ex->w_own = opt_.weight;
  ex->w_other = offer.weight;
  ex->replied = true;
  current_ = ex;
  arm_timer(ex);
  expect_blob(s.get(), {kSnapshotBlob, ex->xid, ex->other_wire(), ex});
  if (!s->try_send_frame(kReply, encode(Reply{ex->xid, ex->w_own}))) {
    fail(ex, core::Status(core::Code::kClosed, "could not queue REPLY"), Outcome::kFailed);
    return;
  }
  {
    std::lock_guard l(mail_mu_);
    want_snapshot_ = ex;
  }
  mail_cv_.notify_all();
}

void Core::handle_reply(net::Session* s, Reply reply) {
  auto ex = current_match(current_, s, reply.xid);
  if (!ex || !ex->initiator || ex->replied) return;
  ex->replied = true;
  ex->w_other = reply.weight;
  send_own(ex);
}

void Core::own_snapshot_ready(std::shared_ptr<Exchange> ex) {
  if (ex->finished || current_ != ex) return;
  send_own(ex);
}

void Core::send_own(std::shared_ptr<Exchange> ex) {
  auto self = shared_from_this();
  asio::co_spawn(
      strand_,
      [self, ex]() -> asio::awaitable<void> {
        const auto header = blob_header(kSnapshotBlob, ex->xid);
        auto st = co_await ex->session->send_blob(header, ex->own_wire());
        if (st) {
          self->add_counters([&](Counters& c) { c.bytes_out += ex->own_wire().size(); });
          ex->own_sent = true;
          self->maybe_complete(ex);
        } else {
          self->fail(ex, st.with_context("sending snapshot"), Outcome::kFailed);
        }
      },
      asio::detached);
}

void Core::handle_busy(net::Session* s, uint64_t xid) {
  if (auto f = fetch_for(s, xid)) {
    finish_fetch(f, core::Status(core::Code::kBusy, "donor busy serving other joiners"));
    return;
  }
  auto ex = current_match(current_, s, xid);
  if (!ex || !ex->initiator || ex->replied) return;
  fail(ex, core::Status(core::Code::kBusy, "partner busy"), Outcome::kBusy);
}

void Core::handle_refuse(net::Session* s, Refuse refuse) {
  if (auto f = fetch_for(s, refuse.xid)) {
    // A donor with another model (handle_state_req's reason) refuses for
    // good: kInvalidArgument, so fetch_state can tell a misconfigured joiner
    // from members that are merely busy or gone.
    const bool model = refuse.reason.rfind(kModelMismatch, 0) == 0;
    finish_fetch(f, core::Status(model ? core::Code::kInvalidArgument : core::Code::kProtocol,
                                 "donor refused: " + refuse.reason));
    return;
  }
  auto ex = current_match(current_, s, refuse.xid);
  if (!ex) return;
  fail(ex, core::protocol_error("partner " + short_id(s->peer_id()) + " refused: " + refuse.reason),
       Outcome::kRemote);
}

void Core::handle_ack(net::Session* s, uint64_t xid) {
  auto ex = current_match(current_, s, xid);
  if (!ex) return;
  ex->peer_acked = true;
  maybe_complete(ex);
}

void Core::handle_snapshot_blob(net::Session* s, uint64_t xid, core::Status st) {
  auto ex = current_match(current_, s, xid);
  if (!ex) return;
  if (!st) {
    fail(ex, st.with_context("receiving snapshot"),
         st.code() == core::Code::kCorrupt ? Outcome::kRefused : Outcome::kFailed);
    return;
  }
  // Validate in wire form (one read-only pass); dequantizing is left to the
  // pass that uses the values.
  const size_t bad = first_non_finite_wire(ex->format, ex->other_wire());
  if (bad < ex->count) {
    fail(ex,
         core::corrupt("snapshot from " + short_id(ex->peer_id) + " rejected: non-finite value at element " +
                       std::to_string(bad) + " of " + std::to_string(ex->count)),
         Outcome::kRefused);
    return;
  }
  ex->other_ok = true;
  ex->session->try_send_frame(kAck, encode_xid(ex->xid));
  maybe_complete(ex);
}

void Core::maybe_complete(std::shared_ptr<Exchange> ex) {
  // own_sent too: an ACK that arrives before our blob left (a broken or
  // hostile peer) must not apply a delta against a snapshot not yet final.
  if (ex->finished || !ex->other_ok || !ex->peer_acked || !ex->own_sent) return;
  ex->finished = true;
  ex->timer.cancel();
  if (current_ == ex) current_.reset();
  // Both snapshots are final here (the partner ACKed ours, so our snapshot
  // was taken and ex->direct is set). Staged path: dequantize and take the
  // norm on the network thread, not on the trainer thread that applies. The
  // direct path does both inside its apply pass.
  if (!ex->direct) {
    if (ex->format != WireFormat::kFp32) decode(ex->format, ex->other_wire(), ex->other_values());
    ex->delta_sq = squared_distance(ex->other_values(), ex->own_values());
  }
  {
    std::lock_guard l(mail_mu_);
    ready_to_apply_ = ex;
  }
  mail_cv_.notify_all();
}

void Core::fail(std::shared_ptr<Exchange> ex, const core::Status& why, Outcome outcome) {
  if (ex->finished) return;
  ex->finished = true;
  ex->timer.cancel();
  if (current_ == ex) current_.reset();
  if (ex->session) {
    unexpect_blob(ex->session.get(), ex->xid);
    if (outcome != Outcome::kBusy && outcome != Outcome::kRemote && ex->session->is_open()) {
      ex->session->try_send_frame(kRefuse, encode(Refuse{ex->xid, why.message()}));
    }
  }
  add_counters([&](Counters& c) {
    if (outcome == Outcome::kStopped) {
      return;
    } else if (outcome == Outcome::kBusy) {
      c.exchanges_busy++;
    } else {
      c.exchanges_failed++;
      if (outcome == Outcome::kRefused) c.refused++;
      c.last_failure = why.to_string();
    }
  });
  if (outcome == Outcome::kBusy) {
    core::log_debug("averaging", "partner " + short_id(ex->peer_id) + " busy; backing off");
  } else if (outcome == Outcome::kStopped) {
    core::log_info("averaging", "exchange " + std::string(ex->initiator ? "with " : "from ") +
                                    short_id(ex->peer_id) + " abandoned, nothing applied: this peer is leaving");
  } else {
    log_failure("exchange " + std::string(ex->initiator ? "with " : "from ") + short_id(ex->peer_id) +
                " failed, nothing applied: " + why.to_string());
  }
  {
    std::lock_guard l(mail_mu_);
    slot_busy_ = false;
    if (want_snapshot_ == ex) want_snapshot_.reset();
    if (ex->initiator) {
      // BUSY is contention, not a broken link: the partner answered at once
      // and is free again within one exchange, so the retry (usually with
      // another member) comes after one jittered base backoff. Real failures
      // (timeouts, cut connections, refusals) back off exponentially.
      if (outcome != Outcome::kBusy) fail_streak_ = std::min(fail_streak_ + 1, 6);
      retry_pending_ = true;
      std::lock_guard r(rng_mu_);
      std::uniform_real_distribution<double> u(0.5, 1.5);
      const auto base = opt_.backoff * (1 << std::max(fail_streak_ - 1, 0));
      next_attempt_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(base * u(rng_));
    }
  }
  mail_cv_.notify_all();
}

}  // namespace gossip::averaging::detail
