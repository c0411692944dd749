// Observe: everything a peer can tell about itself at one moment, gathered
// in one plain struct by one function from what the peer has (the trainer's
// figures, the averaging engine's counters, the membership view, the Node's
// traffic counters and open sessions), so that every way of looking at a
// peer reports the same numbers: the STATUS answer (status_details, which
// gossip-ctl reads) and GET /metrics (render_metrics, the Prometheus text
// format).
//
// Nothing here takes a lock the trainer holds: the trainer publishes its
// figures into TrainGauges (atomics), and the other inputs are snapshots
// their owners hand out under leaf mutexes.
#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gossip/averaging/engine.hpp"
#include "gossip/averaging/outer.hpp"
#include "gossip/core/histogram.hpp"
#include "gossip/membership/member.hpp"
#include "gossip/membership/reach.hpp"
#include "gossip/net/limits.hpp"
#include "gossip/net/relay.hpp"
#include "gossip/peer/exposition.hpp"

namespace gossip::peer {

// What does not change while a peer runs.
struct PeerFacts {
  std::string peer_id;  // hex of the static key
  std::string version;  // the build's version ("0.1.0")
  int protocol = 1;     // wire protocol (prologue "gossip-train/1")
  std::string listen;   // "host:port" bound
  std::string model;    // the model fingerprint ("0x" + 16 hex digits, as STATUS gives it)
  std::string wire;     // gossip.wire: "fp32", "bf16", "fp16", "int8", "randk"
  // gossip.mode, and what it runs on: in params mode interval_steps or
  // interval_ms (the other 0), in outer mode gossip.outer.
  averaging::GossipMode mode = averaging::GossipMode::kParams;
  int64_t interval_steps = 0;
  int64_t interval_ms = 0;
  averaging::OuterOptions outer;
};

// The project's version (meson's project version), as --version prints it.
const char* build_version();

// The trainer's numbers, published by the trainer thread and read from any
// thread (relaxed atomics: each value is whole, the figures together only
// nearly simultaneous). NaN stands for "none yet".
class TrainGauges {
 public:
  struct Reading {
    int64_t step = 0;       // the model's step (resumed and downloaded steps included)
    int64_t steps_run = 0;  // steps this process ran
    double loss = std::numeric_limits<double>::quiet_NaN();  // the last step's batch loss
    std::optional<double> test_loss;                         // the last evaluation's
    std::optional<double> test_accuracy;                     // classification only
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
  // Trainer thread, after each evaluation (accuracy: classification only).
  void eval_done(double test_loss, std::optional<double> test_accuracy) {
    test_loss_.store(test_loss, std::memory_order_relaxed);
    test_accuracy_.store(test_accuracy.value_or(kNone), std::memory_order_relaxed);
  }
  Reading read() const {
    Reading r{step_.load(std::memory_order_relaxed),
              steps_run_.load(std::memory_order_relaxed),
              loss_.load(std::memory_order_relaxed),
              {},
              {}};
    if (const double v = test_loss_.load(std::memory_order_relaxed); !std::isnan(v)) {
      r.test_loss = v;
    }
    if (const double v = test_accuracy_.load(std::memory_order_relaxed); !std::isnan(v)) {
      r.test_accuracy = v;
    }
    return r;
  }

 private:
  static constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  std::atomic<int64_t> step_{0};
  std::atomic<int64_t> steps_run_{0};
  std::atomic<double> loss_{kNone};
  std::atomic<double> test_loss_{kNone};
  std::atomic<double> test_accuracy_{kNone};
};

// One member as this peer sees it.
struct MemberView {
  std::string id;  // peer id (hex)
  std::string address;
  std::string state;  // "alive", "suspect", "dead", "left"
  uint64_t incarnation = 0;
  // How this peer reaches it: "direct" (a session is open with it now),
  // "mapped" (a session is open and its address is a router port mapping),
  // "unreachable" (suspect or dead: probes to its address failed, no
  // session), "unknown" (no session open at this moment); "punched" or
  // "relayed" when the open session came by that path (net/relay.hpp), and
  // "unreachable" also when every path failed at the last attempt.
  std::string reached;
  std::string path_reason;  // why the better paths failed (punched, relayed, unreachable)
  bool is_private = false;  // it says nobody can dial it (kMemberPrivate)
  uint64_t exchanges = 0;   // averaging exchanges applied with it
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
  core::SecondsHistogram exchange_s;             // OFFER to both validated, ok exchanges
  std::optional<double> last_delta_norm;         // none before the first ok exchange
  uint64_t sessions = 0;                         // sessions open now (STATUS queries included)
  std::vector<MemberView> view;                  // every known member but self, sorted by id
  std::optional<membership::ReachStatus> reach;  // this peer's address discovery
  net::TraversalCounters traversal;              // relay and punch counters (net/relay.hpp)
  bool relay_enabled = false;                    // net.relay.enabled
  std::vector<std::string> reserved_relays;      // relays this peer is reachable through
};

// What observe() reads, each a snapshot its owner handed out.
struct ObserveInputs {
  const PeerFacts& facts;
  TrainGauges::Reading train;
  const averaging::Counters& exchanges;
  const std::vector<membership::Member>& members;  // every known member but self
  const net::CounterSnapshot& net;
  const std::vector<std::string>& session_peer_ids;  // sorted (Node::session_peer_ids)
  uint64_t sessions = 0;                             // Node::session_count
  const membership::ReachStatus* reach = nullptr;    // Reach::status, when it runs
  // NAT traversal (empty without one): the path last found to each member,
  // the relay and punch counters, the relays holding a reservation.
  std::map<std::string, net::PathInfo> paths = {};
  net::TraversalCounters traversal = {};
  bool relay_enabled = false;
  std::vector<std::string> reserved_relays = {};
};

// Gathers the observation from the peer's parts. Pure; any thread.
PeerObservation observe(const ObserveInputs& in);

// The STATUS body's fields beyond protocol v1's four (docs/protocol.md
// "STATUS"), with at most `max_view` members in "view" ("view_total" says
// how many there were), so that the answer fits one control frame.
nlohmann::json status_details(const PeerObservation& o, size_t max_view = 200);

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
