// Launchers of the CUDA backend's operations, named as in the CPU backend
// (include/gossip/train/cpu_ops.hpp) so the two read side by side.
//
// All buffers are device pointers in row-major layout, all work is enqueued on
// the given stream (cuBLAS calls on the handle, which is bound to the
// backend's stream) and nothing here synchronises. Each launcher checks its
// shapes, launches and checks cudaGetLastError(); a violation throws CudaError.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace gossip::train::cuda {

// Activation applied by bias_act_forward / act_backward; kIdentity is the
// output layer (bias only).
enum class Act { kIdentity, kRelu, kTanh, kGelu };

// Loss sums of one batch, reduced on the device in a fixed order.
struct LossStats {
  double loss_sum;
  long long correct;
};

// Threads per block of the element-wise kernels, and a grid that covers n
// elements with grid-stride loops (capped so huge buffers loop instead).
inline constexpr int kThreads = 256;
inline unsigned grid_for(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  constexpr size_t kMaxBlocks = size_t{1} << 16;
  return static_cast<unsigned>(blocks == 0 ? 1 : (blocks < kMaxBlocks ? blocks : kMaxBlocks));
}

// ---- layers.cu --------------------------------------------------------------

// out (rows x out_dim) = inp (rows x in_dim) * weight^T, weight out_dim x in_dim.
void linear_forward(cublasHandle_t h, float* out, const float* inp, const float* weight, int rows,
                    int in_dim, int out_dim);

// pre += bias (per column); post = act(pre) unless act is kIdentity (post unused).
void bias_act_forward(cudaStream_t s, float* pre, float* post, const float* bias, int rows,
                      int cols, Act act);

// d *= act'(pre) element-wise over n values (relu and tanh use post).
void act_backward(cudaStream_t s, float* d, const float* pre, const float* post, size_t n, Act act);

// dweight = dout^T inp; dbias = column sums of dout (via `ones`, >= rows
// ones); dinp = dout weight unless dinp is null (first layer).
void linear_backward(cublasHandle_t h, float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, const float* ones, int rows, int in_dim,
                     int out_dim);

// ---- losses.cu --------------------------------------------------------------

// Per row: row_loss = logsumexp(z) - z[label], row_correct = (argmax == label,
// first maximum wins); dlogits = (softmax - onehot) / rows unless null.
// Labels must lie in [0, classes) (the backend checks them on the host).
void softmax_xent_forward_backward(cudaStream_t s, float* dlogits, float* row_loss,
                                   int* row_correct, const float* logits, const int32_t* labels,
                                   int rows, int classes);

// Per row: row_loss = sum_c (y - t)^2 / cols; dpred = 2 (y - t) / (rows cols)
// unless null. row_correct is set to 0.
void mse_forward_backward(cudaStream_t s, float* dpred, float* row_loss, int* row_correct,
                          const float* pred, const float* targets, int rows, int cols);

// out = {sum of row_loss, sum of row_correct}, summed in a fixed order
// (deterministic run to run).
void reduce_loss_stats(cudaStream_t s, LossStats* out, const float* row_loss,
                       const int* row_correct, int rows);

// ---- optimizers.cu ------------------------------------------------------------
// One fused kernel per optimizer; the update rules are those of
// include/gossip/train/optimizer.hpp and src/train/optimizer.cpp.

// grad_scale (device, one float, may be null: 1) multiplies every g as the
// kernel reads it: the clipping factor of grad_clip_factor().
// sgd: v is null when momentum == 0 (plain SGD).
void sgd_update(cudaStream_t s, float* x, const float* g, const float* grad_scale, float* v,
                size_t n, float lr, float momentum, float weight_decay, bool nesterov);

// adam (decoupled == false) and adamw (decoupled == true); m and v are the two
// halves of the state buffer; inv_bc1/2 = 1 / (1 - beta^t).
void adam_update(cudaStream_t s, float* x, const float* g, const float* grad_scale, float* m,
                 float* v, size_t n, float lr, float beta1, float beta2, float eps,
                 float weight_decay, float inv_bc1, float inv_bc2, bool decoupled);

// Partial sums grad_clip_factor() needs: a fixed partition of the buffer, so
// the sum is taken in the same order on every run and every device.
inline constexpr int kClipPartials = 1024;

// *factor (device) = min(1, max_norm / (||g||_2 + 1e-6)), PyTorch's
// clip_grad_norm_ factor; the squares are summed in double, each of the
// kClipPartials blocks over a fixed strided slice in a fixed tree, then the
// partials in one block: deterministic, no atomics. `partials` holds
// kClipPartials doubles. Requires max_norm > 0.
void grad_clip_factor(cudaStream_t s, float* factor, double* partials, const float* g, size_t n,
                      double max_norm);

// Throws CudaError when this binary holds no kernel the current device can
// run (a GPU older than the PTX/SASS built in meson.build).
void check_kernel_image();

// x += scale * (other - own), element-wise (the averaging delta).
void apply_delta_axpy(cudaStream_t s, float* x, const float* other, const float* own, size_t n,
                      float scale);

}  // namespace gossip::train::cuda
