// Schedule: the exchange interval and the jittered backoff (schedule.hpp).
#include "gossip/averaging/schedule.hpp"

#include <algorithm>

namespace gossip::averaging {

Schedule::Schedule(Options options, uint64_t seed) : opt_(options), rng_(seed) {}

Clock::duration Schedule::jittered(Clock::duration base, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  return std::chrono::duration_cast<Clock::duration>(base * u(rng_));
}

bool Schedule::due(int64_t step, TimePoint now, bool forced) {
  if (!started_) {
    started_ = true;
    last_step_ = step;
    last_time_ = now;
    next_interval_ = jittered(opt_.interval, 0.0, 1.0);  // random phase
  }
  const bool interval_passed = opt_.interval.count() > 0 ? now - last_time_ >= next_interval_
                                                         : step - last_step_ >= opt_.interval_steps;
  return (forced || retry_pending_ || interval_passed) && now >= next_attempt_;
}

void Schedule::started(int64_t step, TimePoint now) {
  retry_pending_ = false;
  last_step_ = step;
  last_time_ = now;
  next_interval_ = jittered(opt_.interval, 0.75, 1.25);
}

void Schedule::applied() {
  fail_streak_ = 0;
  retry_pending_ = false;
}

void Schedule::initiated_ended(Ending ending, TimePoint now) {
  if (ending == Ending::kApplied) return;  // applied() runs when the trainer applies
  if (ending != Ending::kBusy) fail_streak_ = std::min(fail_streak_ + 1, kMaxFailStreak);
  retry_pending_ = true;
  const auto base = opt_.backoff * (1 << std::max(fail_streak_ - 1, 0));
  next_attempt_ = now + jittered(base, 0.5, 1.5);
}

void Schedule::no_peer(TimePoint now) {
  retry_pending_ = true;
  next_attempt_ = now + jittered(opt_.backoff, 0.5, 1.5);
}

}  // namespace gossip::averaging
