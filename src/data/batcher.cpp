// Batcher / EvalBatches. Each epoch's order is recomputed from the shard as
// given (not from the previous epoch's order), which is what makes restore()
// O(shard) and exact.
#include "gossip/data/batcher.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "gossip/data/rng.hpp"

namespace gossip::data {
namespace {

// One gather into the buffers the dataset's task uses.
void fill(const Dataset& d, std::span<const int64_t> idx, std::vector<float>& x,
          std::vector<int32_t>& labels, std::vector<float>& targets, std::vector<int32_t>& tokens) {
  if (d.task() == Task::kLanguageModel) {
    d.gather_tokens(idx, tokens.data());
  } else {
    d.gather(idx, x.data(), labels.data(), targets.data());
  }
}

Batch make_view(const Dataset& d, int rows, const float* x, const int32_t* labels,
                const float* targets, const int32_t* tokens) {
  Batch b;
  b.rows = rows;
  b.cols = d.features();
  if (d.task() == Task::kLanguageModel) {
    b.tokens = tokens;
    return b;
  }
  b.x = x;
  if (d.task() == Task::kClassification) {
    b.labels = labels;
  } else {
    b.targets = targets;
    b.target_cols = d.target_cols();
  }
  return b;
}

void size_buffers(const Dataset& d, int batch, std::vector<float>& x, std::vector<int32_t>& labels,
                  std::vector<float>& targets, std::vector<int32_t>& tokens) {
  const auto rows = static_cast<size_t>(batch);
  if (d.task() == Task::kLanguageModel) {
    tokens.resize(rows * static_cast<size_t>(d.features()));
    return;
  }
  x.resize(rows * static_cast<size_t>(d.features()));
  if (d.task() == Task::kClassification)
    labels.resize(rows);
  else
    targets.resize(rows * static_cast<size_t>(d.target_cols()));
}

}  // namespace

Batcher::Batcher(const Dataset& dataset, std::vector<int64_t> indices, BatcherOptions options)
    : dataset_(dataset), indices_(std::move(indices)), options_(options) {
  if (options_.batch_size <= 0) throw std::invalid_argument("Batcher: batch_size must be > 0");
  if (indices_.empty()) throw std::invalid_argument("Batcher: empty shard");
  for (int64_t i : indices_) {
    if (i < 0 || i >= dataset_.size()) {
      throw std::invalid_argument("Batcher: row index " + std::to_string(i) + " outside " +
                                  dataset_.name());
    }
  }
  const int batch = static_cast<int>(std::min<int64_t>(options_.batch_size, shard_size()));
  size_buffers(dataset_, batch, x_, labels_, targets_, tokens_);
  start_epoch(0);
}

void Batcher::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  order_ = indices_;
  if (options_.shuffle) {
    Rng rng(derive_seed(options_.seed, static_cast<uint64_t>(epoch)));
    shuffle(std::span<int64_t>(order_), rng);
  }
}

bool Batcher::at_epoch_end() const {
  const int64_t left = shard_size() - position_;
  if (left <= 0) return true;
  // A shard smaller than one batch still yields one (short) batch per epoch.
  return options_.drop_last && left < options_.batch_size && shard_size() >= options_.batch_size;
}

int64_t Batcher::batches_per_epoch() const {
  const int64_t n = shard_size();
  const int64_t b = options_.batch_size;
  if (options_.drop_last && n >= b) return n / b;
  return (n + b - 1) / b;
}

Batch Batcher::next() {
  if (at_epoch_end()) start_epoch(epoch_ + 1);
  const int64_t rows = std::min<int64_t>(options_.batch_size, shard_size() - position_);
  const std::span<const int64_t> idx(order_.data() + position_, static_cast<size_t>(rows));
  fill(dataset_, idx, x_, labels_, targets_, tokens_);
  position_ += rows;
  return make_view(dataset_, static_cast<int>(rows), x_.data(), labels_.data(), targets_.data(),
                   tokens_.data());
}

core::Status Batcher::restore(DataPosition pos) {
  if (pos.epoch < 0 || pos.position < 0 || pos.position > shard_size()) {
    return core::invalid_argument("data position: epoch " + std::to_string(pos.epoch) +
                                  ", position " + std::to_string(pos.position) +
                                  " does not fit a shard of " + std::to_string(shard_size()) +
                                  " samples");
  }
  start_epoch(pos.epoch);
  position_ = pos.position;
  return core::Status::ok();
}

EvalBatches::EvalBatches(const Dataset& dataset, int batch_size, int64_t limit)
    : dataset_(dataset),
      batch_size_(batch_size),
      end_(limit < 0 ? dataset.size() : std::min(limit, dataset.size())) {
  if (batch_size_ <= 0) throw std::invalid_argument("EvalBatches: batch_size must be > 0");
  const int batch = static_cast<int>(std::min<int64_t>(batch_size_, std::max<int64_t>(end_, 1)));
  idx_.resize(static_cast<size_t>(batch));
  size_buffers(dataset_, batch, x_, labels_, targets_, tokens_);
}

std::optional<Batch> EvalBatches::next() {
  if (next_row_ >= end_) return std::nullopt;
  const int64_t rows = std::min<int64_t>(batch_size_, end_ - next_row_);
  std::iota(idx_.begin(), idx_.begin() + rows, next_row_);
  fill(dataset_, std::span<const int64_t>(idx_.data(), static_cast<size_t>(rows)), x_, labels_,
       targets_, tokens_);
  next_row_ += rows;
  return make_view(dataset_, static_cast<int>(rows), x_.data(), labels_.data(), targets_.data(),
                   tokens_.data());
}

}  // namespace gossip::data
