// run_peer: one peer's whole life, from loading its data to its final
// checkpoint, in phases: load the keys, data and model; resume from the
// newest checkpoint; join the swarm; sync the swarm's state when it has no
// checkpoint of its own; train, averaging with random members between steps;
// finish with a last exchange, LEAVE and the final checkpoint. With
// peer.network false it is a swarm of one (the reference the swarm's
// accuracy is judged against) and skips the network phases.
#pragma once

#include <atomic>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "gossip/config/config.hpp"
#include "gossip/core/status.hpp"
#include "gossip/data/factory.hpp"

namespace gossip::peer {

struct RunSummary {
  // The last evaluation on the test set: accuracy as a fraction in [0,1]
  // (none for regression) and mean loss. None when no evaluation ran (no
  // test set, a diverged, failed or killed run).
  std::optional<double> test_accuracy;
  std::optional<double> test_loss;
  // Language models (model.type gpt): test_loss / ln 2, and test_loss and
  // test_accuracy are nats and next-byte accuracy per predicted byte.
  std::optional<double> test_bits_per_byte;
  // Mean loss over the last completed epoch's steps; when no epoch
  // completed, over the steps this run did; none without steps.
  std::optional<double> train_loss;
  int64_t epochs = 0;  // completed epochs
  int64_t steps = 0;
  double wall_s = 0.0;         // whole run, data loading excluded
  double samples_per_s = 0.0;  // training samples over training time (evaluation excluded)
  std::string device;
  std::string model;              // ModelSpec::describe()
  int64_t start_step = 0;         // step resumed from (0: fresh start)
  bool stopped = false;           // stopped by the caller (a signal) before the budget was spent
  bool killed = false;            // aborted through Host::killed (no LEAVE, no final checkpoint)
  std::string checkpoint;         // the last checkpoint file written or resumed ("" none)
  std::string peer_id;            // networked peers: hex static key
  std::string listen;             // networked peers: bound address
  bool from_swarm_state = false;  // started from state downloaded from a member
  int64_t exchanges_ok = 0;
  int64_t exchanges_failed = 0;
  // Non-empty when the run failed after training began, so that a summary
  // is still there to print: the loss became non-finite ("training diverged
  // at step N ..."), the backend threw in the middle of the run (a lost CUDA
  // device: "training failed at step N ..."), or the final checkpoint could
  // not be written. After a divergence or a backend failure no final
  // checkpoint is written (the last good one stays) and the peer leaves
  // without a final exchange.
  std::string error;
};

// The summary of a run that failed before it could train (run_peer returned
// `why`): the model and the error, every measured field empty.
RunSummary failed_run(const config::Config& config, const core::Status& why);

class PeerNetwork;
class Trainer;

// What a host of many peers in one process (the simulator) adds to a run:
// shared data, a crash switch, averaging only, a link filter, and the points
// in the run where it may look. Every method has a default, and the defaults
// give gossip-peer's behaviour. run_peer calls them all on the trainer
// thread (the thread that called run_peer).
class Host {
 public:
  virtual ~Host() = default;

  // Datasets already loaded and shared read-only by several peers (null
  // train set: run_peer loads config.data.dataset).
  virtual data::DatasetPair shared_datasets() const { return {}; }
  // Becoming true aborts the run the way a crash would: the loop stops after
  // the current step, nothing is sent (no final exchange, no LEAVE), no final
  // evaluation or checkpoint is written, and the network is torn down.
  virtual bool killed() const { return false; }
  // Averaging only: no training steps and no state download; the peer keeps
  // its own initial parameters and averages on gossip.interval_ms until
  // stopped. Requires peer.network true and gossip.interval_ms > 0 (the
  // simulator checks the config first: sim::check_options).
  virtual bool average_only() const { return false; }
  // The network gets a net::LinkFilter (PeerNetwork::link_filter()).
  virtual bool wants_link_filter() const { return false; }
  // Threads of the network's own io_context (gossip-peer: 2, so that
  // encryption and the socket writes of one session overlap another's).
  virtual int io_threads() const { return 2; }

  // Once the network is listening (before joining).
  virtual void on_network(PeerNetwork& /*net*/) {}
  // Right before the network is torn down, whatever ends the run: whoever
  // kept pointers into it from on_network drops them here.
  virtual void on_network_closing(PeerNetwork& /*net*/) {}
  // Once before the first step, after the resume or the state download: the
  // state the peer starts training from.
  virtual void on_ready(Trainer& /*trainer*/) {}
  // After every step and its averaging work; `loss` is the step's loss (NaN
  // in average_only mode, where it runs every loop turn). An exception thrown
  // here ends the run as a backend failure would.
  virtual void between_steps(Trainer& /*trainer*/, float /*loss*/) {}
  // Once at the end of a run that was neither killed, nor diverged, nor
  // failed in its backend: after the final exchange and LEAVE, before the
  // final evaluation and checkpoint. `net` is null for a swarm of one.
  virtual void on_exit(Trainer& /*trainer*/, PeerNetwork* /*net*/) {}
};

// The summary as the one-line JSON object gossip-peer prints last.
nlohmann::json to_json(const RunSummary& summary);

// Loads the data, builds the trainer, resumes from the newest valid
// checkpoint in checkpoint.dir (or starts fresh, saying why), and trains until
// the budget is spent or `stop` becomes true (checked between steps, so the
// current step always finishes). Evaluates every training.eval.every_epochs
// epochs / every_steps steps and at the end; writes checkpoints every
// checkpoint.every_steps steps and a final one at the end; appends metrics
// records to metrics.file and prints a progress line every
// metrics.progress_every_s seconds. Calling thread = trainer thread. Errors:
// missing key files (invalid argument, checked before anything loads), bad
// data files, model/data mismatch, unavailable device, checkpoint folder in
// use or not writable, no seed answering, a swarm whose every member refused
// the state download because its model differs (invalid argument, naming
// both models), an exception from the backend before training began. Once
// training has begun, failures come back as a summary with `error` set (see
// RunSummary): a non-finite loss, an exception from the backend (e.g.
// CudaError), a final checkpoint that could not be written.
core::Result<RunSummary> run_peer(const config::Config& config, const std::atomic<bool>& stop);
// As above, hosted by `host` (see Host).
core::Result<RunSummary> run_peer(const config::Config& config, const std::atomic<bool>& stop,
                                  Host& host);

}  // namespace gossip::peer
