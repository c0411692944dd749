// Batcher and EvalBatches: turning row indices into mini-batches.
//
// A Batcher walks one peer's shard in a fresh order each epoch. The order of
// epoch e is a pure function of (seed, e) applied to the shard as given, so
// the data-order position is two integers (epoch, position) that a
// checkpoint stores and restore() reinstates exactly. Batches are views into
// buffers the Batcher allocates once; each next() overwrites them.
// EvalBatches walks a whole dataset (or its first `limit` rows) in order, for
// test loss / accuracy. Both borrow the Dataset, which must outlive them; one
// instance per thread (the Dataset itself may be shared).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/data/batch.hpp"
#include "gossip/data/dataset.hpp"

namespace gossip::data {

struct BatcherOptions {
  int batch_size = 64;
  bool drop_last = false;  // true: skip an epoch's final partial batch
  bool shuffle = true;     // false: shard order every epoch (debugging)
  uint64_t seed = 0;
};

// Where a Batcher stands: `position` rows of epoch `epoch` already served.
struct DataPosition {
  int64_t epoch = 0;
  int64_t position = 0;
  bool operator==(const DataPosition&) const = default;
};

class Batcher {
 public:
  // Borrows `dataset`; takes the shard's row indices (each in
  // [0, dataset.size()), at least one). Programmer errors (empty shard, bad
  // index, batch_size <= 0) throw std::invalid_argument.
  Batcher(const Dataset& dataset, std::vector<int64_t> indices, BatcherOptions options);

  // The next batch of the current epoch; when the epoch is used up (or only a
  // partial batch is left and drop_last is set) first moves to the next epoch
  // and reshuffles. The view stays valid until the next call to next(),
  // restore() or the Batcher's destruction.
  Batch next();

  // Where the next batch starts; after an epoch's last batch this reads
  // {e, end_of_epoch} until next() rolls over to {e + 1, 0}.
  DataPosition position() const { return {epoch_, position_}; }
  int64_t epoch() const { return epoch_; }
  // True when the current epoch has no (full, if drop_last) batch left.
  bool at_epoch_end() const;

  // Reinstates a position saved by position(). invalid_argument when
  // epoch < 0 or position is outside [0, shard size].
  core::Status restore(DataPosition pos);

  int64_t shard_size() const { return static_cast<int64_t>(indices_.size()); }
  // Batches served per epoch (a partial last one counted unless drop_last).
  int64_t batches_per_epoch() const;
  const BatcherOptions& options() const { return options_; }
  // The row order of the current epoch (for tests and debugging).
  const std::vector<int64_t>& epoch_order() const { return order_; }

 private:
  void start_epoch(int64_t epoch);

  const Dataset& dataset_;
  std::vector<int64_t> indices_;
  BatcherOptions options_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<float> x_;
  std::vector<int32_t> labels_;
  std::vector<float> targets_;
  std::vector<int32_t> tokens_;  // language model: rows x window byte values
};

class EvalBatches {
 public:
  // Borrows `dataset`; walks rows [0, min(limit, size)) in order (limit < 0:
  // all). batch_size must be > 0 (std::invalid_argument otherwise).
  EvalBatches(const Dataset& dataset, int batch_size, int64_t limit = -1);

  // The next batch, or nullopt at the end; the view stays valid until the
  // next call. reset() starts over.
  std::optional<Batch> next();
  void reset() { next_row_ = 0; }
  int64_t rows() const { return end_; }

 private:
  const Dataset& dataset_;
  int batch_size_;
  int64_t end_;
  int64_t next_row_ = 0;
  std::vector<int64_t> idx_;
  std::vector<float> x_;
  std::vector<int32_t> labels_;
  std::vector<float> targets_;
  std::vector<int32_t> tokens_;  // language model: rows x window byte values
};

}  // namespace gossip::data
