// Losses of the CUDA backend: softmax cross-entropy and mean squared error,
// each one fused forward+backward kernel (one warp per row), plus the
// fixed-order reduction of the per-row losses that makes the reported loss
// deterministic. Mirrors src/train/cpu/ops.cpp (same definitions, same
// argmax tie rule: the first maximum wins).
#include <cmath>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"
#include "ops.cuh"

namespace gossip::train::cuda {

// ============================== kernels =====================================
namespace {

constexpr int kRowsPerBlock = kThreads / kWarp;
constexpr int kNoIndex = 0x7fffffff;

// Keeps the larger value; on a tie the smaller index (the first maximum).
__device__ __forceinline__ void warp_argmax(float& best, int& arg) {
  for (int o = kWarp / 2; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(kFullMask, best, o);
    const int oa = __shfl_xor_sync(kFullMask, arg, o);
    if (oa != kNoIndex && (arg == kNoIndex || ob > best || (ob == best && oa < arg))) {
      best = ob;
      arg = oa;
    }
  }
}

__global__ void softmax_xent_kernel(float* __restrict__ dlogits, float* __restrict__ row_loss,
                                    int* __restrict__ row_correct, const float* __restrict__ logits,
                                    const int32_t* __restrict__ labels, int rows, int classes) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int row =
      static_cast<int>(blockIdx.x) * kRowsPerBlock + static_cast<int>(threadIdx.x) / kWarp;
  if (row >= rows) return;  // the whole warp leaves together
  const float* z = logits + static_cast<size_t>(row) * classes;
  float best = 0.0f;
  int arg = kNoIndex;
  for (int c = lane; c < classes; c += kWarp) {
    const float v = z[c];
    if (arg == kNoIndex || v > best) {
      best = v;
      arg = c;
    }
  }
  warp_argmax(best, arg);
  const float zmax = best;
  float sum = 0.0f;
  for (int c = lane; c < classes; c += kWarp) sum += expf(z[c] - zmax);
  sum = warp_sum(sum);
  const int label = labels[row];
  if (dlogits != nullptr) {
    const float inv_rows = 1.0f / static_cast<float>(rows);
    const float scale = inv_rows / sum;
    float* d = dlogits + static_cast<size_t>(row) * classes;
    for (int c = lane; c < classes; c += kWarp) {
      float g = expf(z[c] - zmax) * scale;
      if (c == label) g -= inv_rows;
      d[c] = g;
    }
  }
  if (lane == 0) {
    row_loss[row] = zmax + logf(sum) - z[label];
    row_correct[row] = arg == label ? 1 : 0;
  }
}

__global__ void mse_kernel(float* __restrict__ dpred, float* __restrict__ row_loss,
                           int* __restrict__ row_correct, const float* __restrict__ pred,
                           const float* __restrict__ targets, int rows, int cols) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int row =
      static_cast<int>(blockIdx.x) * kRowsPerBlock + static_cast<int>(threadIdx.x) / kWarp;
  if (row >= rows) return;
  const size_t base = static_cast<size_t>(row) * cols;
  const float dscale = 2.0f / (static_cast<float>(rows) * static_cast<float>(cols));
  float sum = 0.0f;
  for (int c = lane; c < cols; c += kWarp) {
    const float e = pred[base + c] - targets[base + c];
    sum += e * e;
    if (dpred != nullptr) dpred[base + c] = dscale * e;
  }
  sum = warp_sum(sum);
  if (lane == 0) {
    row_loss[row] = sum * (1.0f / static_cast<float>(cols));
    row_correct[row] = 0;
  }
}

// One block; thread i sums rows i, i + kThreads, ... then a tree in shared
// memory: the order depends only on `rows`, so results repeat bit for bit.
__global__ void reduce_loss_stats_kernel(LossStats* __restrict__ out,
                                         const float* __restrict__ row_loss,
                                         const int* __restrict__ row_correct, int rows) {
  __shared__ double loss[kThreads];
  __shared__ long long correct[kThreads];
  double l = 0.0;
  long long c = 0;
  for (int r = static_cast<int>(threadIdx.x); r < rows; r += kThreads) {
    l += static_cast<double>(row_loss[r]);
    c += row_correct[r];
  }
  loss[threadIdx.x] = l;
  correct[threadIdx.x] = c;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (static_cast<int>(threadIdx.x) < stride) {
      loss[threadIdx.x] += loss[threadIdx.x + stride];
      correct[threadIdx.x] += correct[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out->loss_sum = loss[0];
    out->correct = correct[0];
  }
}

void check_rows(const char* op, int rows, int cols, int min_cols) {
  if (rows < 1 || cols < min_cols) {
    throw_shape_error(op, "needs rows >= 1 and columns >= " + std::to_string(min_cols) + ", got " +
                              std::to_string(rows) + " x " + std::to_string(cols));
  }
}

unsigned row_grid(int rows) {
  return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace

// ============================== launchers ===================================

void softmax_xent_forward_backward(cudaStream_t s, float* dlogits, float* row_loss,
                                   int* row_correct, const float* logits, const int32_t* labels,
                                   int rows, int classes) {
  check_rows("softmax_xent_forward_backward", rows, classes, 2);
  if (row_loss == nullptr || row_correct == nullptr || logits == nullptr || labels == nullptr) {
    throw_shape_error("softmax_xent_forward_backward", "null buffer");
  }
  softmax_xent_kernel<<<row_grid(rows), kThreads, 0, s>>>(dlogits, row_loss, row_correct, logits,
                                                          labels, rows, classes);
  CUDA_CHECK_LAUNCH();
}

void mse_forward_backward(cudaStream_t s, float* dpred, float* row_loss, int* row_correct,
                          const float* pred, const float* targets, int rows, int cols) {
  check_rows("mse_forward_backward", rows, cols, 1);
  if (row_loss == nullptr || row_correct == nullptr || pred == nullptr || targets == nullptr) {
    throw_shape_error("mse_forward_backward", "null buffer");
  }
  mse_kernel<<<row_grid(rows), kThreads, 0, s>>>(dpred, row_loss, row_correct, pred, targets, rows,
                                                 cols);
  CUDA_CHECK_LAUNCH();
}

void reduce_loss_stats(cudaStream_t s, LossStats* out, const float* row_loss,
                       const int* row_correct, int rows) {
  check_rows("reduce_loss_stats", rows, 1, 1);
  if (out == nullptr || row_loss == nullptr || row_correct == nullptr) {
    throw_shape_error("reduce_loss_stats", "null buffer");
  }
  reduce_loss_stats_kernel<<<1, kThreads, 0, s>>>(out, row_loss, row_correct, rows);
  CUDA_CHECK_LAUNCH();
}

}  // namespace gossip::train::cuda
