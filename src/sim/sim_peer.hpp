// SimPeer: one simulated peer, private to the sim module. It is a real peer
// (peer::run_peer on its own trainer thread, with its own keys, listener,
// membership and averaging engine) that shares the simulation's datasets and
// lets the simulation look at its replica between steps.
//
// Looking: the simulation asks for a Replica (request_sample), the trainer
// thread fills it at its next between-steps point (a copy of the parameters,
// the step, the mean training loss since the last sample, its counters and
// the members it sees), and the simulation collects it (collect_sample).
// The live parameters are only ever read on the trainer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/core/status.hpp"
#include "gossip/net/link_filter.hpp"
#include "gossip/peer/metrics.hpp"
#include "gossip/peer/observe.hpp"
#include "gossip/peer/run.hpp"
#include "step_turns.hpp"

namespace gossip::sim {

// What the simulation sees of one replica at one moment.
struct Replica {
  std::chrono::steady_clock::time_point taken;  // when the trainer thread copied it
  int64_t step = 0;
  std::vector<float> params;
  std::optional<double> train_loss;  // mean over the steps since the last sample
  peer::NetworkCounters counters;
  std::vector<std::string> members;  // live member ids this peer sees (not itself)
  uint64_t links_refused = 0;        // its LinkFilter's refused() (partitions)
  uint64_t blobs_dropped = 0;        // its LinkFilter's dropped() (drop events)
};

enum class PeerState { kStarting, kRunning, kKilled, kLeft, kFinished, kFailed };
const char* peer_state_name(PeerState state);

// Hosts its run (peer::Host, privately): the simulation reaches it only
// through the public methods below.
class SimPeer : private peer::Host {
 public:
  // `config` is this peer's own config (keys, folder, shard already set).
  SimPeer(int index, config::Config config, data::DatasetPair datasets, bool average_only);
  ~SimPeer() override;  // kills the peer if it still runs, then joins its thread
  SimPeer(const SimPeer&) = delete;
  SimPeer& operator=(const SimPeer&) = delete;

  // Starts the trainer thread; the peer joins through `bootstrap` (empty:
  // it founds the swarm). With `hold`, it waits after joining and getting
  // its state (still serving the network: state requests, exchanges) until
  // release(), so a cohort of peers can start training together.
  void start(std::vector<core::Endpoint> bootstrap, bool hold = false);
  void release();
  // Blocks until the peer listens (its address) or failed to start.
  core::Result<std::string> wait_listening(std::chrono::milliseconds timeout);

  // Crash (no LEAVE, no final checkpoint) / graceful leave / stop at the end
  // of the simulation (graceful too). Non-blocking; join() waits.
  void kill();
  void leave();
  void stop_at_end();
  void join();

  int index() const { return index_; }
  PeerState state() const { return state_.load(); }
  bool running() const;  // started and its thread has not ended
  // Running, not told to crash or leave and not leaving with its budget
  // spent: what the simulation counts as alive, whether or not the peer
  // answers a look in time.
  bool alive() const;
  int64_t step() const { return step_.load(std::memory_order_relaxed); }
  // Valid once listening.
  const std::string& id() const { return id_; }
  const std::string& address() const { return address_; }
  // Runs `fn` on the peer's link filter while its network is up (under
  // the peer's lock, so the network cannot be torn down meanwhile); false,
  // doing nothing, otherwise.
  template <typename F>
  bool with_filter(F&& fn) {
    std::lock_guard lock(mu_);
    if (!filter_) return false;
    fn(*filter_);
    return true;
  }
  // Why the run failed (kFailed), else ok.
  core::Status failure() const;
  // What an operator sees of the peer (PeerNetwork::observe) while its
  // network is up; nullopt otherwise. Any thread.
  std::optional<peer::PeerObservation> observe() const;

  // Asks the trainer thread for a Replica at its next between-steps point;
  // `look` numbers the request, so that an answer that comes after its
  // look was given up is never taken for a later one's.
  void request_sample(uint64_t look);
  // Waits until `deadline` for the Replica of request `look` (nullopt: none
  // came in time, e.g. the peer is slow, still downloading state, or ended).
  // The request stays open: the trainer thread answers it once and drops the
  // answer if the next look has started.
  std::optional<Replica> collect_sample(uint64_t look,
                                        std::chrono::steady_clock::time_point deadline);
  // The member ids this peer sees alive now (not itself), read from its
  // membership whatever its trainer thread is doing; nullopt while it has no
  // network (before listening, after closing). Any thread.
  std::optional<std::vector<std::string>> view() const;
  // Test hook: the trainer thread sleeps `delay` before answering each look
  // (a slow peer: its training waits too). Call before start().
  void set_answer_delay(std::chrono::milliseconds delay) { answer_delay_ = delay; }
  // The simulation's turns to step (null: the peer steps whenever the OS
  // runs it). The peer takes a turn once ready, passes it on after a quantum
  // when others wait, and gives it up when its training ends. Call before
  // start(); `turns` outlives the peer's thread.
  void set_turns(StepTurns* turns) { turns_ = turns; }
  // The parameters the peer started training from (after its state
  // download), once; nullopt before it is ready or after it was taken.
  std::optional<std::vector<float>> take_ready_params();
  // The replica as the run ended normally (after its final exchange and
  // LEAVE); nullopt while running or when killed.
  std::optional<Replica> final_replica() const;
  // The summary run_peer returned (once the thread ended without failing).
  std::optional<peer::RunSummary> summary() const;

 private:
  void run(std::vector<core::Endpoint> bootstrap);
  Replica make_replica(peer::Trainer& trainer, peer::PeerNetwork* net);
  // Trainer thread: answers the open look, if any.
  void answer_look(peer::Trainer& trainer);
  // Trainer thread: waits for a turn to step, still serving its partners
  // and the looks meanwhile.
  void take_turn(peer::Trainer& trainer);

  // peer::Host, called on the trainer thread.
  data::DatasetPair shared_datasets() const override { return datasets_; }
  bool killed() const override { return kill_.load(std::memory_order_relaxed); }
  bool average_only() const override { return average_only_; }
  bool wants_link_filter() const override { return true; }
  // One: a peer's sessions share its thread (an implicit strand), and the
  // host's cores are shared by every peer anyway.
  int io_threads() const override { return 1; }
  void on_network(peer::PeerNetwork& net) override;
  void on_network_closing(peer::PeerNetwork& net) override;
  void on_ready(peer::Trainer& trainer) override;
  void between_steps(peer::Trainer& trainer, float loss) override;
  void on_exit(peer::Trainer& trainer, peer::PeerNetwork* net) override;

  const int index_;
  const config::Config config_;
  const data::DatasetPair datasets_;
  const bool average_only_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> kill_{false};
  std::atomic<PeerState> state_{PeerState::kStarting};
  std::atomic<bool> ended_{false};
  std::atomic<bool> done_{false};  // its budget is spent: it is leaving
  std::atomic<int64_t> step_{0};
  std::atomic<uint64_t> want_look_{0};  // the look asked for; 0: none
  std::chrono::milliseconds answer_delay_{0};
  std::atomic<bool> hold_{false};
  bool leaving_ = false;  // guarded by mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool listening_ = false;
  std::string id_, address_;
  std::shared_ptr<net::LinkFilter> filter_;
  // From on_network to on_network_closing: view() and observe() read it.
  const peer::PeerNetwork* network_ = nullptr;
  core::Status failure_ = core::Status::ok();
  std::optional<Replica> sample_;
  uint64_t sample_look_ = 0;  // the look sample_ answers
  std::optional<std::vector<float>> ready_params_;
  std::optional<Replica> final_;
  std::optional<peer::RunSummary> summary_;

  // Trainer thread only.
  peer::PeerNetwork* net_ = nullptr;
  StepTurns* turns_ = nullptr;
  StepTurns::Waiter waiter_;
  bool has_turn_ = false;
  std::chrono::steady_clock::time_point turn_since_;
  double loss_sum_ = 0.0;
  int64_t loss_steps_ = 0;
};

}  // namespace gossip::sim
