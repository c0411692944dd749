// Schedule (interval and backoff) on a simulated clock, alone and together
// with ExchangeMachine in a BUSY storm: many initiators offering to one busy
// responder back off by one jittered base backoff each time, never
// exponentially, and every one of them gets its exchanges through.
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

#include "gossip/averaging/schedule.hpp"

using namespace gossip;
using namespace gossip::averaging;
using std::chrono::milliseconds;

namespace {

const TimePoint kT0 = TimePoint(std::chrono::seconds(1000));

Schedule::Options steps(int64_t n) {
  return {n, milliseconds(0), milliseconds(200)};
}
Schedule::Options every(milliseconds t) {
  return {10, t, milliseconds(200)};
}

}  // namespace

TEST_CASE("a step-based schedule is due every interval_steps") {
  Schedule s(steps(10), 1);
  CHECK_FALSE(s.due(0, kT0, false));  // the first call fixes the origin
  CHECK_FALSE(s.due(9, kT0, false));
  CHECK(s.due(10, kT0, false));
  s.started(10, kT0);
  CHECK_FALSE(s.due(19, kT0, false));
  CHECK(s.due(19, kT0, true));  // forced: whatever the interval
  CHECK(s.due(20, kT0, false));
}

TEST_CASE("a time-based schedule starts at a random phase, then jitters +-25%") {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Schedule s(every(milliseconds(1000)), seed);
    CHECK_FALSE(s.due(0, kT0 - milliseconds(1), false));  // origin
    TimePoint first = kT0;
    while (!s.due(0, first, false)) first += milliseconds(1);
    CHECK(first - kT0 < milliseconds(1002));  // phase in [0, interval)
    s.started(0, first);
    TimePoint next = first;
    while (!s.due(0, next, false)) next += milliseconds(1);
    CHECK(next - first >= milliseconds(750));
    CHECK(next - first <= milliseconds(1251));
  }
}

TEST_CASE("failures back off exponentially up to 32x, BUSY and no-peer by one base") {
  Schedule s(steps(1000), 7);
  s.due(0, kT0, false);
  s.started(0, kT0);
  for (int k = 1; k <= 9; ++k) {
    CAPTURE(k);
    s.initiated_ended(Ending::kFailed, kT0);
    CHECK(s.fail_streak() == std::min(k, Schedule::kMaxFailStreak));
    CHECK(s.retry_pending());
    const double base = 200.0 * (1 << (std::min(k, Schedule::kMaxFailStreak) - 1));
    const double wait = std::chrono::duration<double, std::milli>(s.next_attempt() - kT0).count();
    CHECK(wait >= 0.5 * base);
    CHECK(wait < 1.5 * base);
    // Retried (not by the interval) once the backoff passed, not before.
    CHECK_FALSE(s.due(1, s.next_attempt() - milliseconds(1), false));
    CHECK(s.due(1, s.next_attempt(), false));
  }
  // BUSY keeps the streak but waits one jittered base only.
  s.initiated_ended(Ending::kBusy, kT0);
  CHECK(s.fail_streak() == Schedule::kMaxFailStreak);
  s.applied();
  CHECK(s.fail_streak() == 0);
  CHECK_FALSE(s.retry_pending());
  for (int k = 0; k < 50; ++k) {
    s.initiated_ended(Ending::kBusy, kT0);
    CHECK(s.fail_streak() == 0);
    const auto wait = s.next_attempt() - kT0;
    CHECK(wait >= milliseconds(100));
    CHECK(wait < milliseconds(300));
    s.no_peer(kT0);
    CHECK(s.fail_streak() == 0);
    CHECK(s.next_attempt() - kT0 < milliseconds(300));
  }
}

TEST_CASE("the same seed gives the same schedule") {
  Schedule a(every(milliseconds(500)), 99), b(every(milliseconds(500)), 99);
  TimePoint t = kT0;
  for (int k = 0; k < 100; ++k) {
    t += milliseconds(37);
    REQUIRE(a.due(k, t, false) == b.due(k, t, false));
    if (k % 7 == 0) {
      a.initiated_ended(Ending::kFailed, t);
      b.initiated_ended(Ending::kFailed, t);
      REQUIRE(a.next_attempt() == b.next_attempt());
    }
  }
}

TEST_CASE("a BUSY storm on one responder resolves by jittered base backoff") {
  // 12 initiators, time-based schedules, all offering to one responder whose
  // exchanges take 40 ms. Simulated in 1 ms ticks over 20 s.
  constexpr int kInitiators = 12;
  constexpr auto kExchange = milliseconds(40);
  std::mt19937_64 rng(11);
  std::vector<Schedule> sched;
  for (int i = 0; i < kInitiators; ++i) {
    sched.emplace_back(Schedule::Options{10, milliseconds(300), milliseconds(50)}, 100 + i);
  }
  std::vector<int> applied(kInitiators, 0), busy(kInitiators, 0);
  int holder = -1;  // whose exchange the responder is in
  TimePoint holder_done{};
  std::optional<ExchangeMachine> running;
  std::vector<int> order(kInitiators);
  for (int i = 0; i < kInitiators; ++i) order[i] = i;
  for (TimePoint now = kT0; now < kT0 + std::chrono::seconds(20); now += milliseconds(1)) {
    if (holder >= 0 && now >= holder_done) {
      // The exchange went through: both sides validated and ACKed.
      running->on_reply(1);
      running->on_other_snapshot(core::Status::ok());
      running->on_ack();
      REQUIRE(running->on_own_sent(core::Status::ok()).ended == Ending::kApplied);
      sched[holder].applied();
      ++applied[holder];
      holder = -1;
    }
    std::shuffle(order.begin(), order.end(), rng);
    for (int i : order) {
      if (i == holder || !sched[i].due(0, now, false)) continue;
      sched[i].started(0, now);
      ExchangeMachine m(Role::kInitiator, rng() | 1, 1, 1, now, milliseconds(1000));
      if (holder < 0) {
        holder = i;
        holder_done = now + kExchange;
        running.emplace(m);
        continue;
      }
      const Decision d = m.on_busy();
      REQUIRE(d.ended == Ending::kBusy);
      CHECK_FALSE(d.refuse);
      sched[i].initiated_ended(Ending::kBusy, now);
      ++busy[i];
      // Contention never grows the backoff.
      CHECK(sched[i].fail_streak() == 0);
      CHECK(sched[i].next_attempt() - now < milliseconds(75));
    }
  }
  int total = 0;
  for (int i = 0; i < kInitiators; ++i) {
    CAPTURE(i);
    CHECK(applied[i] >= 10);  // everyone gets through, again and again
    CHECK(busy[i] > 0);       // and the storm was real
    total += applied[i];
  }
  // The responder stays busy most of the time: 20 s / 40 ms = 500 at most.
  CHECK(total > 350);
  MESSAGE("exchanges applied: " << total << " of at most 500");
}
