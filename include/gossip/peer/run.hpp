// run_peer: one peer's whole life, from loading its data to its final
// checkpoint. With peer.network false it is a swarm of one (the reference the
// swarm's accuracy is judged against); otherwise it also joins the swarm,
// starts from the swarm's state when it has no checkpoint of its own,
// averages with random members between steps, and leaves gracefully.
#pragma once

#include <atomic>
#include <functional>
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
  int64_t epochs = 0;       // completed epochs
  int64_t steps = 0;
  double wall_s = 0.0;         // whole run, data loading excluded
  double samples_per_s = 0.0;  // training samples over training time (evaluation excluded)
  std::string device;
  std::string model;       // ModelSpec::describe()
  int64_t start_step = 0;  // step resumed from (0: fresh start)
  bool stopped = false;    // stopped by the caller (a signal) before the budget was spent
  bool killed = false;     // aborted through RunHooks::kill (no LEAVE, no final checkpoint)
  std::string checkpoint;  // the last checkpoint file written or resumed ("" none)
  std::string peer_id;     // networked peers: hex static key
  std::string listen;      // networked peers: bound address
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

// What a host of many peers in one process (the simulator) adds to a run.
// Every member is optional; the defaults give gossip-peer's behaviour.
struct RunHooks {
  // Datasets already loaded and shared read-only by several peers (null
  // train set: load config.data.dataset).
  data::DatasetPair datasets;
  // Becoming true aborts the run the way a crash would: the loop stops after
  // the current step, nothing is sent (no final exchange, no LEAVE), no final
  // evaluation or checkpoint is written, and the network is torn down.
  const std::atomic<bool>* kill = nullptr;
  // Averaging only: no training steps and no state download; the peer keeps
  // its own initial parameters and averages on gossip.interval_ms (which
  // must be > 0) until stopped.
  bool average_only = false;
  // The network gets a net::LinkFilter (PeerNetwork::link_filter()).
  bool link_filter = false;
  // Trainer thread, once the network is listening (before joining).
  std::function<void(PeerNetwork&)> on_network;
  // Trainer thread, right before the network is torn down (whatever ends
  // the run): whoever kept pointers into it from on_network drops them here.
  std::function<void(PeerNetwork&)> on_network_closing;
  // Trainer thread, once before the first step, after the resume or the
  // state download: the state the peer starts training from.
  std::function<void(Trainer&)> on_ready;
  // Trainer thread, after every step and its averaging work; `loss` is the
  // step's loss (NaN in average_only mode, where it runs every loop turn).
  std::function<void(Trainer&, float loss)> between_steps;
  // Trainer thread, once at the end of a run that was neither killed, nor
  // diverged, nor failed in its backend: after the final exchange and LEAVE,
  // before the final evaluation and checkpoint.
  std::function<void(Trainer&, PeerNetwork*)> on_exit;
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
// As above, with a host's hooks (see RunHooks).
core::Result<RunSummary> run_peer(const config::Config& config, const std::atomic<bool>& stop,
                                  const RunHooks& hooks);

}  // namespace gossip::peer
