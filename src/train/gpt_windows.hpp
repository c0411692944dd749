// A batch of token windows as the GPT backends feed it to their model: each
// window of cols bytes becomes cols - 1 inputs (its first bytes) and cols - 1
// targets (its last). Shared by the CPU and CUDA GPT backends, which differ
// only in where the model then runs; host memory only, no CUDA types.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "gossip/data/batch.hpp"

namespace gossip::train {

class GptWindows {
 public:
  // Room for max_rows windows of up to block + 1 bytes.
  GptWindows(int max_rows, int block)
      : max_rows_(max_rows),
        block_(block),
        inputs_(static_cast<size_t>(max_rows) * block),
        targets_(inputs_.size()) {}

  // Throws std::invalid_argument, prefixed by `what`, unless `b` holds token
  // windows of 2..block + 1 bytes.
  void check(const data::Batch& b, const std::string& what) const {
    if (b.rows < 1 || b.tokens == nullptr) {
      throw std::invalid_argument(what + ": the gpt needs a batch of token windows");
    }
    if (b.cols < 2 || b.cols > block_ + 1) {
      throw std::invalid_argument(what + ": windows of " + std::to_string(b.cols) +
                                  " bytes, the model takes 2.." + std::to_string(block_ + 1));
    }
  }

  // check(), and that all of `b` fits at once (a training step; evaluation
  // splits a batch into runs of max_rows).
  void check_whole(const data::Batch& b, const std::string& what) const {
    check(b, what);
    if (b.rows > max_rows_) {
      throw std::invalid_argument(what + ": batch of " + std::to_string(b.rows) +
                                  " windows exceeds max_batch " + std::to_string(max_rows_));
    }
  }

  // Windows [begin, begin + rows) of `b` into inputs() and targets(); returns
  // the positions per window (cols - 1).
  int split(const data::Batch& b, int begin, int rows) {
    const int block = b.cols - 1;
    for (int r = 0; r < rows; ++r) {
      const int32_t* w = b.tokens + static_cast<size_t>(begin + r) * b.cols;
      std::copy(w, w + block, inputs_.begin() + static_cast<long>(r) * block);
      std::copy(w + 1, w + 1 + block, targets_.begin() + static_cast<long>(r) * block);
    }
    return block;
  }

  const int32_t* inputs() const { return inputs_.data(); }
  const int32_t* targets() const { return targets_.data(); }

 private:
  int max_rows_, block_;
  std::vector<int32_t> inputs_, targets_;
};

}  // namespace gossip::train
