// StepTurns: the simulator's share of the CPU among its trainer threads. At
// most `slots` peers step at a time (one per core by default); the others
// wait in arrival order, so on a small host every peer progresses at the same
// pace instead of the OS favouring whichever threads it happens to run, and
// the simulation's own thread (the clock, the looks) is not starved by
// hundreds of runnable trainers. A peer holds its turn for a quantum of steps
// and passes it on only when someone waits.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>

namespace gossip::sim {

class StepTurns {
 public:
  using Clock = std::chrono::steady_clock;

  // `slots` >= 1 peers step at once; each keeps its turn for at least
  // `quantum` while others wait.
  StepTurns(int slots, std::chrono::microseconds quantum);

  // A waiting peer's place in line (owned by its trainer thread).
  struct Waiter {
    std::condition_variable cv;
    bool granted = false;
  };

  // Waits for a turn, in arrival order. While waiting, `serve` is called
  // every `poll` (from the waiting thread) so that the peer still answers
  // its partners (snapshots for exchanges, state requests) and looks;
  // `give_up` returning true ends the wait without a turn (false is
  // returned). Any thread; a thread holds at most one turn.
  template <typename Serve, typename GiveUp>
  bool acquire(Waiter& w, std::chrono::milliseconds poll, Serve&& serve, GiveUp&& give_up) {
    std::unique_lock lock(mu_);
    if (in_use_ < slots_ && line_.empty()) {
      ++in_use_;
      return true;
    }
    w.granted = false;
    line_.push_back(&w);
    while (!w.granted) {
      if (w.cv.wait_for(lock, poll, [&] { return w.granted; })) break;
      lock.unlock();
      serve();
      const bool stop = give_up();
      lock.lock();
      if (stop && !w.granted) {
        std::erase(line_, &w);
        return false;
      }
    }
    return true;
  }
  // Gives the turn to the first in line (or frees the slot).
  void release();
  // True when someone waits for a turn: then a peer that held its turn for
  // a quantum passes it on.
  bool wanted() const;
  std::chrono::microseconds quantum() const { return quantum_; }
  // Turns handed from one peer to the next so far.
  uint64_t handoffs() const;

 private:
  const int slots_;
  const std::chrono::microseconds quantum_;
  mutable std::mutex mu_;
  int in_use_ = 0;
  std::deque<Waiter*> line_;
  uint64_t handoffs_ = 0;
};

}  // namespace gossip::sim
