// Observation: the numbers a peer shows its operators, gathered in one place
// from what the peer has (the trainer's step and loss, the averaging
// engine's counters, the membership view, the Node's traffic counters) so
// that every way of looking at a peer (/metrics today, a richer STATUS
// tomorrow) reports the same numbers. render_metrics writes them in the
// Prometheus text format.
//
// Nothing here takes a lock the trainer holds: the trainer publishes its
// step and loss into TrainGauges (atomics) after each step, and the other
// inputs are snapshots their owners hand out under leaf mutexes.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "gossip/averaging/engine.hpp"
#include "gossip/core/histogram.hpp"
#include "gossip/membership/member.hpp"
#include "gossip/net/limits.hpp"
#include "gossip/peer/exposition.hpp"

namespace gossip::peer {

// What does not change while a peer runs.
struct PeerFacts {
  std::string peer_id;  // hex of the static key
  std::string version;  // the build's version ("0.1.0")
  std::string model;    // the model fingerprint ("0x" + 16 hex digits, as STATUS gives it)
  std::string wire;     // gossip.wire: "fp32", "bf16", "fp16"
};

// The project's version (meson's project version), for PeerFacts.
const char* build_version();

// The trainer's numbers, published by the trainer thread and read from any
// thread (relaxed atomics: each value is whole, the three together only
// nearly simultaneous).
class TrainGauges {
 public:
  struct Reading {
    int64_t step = 0;       // the model's step (resumed and downloaded steps included)
    int64_t steps_run = 0;  // steps this process ran
    double loss = 0.0;      // the last step's loss; NaN before the first
  };
  // Trainer thread, after each step.
  void step_done(int64_t step, double loss) {
    step_.store(step, std::memory_order_relaxed);
    loss_.store(loss, std::memory_order_relaxed);
    steps_run_.fetch_add(1, std::memory_order_relaxed);
  }
  // Trainer thread: the model's step changed without a step of this run
  // (resume, state download, averaging only).
  void set_step(int64_t step) { step_.store(step, std::memory_order_relaxed); }
  Reading read() const {
    return {step_.load(std::memory_order_relaxed), steps_run_.load(std::memory_order_relaxed),
            loss_.load(std::memory_order_relaxed)};
  }

 private:
  std::atomic<int64_t> step_{0};
  std::atomic<int64_t> steps_run_{0};
  std::atomic<double> loss_{std::numeric_limits<double>::quiet_NaN()};
};

struct PeerObservation {
  PeerFacts facts;
  TrainGauges::Reading train;
  uint64_t exchanges_ok = 0;
  uint64_t exchanges_busy = 0;
  uint64_t exchanges_failed = 0;
  uint64_t exchange_bytes_in = 0;  // averaging snapshot and state blobs
  uint64_t exchange_bytes_out = 0;
  uint64_t wire_bytes_in = 0;  // every session's TCP bytes (handshakes, framing, encryption)
  uint64_t wire_bytes_out = 0;
  // Members as this peer sees them, by membership::MemberState; alive
  // includes this peer.
  std::array<int64_t, 4> members{};
  core::SecondsHistogram exchange_s;      // OFFER to both validated, ok exchanges
  std::optional<double> last_delta_norm;  // none before the first ok exchange
};

// Gathers the observation from the peer's parts. Pure; any thread.
PeerObservation observe(const PeerFacts& facts, const TrainGauges::Reading& train,
                        const averaging::Counters& exchanges,
                        const std::vector<membership::Member>& members,
                        const net::CounterSnapshot& net);

// One peer's observation and the labels that tell it apart (none for a
// peer's own endpoint; {"peer", "3"} in the simulator's).
struct LabeledObservation {
  Labels labels;
  PeerObservation observation;
};

// The Prometheus exposition of `peers`: every family once (HELP, TYPE), with
// one sample (or one histogram) per peer. The metric list is in
// docs/operations.md.
std::string render_metrics(const std::vector<LabeledObservation>& peers);

}  // namespace gossip::peer
