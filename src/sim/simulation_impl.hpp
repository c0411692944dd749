// Simulation: the state of one gossip-sim run, private to the sim module.
// simulation.cpp starts and ends the run and drives the clock, events.cpp
// applies the scripted events, sampling.cpp measures the swarm and writes the
// records. Everything here runs on the simulation's own thread; the peers
// run on theirs and are reached only through SimPeer.
#pragma once

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gossip/sim/simulation.hpp"
#include "metrics_endpoint.hpp"
#include "sim_peer.hpp"
#include "truth.hpp"

namespace gossip::sim {

// One peer at one look: alive as the simulation knows it (started, neither
// crashed nor told to leave), its replica if it answered before the look's
// deadline (an alive peer without one is late, not dead), and the members it
// sees, read from its membership.
struct PeerLook {
  bool alive = false;
  std::optional<Replica> replica;
  std::optional<std::vector<std::string>> view;
  int64_t step = 0;  // the replica's step, else the peer's own step counter
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options);
  core::Result<nlohmann::json> run(const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;

  // simulation.cpp
  core::Status prepare();
  core::Result<SimPeer*> start_peer(std::vector<core::Endpoint> bootstrap, bool hold = false);
  core::Status start_cohort();
  config::Config peer_config(int index) const;
  bool finished() const;
  double now_s() const;
  nlohmann::json finish();
  void add_decay(nlohmann::json& summary) const;
  nlohmann::json run_error(const nlohmann::json& failed_peers) const;
  void write_record(const nlohmann::json& record);

  // events.cpp
  bool event_due(const SimEvent& event) const;
  core::Status apply_event(size_t index, const SimEvent& event);
  void apply_partition(const SimEvent& event);
  void apply_slow_link(const SimEvent& event);
  void apply_faults_to(SimPeer& peer);
  std::vector<core::Endpoint> random_live_address();
  std::string describe(const SimEvent& event) const;

  // sampling.cpp
  void sample(double due_s);
  std::chrono::milliseconds answer_timeout() const;
  void keep_up(double took_s);
  nlohmann::json measure(std::vector<PeerLook>& looks, bool final_eval);
  void print_progress(const nlohmann::json& record) const;

  const SimOptions options_;
  const SimConfig& sim_;
  data::DatasetPair datasets_;
  std::unique_ptr<Observer> observer_;
  std::vector<std::unique_ptr<SimPeer>> peers_;
  std::ofstream metrics_;
  Clock::time_point start_;
  double startup_s_ = 0.0;  // from the first peer's start to the cohort's release
  std::mt19937_64 rng_;
  size_t next_event_ = 0;
  double next_sample_s_ = 0.0;
  // Sampling's own period: sim.sample_every_s, longer once a look took more
  // than that (keep_up); then the one log line and the summary say so.
  double sample_period_s_ = 0.0;
  double slowest_look_s_ = 0.0;
  nlohmann::json sampling_slowed_;  // null, or what keep_up decided
  uint64_t looks_ = 0;              // looks asked for so far (request numbers)

  // Faults in force, applied to peers started later too.
  double drop_fraction_ = 0.0;

  // Per peer (by index): the last counters seen, kept after it is gone so
  // swarm totals never go backwards; whether it was started by an event.
  struct SeenCounters {
    peer::NetworkCounters network;
    uint64_t links_refused = 0;
    uint64_t blobs_dropped = 0;
  };
  std::map<int, SeenCounters> counters_;
  std::set<int> joiners_;
  std::map<int, nlohmann::json> joiner_first_;  // index -> first evaluation
  std::vector<std::string> gone_ids_;           // killed or left peers

  // Consensus at the first sample, for the theory curve.
  std::optional<double> d0_;
  int64_t pairs0_ = 0;
  std::vector<nlohmann::json> samples_;  // averaged accuracy over time, for time_to_accuracy
  nlohmann::json last_sample_;

  // sim.metrics_http (null when off); declared after peers_, so it stops
  // serving before they go.
  std::unique_ptr<SwarmMetrics> metrics_http_;
};

}  // namespace gossip::sim
