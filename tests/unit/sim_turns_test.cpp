// The simulator's scheduling and measuring parts that hold at any scale:
// StepTurns lets at most `slots` threads step at once and serves the others
// in arrival order, so every thread progresses; ConsensusStream gives the
// mean and the consensus distance of replicas taken one at a time, the same
// as computing them from all at once. Real threads, real clocks.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "../../src/sim/step_turns.hpp"
#include "../../src/sim/truth.hpp"

using gossip::sim::ConsensusStream;
using gossip::sim::StepTurns;
using namespace std::chrono_literals;

namespace {

// Busy work standing in for a training step (~50 us).
void spin_step() {
  const auto end = std::chrono::steady_clock::now() + 50us;
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace

TEST_CASE("StepTurns: at most `slots` step at once, and every thread progresses") {
  constexpr int kThreads = 12, kSlots = 2;
  StepTurns turns(kSlots, 1000us);
  std::atomic<int> stepping{0}, most{0};
  std::atomic<bool> stop{false};
  std::vector<std::atomic<int64_t>> steps(kThreads);
  std::atomic<int64_t> served{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      StepTurns::Waiter w;
      auto serve = [&] { served.fetch_add(1); };
      auto give_up = [&] { return stop.load(); };
      if (!turns.acquire(w, 5ms, serve, give_up)) return;
      auto since = std::chrono::steady_clock::now();
      while (!stop.load()) {
        const int now = stepping.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        spin_step();
        stepping.fetch_sub(1);
        steps[t].fetch_add(1);
        if (std::chrono::steady_clock::now() - since >= turns.quantum() && turns.wanted()) {
          turns.release();
          if (!turns.acquire(w, 5ms, serve, give_up)) return;
          since = std::chrono::steady_clock::now();
        }
      }
      turns.release();
    });
  }
  std::this_thread::sleep_for(600ms);
  std::vector<int64_t> at;
  for (auto& s : steps) at.push_back(s.load());
  stop = true;
  for (auto& th : threads) th.join();
  const auto [lo, hi] = std::minmax_element(at.begin(), at.end());
  MESSAGE("steps per thread after 0.6 s: min " << *lo << " max " << *hi << ", handoffs "
                                               << turns.handoffs() << ", serve calls "
                                               << served.load());
  CHECK(most.load() <= kSlots);
  CHECK(most.load() >= 1);
  CHECK(*lo > 0);  // nobody starves
  // Turns rotate in arrival order: the slowest thread has at least a third
  // of the fastest one's steps (a turn is ~20 steps; 0.6 s is ~50 rounds).
  CHECK(3 * *lo >= *hi);
  CHECK(turns.handoffs() > static_cast<uint64_t>(kThreads));
  // Waiting threads kept serving their partners meanwhile.
  CHECK(served.load() > 0);
}

TEST_CASE("StepTurns: a waiting thread that gives up leaves the line without a turn") {
  StepTurns turns(1, 1000us);
  StepTurns::Waiter a, b;
  auto never = [] { return false; };
  REQUIRE(turns.acquire(
      a, 5ms, [] {}, never));
  std::atomic<int> polls{0};
  const bool got = turns.acquire(
      b, 5ms, [&] { polls.fetch_add(1); }, [&] { return polls.load() >= 3; });
  CHECK_FALSE(got);
  CHECK(polls.load() >= 3);
  CHECK_FALSE(turns.wanted());  // it left the line
  turns.release();              // the slot is free again, not handed to a ghost
  CHECK(turns.acquire(
      b, 5ms, [] {}, never));
  turns.release();
  CHECK(turns.handoffs() == 0);
}

TEST_CASE("ConsensusStream: one replica at a time equals the two-pass formula") {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  constexpr size_t kParams = 257, kReplicas = 37;
  for (const double spread : {1.0, 1e-3, 1e-6}) {
    std::vector<float> centre(kParams);
    for (auto& x : centre) x = 1.0f + noise(rng);
    std::vector<std::vector<float>> reps(kReplicas, centre);
    for (auto& r : reps)
      for (auto& x : r) x += static_cast<float>(spread) * noise(rng);
    ConsensusStream stream;
    for (const auto& r : reps) stream.add(r);
    const auto c = stream.result();
    // Two passes in long double: the reference.
    std::vector<long double> mean(kParams, 0.0L);
    for (const auto& r : reps)
      for (size_t k = 0; k < kParams; ++k) mean[k] += r[k];
    long double norm = 0.0L, dist = 0.0L;
    for (auto& m : mean) {
      m /= kReplicas;
      norm += m * m;
    }
    for (const auto& r : reps)
      for (size_t k = 0; k < kParams; ++k) dist += (r[k] - mean[k]) * (r[k] - mean[k]);
    const double want = static_cast<double>(dist / kReplicas / norm);
    INFO("spread " << spread);
    CHECK(stream.count() == kReplicas);
    CHECK(c.distance == doctest::Approx(want).epsilon(1e-9));
    for (size_t k = 0; k < kParams; ++k)
      CHECK(c.mean[k] == doctest::Approx(static_cast<double>(mean[k])).epsilon(1e-6));
  }
}
