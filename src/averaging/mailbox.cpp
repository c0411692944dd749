// Mailbox between the engine's strand and the trainer thread (mailbox.hpp).
#include "mailbox.hpp"

#include "core.hpp"

namespace gossip::averaging::detail {

Mailbox::Work Mailbox::take_work() {
  Work w;
  std::lock_guard l(mu_);
  w.to_apply = std::move(ready_to_apply_);
  w.to_snapshot = std::move(want_snapshot_);
  w.states.swap(state_requests_);
  return w;
}

bool Mailbox::claim_for_offer() {
  std::lock_guard l(mu_);
  const bool accept = !slot_busy_ && !closed_for_offers_ && !stopping_;
  if (accept) slot_busy_ = true;
  return accept;
}

bool Mailbox::claim_for_initiate(int64_t step, TimePoint now) {
  std::lock_guard l(mu_);
  const bool due = schedule_.due(step, now, force_initiate_);  // first call: the origin
  if (slot_busy_ || stopping_ || (!initiating_ && !force_initiate_) || !due) return false;
  slot_busy_ = true;
  force_initiate_ = false;
  schedule_.started(step, now);
  return true;
}

void Mailbox::no_peer(TimePoint now) {
  std::lock_guard l(mu_);
  slot_busy_ = false;
  schedule_.no_peer(now);
}

void Mailbox::want_snapshot(std::shared_ptr<Exchange> ex) {
  {
    std::lock_guard l(mu_);
    want_snapshot_ = std::move(ex);
  }
  cv_.notify_all();
}

void Mailbox::ready_to_apply(std::shared_ptr<Exchange> ex) {
  {
    std::lock_guard l(mu_);
    ready_to_apply_ = std::move(ex);
  }
  cv_.notify_all();
}

void Mailbox::applied() {
  std::lock_guard l(mu_);
  slot_busy_ = false;
  schedule_.applied();
}

void Mailbox::ended(const Exchange* ex, Role role, Ending ending, TimePoint now) {
  {
    std::lock_guard l(mu_);
    slot_busy_ = false;
    if (want_snapshot_.get() == ex) want_snapshot_.reset();
    if (role == Role::kInitiator) schedule_.initiated_ended(ending, now);
  }
  cv_.notify_all();
}

void Mailbox::push_state_request(std::shared_ptr<StateServe> serve) {
  {
    std::lock_guard l(mu_);
    state_requests_.push_back(std::move(serve));
  }
  cv_.notify_all();
}

bool Mailbox::wait_for_work(std::chrono::milliseconds max_wait) {
  std::unique_lock l(mu_);
  return cv_.wait_for(l, max_wait, [&] {
    return ready_to_apply_ || want_snapshot_ || !state_requests_.empty() || stopping_ ||
           (force_initiate_ && !slot_busy_);
  });
}

void Mailbox::set_initiating(bool on) {
  std::lock_guard l(mu_);
  initiating_ = on;
}

void Mailbox::request_exchange() {
  {
    std::lock_guard l(mu_);
    force_initiate_ = true;
  }
  cv_.notify_all();
}

void Mailbox::force_initiate() {
  std::lock_guard l(mu_);
  force_initiate_ = true;
}

void Mailbox::close_after_final() {
  std::lock_guard l(mu_);
  force_initiate_ = false;
  initiating_ = false;
  closed_for_offers_ = true;
}

std::optional<std::deque<std::shared_ptr<StateServe>>> Mailbox::stop() {
  std::deque<std::shared_ptr<StateServe>> unserved;
  {
    std::lock_guard l(mu_);
    if (stopping_) return std::nullopt;
    stopping_ = true;
    initiating_ = false;
    closed_for_offers_ = true;
    unserved.swap(state_requests_);
  }
  cv_.notify_all();
  return unserved;
}

bool Mailbox::stopping() const {
  std::lock_guard l(mu_);
  return stopping_;
}

bool Mailbox::idle() const {
  std::lock_guard l(mu_);
  return !slot_busy_;
}

}  // namespace gossip::averaging::detail
