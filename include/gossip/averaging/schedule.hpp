// Schedule: when this peer starts its next exchange, and how it backs off
// after one that did not apply. Deterministic: time is a parameter and the
// jitter comes from a seeded generator, so tests run thousands of rounds in
// memory. Not thread-safe: the engine keeps it inside its mailbox, under the
// mailbox's mutex (src/averaging/mailbox.hpp).
//
// Interval: every `interval_steps` steps, or every `interval` (jittered
// +-25%) when that is > 0; the first time-based interval starts at a random
// phase so peers started together do not offer in lockstep. Backoff after an
// initiated exchange ends without applying: a BUSY answer is contention (the
// partner is free again within one exchange), so the retry comes after one
// jittered base backoff; real failures (timeouts, cut connections,
// refusals) double it each time, up to 32x. Every jitter is x[0.5, 1.5).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

#include "gossip/averaging/exchange_machine.hpp"

namespace gossip::averaging {

class Schedule {
 public:
  struct Options {
    int64_t interval_steps = 10;            // used when interval is 0
    std::chrono::milliseconds interval{0};  // > 0: time-based
    std::chrono::milliseconds backoff{200};
  };
  Schedule(Options options, uint64_t seed);

  // Whether an exchange should start now at `step` (steps done). `forced`:
  // one was requested whatever the interval (the backoff still holds). The
  // first call fixes the schedule's origin.
  bool due(int64_t step, TimePoint now, bool forced);
  // An exchange starts now: the next interval counts from here.
  void started(int64_t step, TimePoint now);
  // An exchange of ours (either role) applied: failures are forgotten.
  void applied();
  // An exchange this peer initiated ended without applying.
  void initiated_ended(Ending ending, TimePoint now);
  // Due, but nobody to average with: retry after one jittered base backoff.
  void no_peer(TimePoint now);

  // For tests and logs.
  int fail_streak() const { return fail_streak_; }
  TimePoint next_attempt() const { return next_attempt_; }
  bool retry_pending() const { return retry_pending_; }

  static constexpr int kMaxFailStreak = 6;  // backoff up to 2^(6-1) = 32x base

 private:
  Clock::duration jittered(Clock::duration base, double lo, double hi);

  Options opt_;
  std::mt19937_64 rng_;
  bool started_ = false;
  bool retry_pending_ = false;  // last attempt failed: retry after backoff
  int fail_streak_ = 0;
  int64_t last_step_ = 0;
  TimePoint last_time_{};
  Clock::duration next_interval_{};
  TimePoint next_attempt_{};
};

}  // namespace gossip::averaging
