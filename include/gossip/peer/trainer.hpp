// Trainer: one peer's replica and its data, stepping through its shard.
//
// The trainer owns the backend (the replica), the batcher over this peer's
// shard and the evaluation walker over the test set. It lives on the peer's
// trainer thread: every method must be called from that one thread. The
// averaging engine reaches the replica only through backend(), between two
// steps and on this same thread; which Backend operations it uses, and why,
// is train/backend.hpp's to say.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "gossip/config/config.hpp"
#include "gossip/core/status.hpp"
#include "gossip/data/batcher.hpp"
#include "gossip/data/dataset.hpp"
#include "gossip/peer/checkpoint.hpp"
#include "gossip/train/backend.hpp"

namespace gossip::peer {

// Where a training run stands; restored from checkpoints.
struct TrainProgress {
  int64_t step = 0;         // optimizer steps done by this peer
  data::DataPosition data;  // epoch and position in the shard's order
};

class Trainer {
 public:
  // Builds the backend and the batcher for `config`'s shard of `train_set`.
  // `test_set` may be null (no evaluation). Fails with the reason when the
  // model does not fit the data, the shard cannot be made, or the backend
  // cannot start (e.g. device "cuda" without a GPU).
  static core::Result<std::unique_ptr<Trainer>> create(
      const config::Config& config, std::shared_ptr<const data::Dataset> train_set,
      std::shared_ptr<const data::Dataset> test_set);

  // One optimizer step on the next batch, with the scheduled learning rate.
  // Returns the batch's mean loss before the update.
  float step();

  // Loss and accuracy on the test set (its first eval.max_rows rows when
  // set); touches no training state. Requires a test set.
  train::EvalStats evaluate();
  bool has_test_set() const { return test_set_ != nullptr; }

  // Whether the configured budget (epochs or steps) is spent; never true when
  // the config has neither (run until stopped).
  bool budget_spent() const;

  const TrainProgress& progress() const { return progress_; }
  // Reinstates a checkpointed position (the backend state is restored apart).
  core::Status restore(const TrainProgress& progress);

  // Continues the swarm's schedule after its state was downloaded into the
  // backend: the step count (and so the learning rate) becomes `step`; this
  // peer's own data position is kept. kInvalidArgument when step < 0.
  core::Status adopt_step(int64_t step);

  // The whole training state as a checkpoint: parameters and optimizer state
  // read from the backend, optimizer steps, progress, and `weight` (the
  // averaging weight the caller holds).
  CheckpointState checkpoint_state(double weight);
  // What a checkpoint must match to be resumed by this trainer's model.
  CheckpointExpect checkpoint_expect() const;
  // Reinstates a checkpoint: backend parameters, optimizer state and
  // optimizer steps, then the progress (step and data position). Errors
  // (sizes or fingerprint that do not match, a data position outside the
  // shard) leave the backend untouched.
  core::Status resume(const CheckpointState& state);

  // The epoch the last batch came from (0-based), and whether that batch was
  // the epoch's last one.
  int64_t epoch() const { return batcher_.epoch(); }
  bool at_epoch_end() const { return batcher_.at_epoch_end(); }
  // Rows in the batch the last step() trained on.
  int last_batch_rows() const { return last_batch_rows_; }
  double current_lr() const;
  int64_t shard_size() const { return batcher_.shard_size(); }
  int batch_size() const { return batcher_.options().batch_size; }
  int64_t steps_per_epoch() const { return batcher_.batches_per_epoch(); }
  // Epochs fully trained (the data position's epoch, plus one once its last
  // batch has been served).
  int64_t epochs_done() const { return batcher_.epoch() + (batcher_.at_epoch_end() ? 1 : 0); }
  train::Backend& backend() { return *backend_; }
  const config::Config& config() const { return config_; }

 private:
  Trainer(const config::Config& config, std::shared_ptr<const data::Dataset> train_set,
          std::shared_ptr<const data::Dataset> test_set, std::vector<int64_t> shard,
          std::unique_ptr<train::Backend> backend);

  config::Config config_;
  std::shared_ptr<const data::Dataset> train_set_;
  std::shared_ptr<const data::Dataset> test_set_;
  std::unique_ptr<train::Backend> backend_;
  data::Batcher batcher_;
  TrainProgress progress_;
  int last_batch_rows_ = 0;
};

}  // namespace gossip::peer
