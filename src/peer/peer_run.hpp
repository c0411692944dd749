// PeerRun: what run_peer does, private to the peer module. One object per
// run; run() calls the phases in order, each its own function:
//
//   load        key files, data, trainer, checkpoint folder
//   resume      the newest valid checkpoint; the metrics file
//   join        the network: listen, join through the bootstrap addresses
//   sync_state  a fresh peer downloads the swarm's state
//   train       the loop: steps, averaging, evaluations, checkpoints
//   finish      last exchange, LEAVE, final evaluation and checkpoint, summary
//
// A phase that fails returns the error run_peer returns; once training has
// begun, failures become the summary's error instead (finish). Everything
// here runs on the trainer thread. run.cpp holds the phases, run_loop.cpp the
// training loop and what it does on schedule.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "gossip/config/config.hpp"
#include "gossip/core/status.hpp"
#include "gossip/data/factory.hpp"
#include "gossip/peer/checkpoint.hpp"
#include "gossip/peer/metrics.hpp"
#include "gossip/peer/network.hpp"
#include "gossip/peer/run.hpp"
#include "gossip/peer/trainer.hpp"

namespace gossip::peer {

class PeerRun {
 public:
  PeerRun(const config::Config& config, const std::atomic<bool>& stop, Host& host);
  ~PeerRun();  // tells the host the network closes, then tears it down
  PeerRun(const PeerRun&) = delete;
  PeerRun& operator=(const PeerRun&) = delete;

  // The whole run, once. Exceptions from the backend before training began
  // propagate (run_peer turns them into an error); later ones are caught.
  core::Result<RunSummary> run();

 private:
  using Clock = std::chrono::steady_clock;

  // The phases, in the order run() calls them (run.cpp).
  core::Status load();
  core::Status resume();
  core::Status join();
  core::Status sync_state();
  void train();
  RunSummary finish();

  // finish's parts (run.cpp).
  RunSummary crashed();   // killed by the host: no LEAVE, nothing written
  void leave_and_save();  // last exchange, LEAVE, final evaluation and checkpoint
  void summarize();       // counters, error, means and rates into summary_
  void close_network();

  // The training loop and what it does on schedule (run_loop.cpp).
  void average_only_loop();
  bool step();  // false: training must stop (diverged)
  void print_progress();
  void report_epoch(int64_t epoch_done);
  train::EvalStats evaluate();
  void write_train_record();
  core::Status save_checkpoint();
  std::optional<NetworkCounters> network_counters() const;
  bool stopping() const;  // stop requested or killed: checked between steps
  void backend_failed(const std::exception& e);
  static double seconds_since(Clock::time_point t);

  const config::Config& config_;
  const std::atomic<bool>& stop_;
  Host& host_;

  // Built by the phases; net_ is declared last so it goes first.
  data::DatasetPair datasets_;
  std::unique_ptr<Trainer> trainer_;
  std::optional<CheckpointStore> store_;
  std::optional<MetricsLog> metrics_;
  std::unique_ptr<PeerNetwork> net_;

  RunSummary summary_;
  double weight_ = 0.0;  // the averaging weight, kept in checkpoints
  std::optional<std::filesystem::path> resumed_from_;
  // The resumed checkpoint's outer state (gossip.mode outer), handed to the
  // engine once the network is up.
  averaging::OuterState resumed_outer_;

  // The training loop's tallies.
  Clock::time_point start_;
  int64_t total_steps_ = 0;
  double train_s_ = 0.0;
  int64_t samples_ = 0;
  double epoch_loss_sum_ = 0.0;
  int64_t epoch_steps_ = 0;
  double run_loss_sum_ = 0.0;  // every step of this run, for a run without a whole epoch
  int64_t run_steps_ = 0;
  int64_t last_saved_ = -1;  // step of the last checkpoint written or resumed
  int64_t last_eval_ = -1;
  std::optional<double> last_accuracy_, last_test_loss_;
  LossMeter record_meter_, progress_meter_;
  std::optional<ProgressLine> progress_line_;

  // Why training ended early, at most one set: a non-finite loss or
  // parameters, an exception from the backend. And why the final checkpoint
  // was not written.
  std::string diverged_;
  std::string failed_;
  std::string unsaved_;
};

}  // namespace gossip::peer
