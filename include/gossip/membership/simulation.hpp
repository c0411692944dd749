// SimulatedSwarm: many Membership state machines exchanging real encoded
// messages through an in-memory network with latency, loss, crashes, stalls
// and partitions, on a simulated clock. Tests use it to run minutes of
// protocol in milliseconds; measure_swarm_figures() uses it to report the
// figures quoted in docs/design.md (join/crash/leave known-everywhere times and
// membership bytes per peer per second).
//
// Every message goes through encode() and decode() (so the codec is
// exercised and bytes are real frame bytes: 5-byte frame header + body, not
// counting Noise/TCP overhead). A message to an address whose peer has
// another id is dropped, as the net layer would refuse that session.
// Deterministic for a given seed. Single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "gossip/membership/swim.hpp"

namespace gossip::membership {

struct NetworkModel {
  Millis min_latency{1};
  Millis max_latency{20};
  double loss = 0.0;  // probability that any one message is lost
};

class SimulatedSwarm {
 public:
  SimulatedSwarm(const Options& options, const NetworkModel& net, uint64_t seed);

  // Adds a peer (not yet running) with a fresh identity and address; returns its index.
  int add_peer();
  size_t size() const { return nodes_.size(); }

  // Starts peer `i` with a fresh state machine (a restart keeps the identity
  // and takes the simulated wall clock in ms as incarnation), joining
  // through the peers `seeds` (empty: it founds the swarm).
  void start(int i, const std::vector<int>& seeds);
  // Stops peer `i` without a word (a crash); messages to it are lost.
  void crash(int i);
  // Peer `i` leaves gracefully (its LEAVE messages are sent), then stops.
  void leave(int i);
  // A stalled peer keeps running and sending but loses every incoming message.
  void set_stalled(int i, bool stalled);
  // Messages between `side` and the other peers are lost until heal().
  void set_partition(const std::vector<int>& side);
  void heal();

  // Advances the simulated clock, delivering messages and ticking every
  // running peer each 5 ms step.
  void run_for(Millis duration);
  // Runs until `done()` holds (checked every 50 ms) or `limit` passes;
  // returns the simulated time it took, or nullopt.
  std::optional<Millis> run_until(const std::function<bool()>& done, Millis limit);

  TimePoint now() const { return now_; }
  bool running(int i) const { return nodes_[static_cast<size_t>(i)].running; }
  Membership& node(int i) { return *nodes_[static_cast<size_t>(i)].machine; }
  const std::string& id(int i) const { return nodes_[static_cast<size_t>(i)].id; }

  // How `observer` sees `subject` (nullopt: not in its view).
  std::optional<MemberState> view(int observer, int subject) const;
  // Whether every running peer except `subject` sees it in `state`; for dead
  // and left, not knowing it at all counts too.
  bool all_see(int subject, MemberState state) const;
  // Every running peer sees exactly the other running peers as alive.
  bool converged() const;

  // Totals since construction.
  uint64_t frame_bytes() const { return frame_bytes_; }
  uint64_t messages() const { return messages_; }
  uint64_t rejected() const { return rejected_; }        // on_message refusals
  uint64_t undecodable() const { return undecodable_; }  // must stay 0
  const std::map<MessageType, uint64_t>& bytes_by_type() const { return bytes_by_type_; }
  // Every event of peer `i` since it last started, with its time.
  const std::vector<std::pair<TimePoint, Event>>& events(int i) const {
    return nodes_[static_cast<size_t>(i)].events;
  }

 private:
  struct Node {
    std::string id;
    std::string address;
    std::optional<Membership> machine;
    bool running = false;
    bool stalled = false;
    bool side = false;
    std::vector<std::pair<TimePoint, Event>> events;
  };
  struct Delivery {
    TimePoint at;
    uint64_t order;
    int to;
    int from;
    std::string expected_id;
    uint8_t type;
    std::vector<uint8_t> body;
    bool operator>(const Delivery& o) const { return at != o.at ? at > o.at : order > o.order; }
  };

  void step();
  void drain(int i);

  Options options_;
  NetworkModel net_;
  std::mt19937_64 rng_;
  TimePoint now_;
  std::vector<Node> nodes_;
  std::map<std::string, int> by_address_;
  std::priority_queue<Delivery, std::vector<Delivery>, std::greater<>> in_flight_;
  bool partitioned_ = false;
  uint64_t order_ = 0;
  uint64_t frame_bytes_ = 0;
  uint64_t messages_ = 0;
  uint64_t rejected_ = 0;
  uint64_t undecodable_ = 0;
  std::map<MessageType, uint64_t> bytes_by_type_;
};

// Figures of one simulated swarm of `peers` peers with `options` (latency
// 1..20 ms, no loss): a new peer joins through a random member, a random
// member crashes, another leaves; bandwidth is measured over 60 s of steady
// state. Times are simulated seconds from the event.
struct SwarmFigures {
  int peers = 0;
  double join_known_everywhere_s = -1;  // -1: not within 60 s
  double crash_known_everywhere_s = -1;
  double leave_known_everywhere_s = -1;
  double bytes_per_peer_per_s = 0;  // frame bytes sent, steady state
  double sync_share = 0;            // fraction of those bytes in SYNC_REQ/SYNC
};
SwarmFigures measure_swarm_figures(int peers, const Options& options, uint64_t seed);

}  // namespace gossip::membership
