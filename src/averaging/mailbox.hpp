// Mailbox: everything the engine's network strand and the trainer thread hand
// each other, behind one mutex: the exchange slot (at most one exchange
// claimed, in flight or waiting to be applied), the snapshot the trainer must
// take, the finished exchange it must apply, state requests to fill, the
// on/off switches, and the Schedule (interval and backoff), which both sides
// update. Every method takes the mutex itself and calls nothing that locks:
// it is a leaf lock, never held while taking another.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "gossip/averaging/schedule.hpp"

namespace gossip::averaging::detail {

struct Exchange;
struct StateServe;

class Mailbox {
 public:
  Mailbox(Schedule::Options schedule, uint64_t seed) : schedule_(schedule, seed) {}

  // What between_steps() has to do, taken in one go.
  struct Work {
    std::shared_ptr<Exchange> to_apply, to_snapshot;
    std::deque<std::shared_ptr<StateServe>> states;
  };
  Work take_work();

  // Strand: an OFFER passed check_offer; claims the slot unless busy,
  // closed for offers or stopping. Returns whether it was claimed.
  bool claim_for_offer();
  // Trainer: claims the slot for an exchange of ours when one is due at
  // `step` (schedule, backoff, request_exchange()) and nothing is in flight.
  bool claim_for_initiate(int64_t step, TimePoint now);
  // Trainer: claimed, but the directory had nobody: slot freed, retry later.
  void no_peer(TimePoint now);

  // Strand: the responder's partner waits for our snapshot.
  void want_snapshot(std::shared_ptr<Exchange> ex);
  // Strand: `ex` applies (both validated and ACKed).
  void ready_to_apply(std::shared_ptr<Exchange> ex);
  // Trainer: the delta of the exchange taken with take_work() is applied.
  void applied();
  // Strand: `ex` ended without applying; frees the slot, and an initiator
  // backs off per `ending`.
  void ended(const Exchange* ex, Role role, Ending ending, TimePoint now);
  // Strand: a joiner asked for our state.
  void push_state_request(std::shared_ptr<StateServe> serve);

  // Trainer: waits up to `max_wait` until take_work() has something.
  bool wait_for_work(std::chrono::milliseconds max_wait);

  void set_initiating(bool on);
  void request_exchange();  // next between_steps() starts one
  void force_initiate();    // final_exchange: like request_exchange, no wake-up
  // After a final exchange: no more initiating, BUSY to every later OFFER.
  void close_after_final();
  // Marks the engine stopping (BUSY from now on, no initiating); returns
  // the unserved state requests, or nullopt if it was already stopping.
  std::optional<std::deque<std::shared_ptr<StateServe>>> stop();
  bool stopping() const;
  bool idle() const;  // no exchange claimed, in flight or unapplied

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Schedule schedule_;
  bool slot_busy_ = false;
  bool initiating_ = true;
  bool closed_for_offers_ = false;
  bool stopping_ = false;
  bool force_initiate_ = false;
  std::shared_ptr<Exchange> want_snapshot_;
  std::shared_ptr<Exchange> ready_to_apply_;
  std::deque<std::shared_ptr<StateServe>> state_requests_;
};

}  // namespace gossip::averaging::detail
