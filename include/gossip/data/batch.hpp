// Batch: a borrowed, row-major view of one mini-batch, as the data module
// produces it and the training backends consume it.
#pragma once

#include <cstdint>

namespace gossip::data {

// Borrowed view; the producer keeps the memory alive until the consumer returns.
// Classification batches set `labels` (class index per row); regression
// batches set `targets` (rows x target_cols); language-model batches set
// `tokens` instead of `x` (rows x cols byte values: a window of block + 1
// bytes, inputs its first block, targets its last block). Exactly one of
// labels, targets and tokens is set.
struct Batch {
  int rows = 0;                     // samples in this batch
  int cols = 0;                     // features per sample
  const float* x = nullptr;         // rows x cols, row-major, host memory
  const int32_t* labels = nullptr;  // rows, values in [0, classes)
  const float* targets = nullptr;   // rows x target_cols, row-major
  int target_cols = 0;
  const int32_t* tokens = nullptr;  // rows x cols, values in [0, 256)
};

}  // namespace gossip::data
