// Batch: a borrowed, row-major view of one mini-batch, as the data module
// produces it and the training backends consume it.
#pragma once

#include <cstdint>

namespace gossip::data {

// Borrowed view; the producer keeps the memory alive until the consumer returns.
// Classification batches set `labels` (class index per row); regression
// batches set `targets` (rows x target_cols). Exactly one of the two is set.
struct Batch {
  int rows = 0;                      // samples in this batch
  int cols = 0;                      // features per sample
  const float* x = nullptr;          // rows x cols, row-major, host memory
  const int32_t* labels = nullptr;   // rows, values in [0, classes)
  const float* targets = nullptr;    // rows x target_cols, row-major
  int target_cols = 0;
};

}  // namespace gossip::data
