// Simulation: the state of one gossip-sim run, private to the sim module.
// simulation.cpp starts and ends the run and drives the clock, events.cpp
// applies the scripted events, sampling.cpp measures the swarm and writes the
// records. The clock (events, asking for looks) runs on the simulation's own
// thread, looks are completed on the look worker; the peers run on theirs
// and are reached only through SimPeer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
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

// One look, as the clock thread asked it: the peers it asked (their
// replicas are copied by their own trainer threads) and what it knew of the
// swarm at that moment, so that the look worker needs nothing the clock
// thread changes meanwhile.
struct LookJob {
  uint64_t look = 0;
  double due_s = 0.0;
  double requested_s = 0.0;
  std::chrono::steady_clock::time_point deadline;
  std::vector<SimPeer*> peers;  // every peer started so far, by index
  std::vector<bool> alive;
  std::set<std::string> gone;  // ids of killed or left peers
  std::set<int> joiners;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options);
  ~Simulation();
  core::Result<nlohmann::json> run(const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;

  // simulation.cpp
  core::Status prepare();
  core::Result<SimPeer*> start_peer(std::vector<core::Endpoint> bootstrap, bool hold = false);
  core::Status start_cohort();
  void wait_for_views();
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
  void shape_every_link_of(SimPeer& peer, const net::LinkShape& shape);
  std::vector<core::Endpoint> random_live_address();
  std::string describe(const SimEvent& event) const;

  // sampling.cpp. The clock thread asks (ask_look) and hands the look to
  // the look worker (look_worker), which collects the answers, evaluates
  // and writes the record, so that the clock keeps firing events and asking
  // on schedule however long an evaluation takes.
  LookJob ask_look(double due_s);
  void start_look_worker();
  // Clock thread: hands `job` to the worker; false (nothing done) while the
  // worker is still busy with the previous look.
  bool post_look(LookJob job);
  // Waits for the worker to finish its look and ends it.
  void stop_look_worker();
  void look_worker();
  void complete_look(LookJob& job);
  double sample_period_s() const;
  std::chrono::milliseconds answer_timeout() const;
  void keep_up(double took_s, size_t replicas);
  nlohmann::json measure(std::vector<PeerLook>& looks, const std::vector<SimPeer*>& peers,
                         const std::set<std::string>& gone, const std::set<int>& joiners,
                         bool final_eval);
  void print_progress(const nlohmann::json& record, size_t peers) const;

  const SimOptions options_;
  const SimConfig& sim_;
  data::DatasetPair datasets_;
  std::unique_ptr<Observer> observer_;
  // Turns to step (null in averaging-only runs); declared before peers_, so
  // it outlives their threads.
  std::unique_ptr<StepTurns> turns_;
  std::vector<std::unique_ptr<SimPeer>> peers_;
  std::ofstream metrics_;
  Clock::time_point start_;
  double startup_s_ = 0.0;  // from the first peer's start to the cohort's release
  std::mt19937_64 rng_;
  size_t next_event_ = 0;
  double next_sample_s_ = 0.0;
  // Sampling's own period: sim.sample_every_s, longer once a look took more
  // than that (keep_up); then the one log line and the summary say so.
  double sample_period_s_ = 0.0;  // guarded by look_mu_ once the worker runs
  double slowest_look_s_ = 0.0;
  nlohmann::json sampling_slowed_;  // null, or what keep_up decided
  uint64_t looks_ = 0;              // looks asked for so far (request numbers)

  // Faults in force, applied to peers started later too.
  double drop_fraction_ = 0.0;
  std::optional<net::LinkShape> all_links_shape_;  // a slow_link "all" not healed since

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

  // The look worker. What it alone touches while it runs: observer_,
  // counters_, joiner_first_, d0_, pairs0_, samples_, last_sample_,
  // slowest_look_s_, sampling_slowed_ (finish() reads them after
  // stop_look_worker()). write_record is shared with the clock thread.
  std::thread looker_;
  mutable std::mutex look_mu_;
  std::condition_variable look_cv_;
  std::optional<LookJob> look_job_;  // the look handed over, not yet taken
  bool look_busy_ = false;           // a look is handed over or being completed
  bool look_stop_ = false;
  std::mutex record_mu_;  // metrics_
};

}  // namespace gossip::sim
