// StepTurns: a first-come, first-served semaphore whose release hands the
// slot straight to the first waiter, so that a thread that just released
// cannot take the turn back ahead of the line.
#include "step_turns.hpp"

namespace gossip::sim {

StepTurns::StepTurns(int slots, std::chrono::microseconds quantum)
    : slots_(slots < 1 ? 1 : slots), quantum_(quantum) {}

void StepTurns::release() {
  std::lock_guard lock(mu_);
  if (line_.empty()) {
    --in_use_;
    return;
  }
  Waiter* next = line_.front();
  line_.pop_front();
  next->granted = true;
  ++handoffs_;
  next->cv.notify_one();
}

bool StepTurns::wanted() const {
  std::lock_guard lock(mu_);
  return !line_.empty();
}

uint64_t StepTurns::handoffs() const {
  std::lock_guard lock(mu_);
  return handoffs_;
}

}  // namespace gossip::sim
