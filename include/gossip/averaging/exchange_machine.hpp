// The decisions of the averaging protocol as deterministic, socket-free code:
// what to answer to an OFFER or a STATE_REQ, how one exchange advances from
// the events its side sees, and when it applies, fails or is abandoned.
//
// The engine (src/averaging/) owns the sockets, timers and snapshot buffers;
// it feeds each event of an exchange to its ExchangeMachine and carries out
// the returned Decision (stream our snapshot, send ACK or REFUSE, hand the
// exchange to the trainer thread to apply, or count a failure). Time is a
// parameter, so tests drive whole interleavings in memory (BUSY storms, a
// partner killed mid-exchange, an ACK lost after the partner applied) in
// microseconds, the way membership's SWIM is tested.
//
// One exchange, either side (docs/design.md "Gossip averaging"):
//   initiator: OFFER sent -> REPLY (stream own) | BUSY (ended kBusy)
//   responder: OFFER accepted (REPLY sent) -> own snapshot taken (stream own)
//   both:      partner's snapshot arrived and valid -> send ACK
//              applied once partner's snapshot valid AND partner's ACK
//              received AND our own snapshot fully sent
//   any time:  REFUSE received, timeout, link lost, stop -> nothing applied
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "gossip/averaging/protocol.hpp"
#include "gossip/core/status.hpp"

namespace gossip::averaging {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class Role : uint8_t { kInitiator, kResponder };

// How an exchange ended. Only kApplied changes a replica.
enum class Ending : uint8_t {
  kApplied,  // both snapshots validated and ACKed: apply the delta
  kBusy,     // the partner answered BUSY (contention, not a failure)
  kFailed,   // timeout, cut connection, send or dial failure
  kRefused,  // we rejected the partner's snapshot (wrong size, non-finite)
  kRemote,   // the partner sent REFUSE
  kStopped,  // this engine is stopping (the peer leaves); not counted
};
const char* ending_name(Ending e);

// What the owner must do after feeding one event. Several fields may be set;
// carry them out in declaration order.
struct Decision {
  bool send_own = false;  // stream our snapshot blob now
  bool send_ack = false;  // send ACK: the partner's snapshot passed validation
  // Send REFUSE{xid, code, why.message()} if the link is still open.
  std::optional<RefuseCode> refuse;
  // The exchange is over: kApplied -> hand it to the trainer to apply;
  // anything else -> forget its blob, count it, back off (initiator).
  std::optional<Ending> ended;
  core::Status why;  // set with every ending but kApplied
};

class ExchangeMachine {
 public:
  // `w_own` is this peer's weight; the responder knows the partner's weight
  // from the OFFER (`w_other`), the initiator learns it from REPLY.
  // The exchange fails with kTimeout if not over by `start + timeout`.
  ExchangeMachine(Role role, uint64_t xid, double w_own, double w_other, TimePoint start,
                  std::chrono::milliseconds timeout);

  // Events. Each returns what to do; events after the ending (or that do not
  // fit the phase, e.g. BUSY after REPLY) return an empty Decision.
  Decision on_reply(double w_other);             // initiator
  Decision on_busy();                            // initiator, before REPLY
  Decision on_own_snapshot();                    // responder: trainer took ours
  Decision on_own_sent(const core::Status& st);  // our blob left, or failed to
  // The partner's snapshot arrived (st ok) and validated, or not: kCorrupt
  // (wrong size, non-finite value) ends kRefused, anything else kFailed.
  Decision on_other_snapshot(const core::Status& st);
  Decision on_ack();
  Decision on_refuse(RefuseCode code, const std::string& reason, const std::string& partner);
  Decision on_time(TimePoint now);                  // kTimeout once past the deadline
  Decision on_closed(const core::Status& why);      // the session closed
  Decision on_link_error(const core::Status& why);  // dial / queue failure
  Decision on_stop();                               // this engine stops

  Role role() const { return role_; }
  uint64_t xid() const { return xid_; }
  bool ended() const { return ending_.has_value(); }
  std::optional<Ending> ending() const { return ending_; }
  TimePoint deadline() const { return deadline_; }
  double w_own() const { return w_own_; }
  double w_other() const { return w_other_; }
  // The delta's factor w_other / (w_own + w_other); meaningful once applied.
  double scale() const { return w_other_ / (w_own_ + w_other_); }

 private:
  Decision maybe_apply();
  Decision end(Ending e, core::Status why, std::optional<RefuseCode> refuse);

  Role role_;
  uint64_t xid_;
  double w_own_, w_other_;
  TimePoint deadline_;
  std::chrono::milliseconds timeout_;
  bool replied_;       // responder: from the start
  bool own_snapshot_;  // initiator: taken before OFFER
  bool own_sent_ = false, other_ok_ = false, peer_acked_ = false;
  std::optional<Ending> ending_;
};

// The answer to a well-formed OFFER, before the exchange slot is looked at:
// a refusal (code and a reason for people naming both sides) or nothing, in
// which case the owner accepts if its slot is free and answers BUSY else.
struct Refusal {
  RefuseCode code;
  std::string reason;
};
// Checked in this order: model fingerprint, gossip.mode (`mode`: ours),
// element count.
std::optional<Refusal> check_offer(const Offer& offer, const std::string& fingerprint,
                                   uint64_t param_count, GossipMode mode,
                                   const std::string& partner, const std::string& self);
// The same for a joiner's STATE_REQ (sizes: parameters, optimizer state and,
// in outer mode, 2 * param_count floats of outer state).
std::optional<Refusal> check_state_request(const StateRequest& req, const std::string& fingerprint,
                                           uint64_t param_count, uint64_t state_count,
                                           GossipMode mode, const std::string& joiner,
                                           const std::string& self);
// How a joiner reads a donor's REFUSE: kInvalidArgument (permanent: the
// models or gossip modes differ, no donor of this swarm will do) or
// kProtocol.
core::Status fetch_refusal_status(const Refuse& refuse);

}  // namespace gossip::averaging
