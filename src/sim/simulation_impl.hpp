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

class Simulation {
 public:
  explicit Simulation(const SimOptions& options);
  core::Result<nlohmann::json> run(const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;

  // simulation.cpp
  core::Status prepare();
  core::Result<SimPeer*> start_peer(std::vector<config::Endpoint> bootstrap, bool hold = false);
  core::Status start_cohort();
  config::Config peer_config(int index) const;
  bool finished() const;
  double now_s() const;
  nlohmann::json finish();
  void add_decay(nlohmann::json& summary) const;
  nlohmann::json run_error(const nlohmann::json& failed_peers) const;
  void write_record(const nlohmann::json& record);

  // events.cpp
  bool event_due(const config::SimEvent& event) const;
  core::Status apply_event(size_t index, const config::SimEvent& event);
  void apply_partition(const config::SimEvent& event);
  void apply_slow_link(const config::SimEvent& event);
  void apply_faults_to(SimPeer& peer);
  std::vector<config::Endpoint> random_live_address();
  std::string describe(const config::SimEvent& event) const;

  // sampling.cpp
  void sample();
  nlohmann::json measure(std::vector<std::optional<Replica>>& replicas, bool final_eval);
  void print_progress(const nlohmann::json& record) const;

  const SimOptions options_;
  const config::SimConfig& sim_;
  data::DatasetPair datasets_;
  std::unique_ptr<Observer> observer_;
  std::vector<std::unique_ptr<SimPeer>> peers_;
  std::ofstream metrics_;
  Clock::time_point start_;
  double startup_s_ = 0.0;  // from the first peer's start to the cohort's release
  std::mt19937_64 rng_;
  size_t next_event_ = 0;
  double next_sample_s_ = 0.0;

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
