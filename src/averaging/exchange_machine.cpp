// ExchangeMachine and the OFFER / STATE_REQ checks: the protocol's decisions,
// free of sockets, threads and clocks (see exchange_machine.hpp).
#include "gossip/averaging/exchange_machine.hpp"

#include "gossip/core/peer_id.hpp"

namespace gossip::averaging {

const char* ending_name(Ending e) {
  switch (e) {
    case Ending::kApplied:
      return "applied";
    case Ending::kBusy:
      return "busy";
    case Ending::kFailed:
      return "failed";
    case Ending::kRefused:
      return "refused";
    case Ending::kRemote:
      return "refused by partner";
    case Ending::kStopped:
      return "stopped";
  }
  return "?";
}

ExchangeMachine::ExchangeMachine(Role role, uint64_t xid, double w_own, double w_other,
                                 TimePoint start, std::chrono::milliseconds timeout)
    : role_(role),
      xid_(xid),
      w_own_(w_own),
      w_other_(w_other),
      deadline_(start + timeout),
      timeout_(timeout),
      replied_(role == Role::kResponder),
      own_snapshot_(role == Role::kInitiator) {}

Decision ExchangeMachine::end(Ending e, core::Status why, std::optional<RefuseCode> refuse) {
  ending_ = e;
  Decision d;
  d.ended = e;
  d.why = std::move(why);
  d.refuse = refuse;
  return d;
}

Decision ExchangeMachine::maybe_apply() {
  // own_sent_ too: an ACK that arrives before our blob left (a broken or
  // hostile partner) must not apply a delta against a snapshot that the
  // partner may not have received in full.
  if (ended() || !other_ok_ || !peer_acked_ || !own_sent_) return {};
  ending_ = Ending::kApplied;
  Decision d;
  d.ended = Ending::kApplied;
  return d;
}

Decision ExchangeMachine::on_reply(double w_other) {
  if (ended() || role_ != Role::kInitiator || replied_) return {};
  replied_ = true;
  w_other_ = w_other;
  Decision d;
  d.send_own = true;
  return d;
}

Decision ExchangeMachine::on_busy() {
  if (ended() || role_ != Role::kInitiator || replied_) return {};
  return end(Ending::kBusy, core::Status(core::Code::kBusy, "partner busy"), std::nullopt);
}

Decision ExchangeMachine::on_own_snapshot() {
  if (ended() || own_snapshot_) return {};
  own_snapshot_ = true;
  Decision d;
  d.send_own = true;
  return d;
}

Decision ExchangeMachine::on_own_sent(const core::Status& st) {
  if (ended() || own_sent_) return {};
  if (!st) return end(Ending::kFailed, st.with_context("sending snapshot"), RefuseCode::kAborted);
  own_sent_ = true;
  return maybe_apply();
}

Decision ExchangeMachine::on_other_snapshot(const core::Status& st) {
  if (ended() || other_ok_) return {};
  if (!st) {
    if (st.code() == core::Code::kCorrupt) {
      return end(Ending::kRefused, st.with_context("receiving snapshot"), RefuseCode::kBadSnapshot);
    }
    return end(Ending::kFailed, st.with_context("receiving snapshot"), RefuseCode::kAborted);
  }
  other_ok_ = true;
  Decision d = maybe_apply();
  d.send_ack = true;
  return d;
}

Decision ExchangeMachine::on_ack() {
  if (ended() || peer_acked_) return {};
  peer_acked_ = true;
  return maybe_apply();
}

Decision ExchangeMachine::on_refuse(RefuseCode code, const std::string& reason,
                                    const std::string& partner) {
  if (ended()) return {};
  (void)code;  // every code ends the exchange alike; the reason is for people
  return end(
      Ending::kRemote,
      core::protocol_error("partner " + core::short_peer_id(partner) + " refused: " + reason),
      std::nullopt);
}

Decision ExchangeMachine::on_time(TimePoint now) {
  if (ended() || now < deadline_) return {};
  return end(Ending::kFailed,
             core::timeout_error("exchange " + std::to_string(xid_) + " not finished within " +
                                 std::to_string(timeout_.count()) + " ms"),
             RefuseCode::kTimeout);
}

Decision ExchangeMachine::on_closed(const core::Status& why) {
  if (ended()) return {};
  return end(Ending::kFailed, why.with_context("connection to partner closed"),
             RefuseCode::kAborted);
}

Decision ExchangeMachine::on_link_error(const core::Status& why) {
  if (ended()) return {};
  return end(Ending::kFailed, why, RefuseCode::kAborted);
}

Decision ExchangeMachine::on_stop() {
  if (ended()) return {};
  return end(Ending::kStopped, core::Status(core::Code::kClosed, "averaging engine stopped"),
             RefuseCode::kAborted);
}

namespace {
// Both sides' gossip.mode, named for the REFUSE reason.
Refusal mode_refusal(const char* role, const std::string& partner, GossipMode theirs,
                     const std::string& self, GossipMode mine) {
  return Refusal{RefuseCode::kModeMismatch,
                 std::string(kModeMismatch) + " " + role + " " + core::short_peer_id(partner) +
                     " runs gossip.mode \"" + gossip_mode_name(theirs) + "\", peer " +
                     core::short_peer_id(self) + " runs \"" + gossip_mode_name(mine) +
                     "\" (every peer of a swarm needs the same gossip.mode)"};
}
}  // namespace

std::optional<Refusal> check_offer(const Offer& offer, const std::string& fingerprint,
                                   uint64_t param_count, GossipMode mode,
                                   const std::string& partner, const std::string& self) {
  if (offer.fingerprint != fingerprint) {
    return Refusal{RefuseCode::kModelMismatch,
                   std::string(kModelMismatch) + " peer " + core::short_peer_id(partner) +
                       " has model fingerprint " + offer.fingerprint + ", peer " +
                       core::short_peer_id(self) + " has " + fingerprint +
                       " (different architecture: cannot average)"};
  }
  if (offer.mode != mode) return mode_refusal("peer", partner, offer.mode, self, mode);
  if (offer.count != param_count) {
    return Refusal{RefuseCode::kSizeMismatch,
                   "size mismatch: peer " + core::short_peer_id(partner) + " offers " +
                       std::to_string(offer.count) + " parameters, this model has " +
                       std::to_string(param_count)};
  }
  return std::nullopt;
}

std::optional<Refusal> check_state_request(const StateRequest& req, const std::string& fingerprint,
                                           uint64_t param_count, uint64_t state_count,
                                           GossipMode mode, const std::string& joiner,
                                           const std::string& self) {
  if (req.fingerprint != fingerprint) {
    return Refusal{RefuseCode::kModelMismatch,
                   std::string(kModelMismatch) + " joiner " + core::short_peer_id(joiner) +
                       " has model fingerprint " + req.fingerprint + ", donor " +
                       core::short_peer_id(self) + " has " + fingerprint};
  }
  if (req.mode != mode) return mode_refusal("joiner", joiner, req.mode, self, mode);
  const uint64_t outer_count = mode == GossipMode::kOuter ? 2 * param_count : 0;
  if (req.param_count != param_count || req.state_count != state_count ||
      req.outer_count != outer_count) {
    return Refusal{RefuseCode::kSizeMismatch,
                   "state size mismatch: joiner expects " + std::to_string(req.param_count) +
                       " + " + std::to_string(req.state_count) + " floats, donor has " +
                       std::to_string(param_count) + " + " + std::to_string(state_count) +
                       " (different optimizer?)"};
  }
  return std::nullopt;
}

core::Status fetch_refusal_status(const Refuse& refuse) {
  // A donor with another model (or gossip.mode) refuses for good: kInvalidArgument, so
  // fetch_state can tell a misconfigured joiner from members that are merely
  // busy or gone.
  const bool model =
      refuse.code == RefuseCode::kModelMismatch || refuse.code == RefuseCode::kModeMismatch;
  return core::Status(model ? core::Code::kInvalidArgument : core::Code::kProtocol,
                      "donor refused: " + refuse.reason);
}

}  // namespace gossip::averaging
