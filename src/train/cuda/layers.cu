// Linear layers and activations of the CUDA backend: the matrix products go to
// cuBLAS (column-major, so every row-major product below is written as its
// transpose), bias + activation forward and the activation backward are our
// own element-wise kernels. Mirrors src/train/cpu/ops.cpp operation by operation.
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"
#include "ops.cuh"

namespace gossip::train::cuda {

// ============================== kernels =====================================
namespace {

template <Act A>
__global__ void bias_act_forward_kernel(float* __restrict__ pre, float* __restrict__ post,
                                        const float* __restrict__ bias, size_t n, int cols) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float v = pre[i] + bias[i % static_cast<size_t>(cols)];
    pre[i] = v;
    if constexpr (A == Act::kRelu) post[i] = v > 0.0f ? v : 0.0f;
    if constexpr (A == Act::kTanh) post[i] = tanhf(v);
    if constexpr (A == Act::kGelu) post[i] = gelu(v);
  }
}

template <Act A>
__global__ void act_backward_kernel(float* __restrict__ d, const float* __restrict__ pre,
                                    const float* __restrict__ post, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    if constexpr (A == Act::kRelu) d[i] = post[i] > 0.0f ? d[i] : 0.0f;
    if constexpr (A == Act::kTanh) d[i] *= 1.0f - post[i] * post[i];
    if constexpr (A == Act::kGelu) d[i] *= gelu_grad(pre[i]);
  }
}

void check_dims(const char* op, int rows, int a, int b) {
  if (rows < 1 || a < 1 || b < 1) {
    throw_shape_error(op, "dimensions must be >= 1, got " + std::to_string(rows) + ", " +
                              std::to_string(a) + ", " + std::to_string(b));
  }
}

}  // namespace

// ============================== launchers ===================================

void linear_forward(cublasHandle_t h, float* out, const float* inp, const float* weight, int rows,
                    int in_dim, int out_dim) {
  check_dims("linear_forward", rows, in_dim, out_dim);
  if (out == nullptr || inp == nullptr || weight == nullptr) {
    throw_shape_error("linear_forward", "null buffer");
  }
  const float one = 1.0f;
  const float zero = 0.0f;
  // Column-major: out^T (out_dim x rows) = W (op T of the in_dim x out_dim
  // column-major view of W's buffer) * inp^T (in_dim x rows).
  CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, out_dim, rows, in_dim, &one, weight, in_dim,
                           inp, in_dim, &zero, out, out_dim));
}

void bias_act_forward(cudaStream_t s, float* pre, float* post, const float* bias, int rows,
                      int cols, Act act) {
  check_dims("bias_act_forward", rows, cols, 1);
  if (pre == nullptr || bias == nullptr || (act != Act::kIdentity && post == nullptr)) {
    throw_shape_error("bias_act_forward", "null buffer");
  }
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const unsigned grid = grid_for(n);
  switch (act) {
    case Act::kIdentity:
      bias_act_forward_kernel<Act::kIdentity><<<grid, kThreads, 0, s>>>(pre, post, bias, n, cols);
      break;
    case Act::kRelu:
      bias_act_forward_kernel<Act::kRelu><<<grid, kThreads, 0, s>>>(pre, post, bias, n, cols);
      break;
    case Act::kTanh:
      bias_act_forward_kernel<Act::kTanh><<<grid, kThreads, 0, s>>>(pre, post, bias, n, cols);
      break;
    case Act::kGelu:
      bias_act_forward_kernel<Act::kGelu><<<grid, kThreads, 0, s>>>(pre, post, bias, n, cols);
      break;
  }
  CUDA_CHECK_LAUNCH();
}

void act_backward(cudaStream_t s, float* d, const float* pre, const float* post, size_t n,
                  Act act) {
  if (n == 0 || act == Act::kIdentity) return;
  if (d == nullptr || pre == nullptr || post == nullptr) {
    throw_shape_error("act_backward", "null buffer");
  }
  const unsigned grid = grid_for(n);
  switch (act) {
    case Act::kIdentity:
      break;
    case Act::kRelu:
      act_backward_kernel<Act::kRelu><<<grid, kThreads, 0, s>>>(d, pre, post, n);
      break;
    case Act::kTanh:
      act_backward_kernel<Act::kTanh><<<grid, kThreads, 0, s>>>(d, pre, post, n);
      break;
    case Act::kGelu:
      act_backward_kernel<Act::kGelu><<<grid, kThreads, 0, s>>>(d, pre, post, n);
      break;
  }
  CUDA_CHECK_LAUNCH();
}

void linear_backward(cublasHandle_t h, float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, const float* ones, int rows, int in_dim,
                     int out_dim) {
  check_dims("linear_backward", rows, in_dim, out_dim);
  if (dweight == nullptr || dbias == nullptr || dout == nullptr || inp == nullptr ||
      weight == nullptr || ones == nullptr) {
    throw_shape_error("linear_backward", "null buffer");
  }
  const float one = 1.0f;
  const float zero = 0.0f;
  if (dinp != nullptr) {
    // dinp^T (in x rows) = W^T (in x out, W's buffer as is) * dout^T (out x rows).
    CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, in_dim, rows, out_dim, &one, weight,
                             in_dim, dout, out_dim, &zero, dinp, in_dim));
  }
  // dW^T (in x out) = inp^T (in x rows) * dout (rows x out, op T of dout's buffer).
  CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, in_dim, out_dim, rows, &one, inp, in_dim,
                           dout, out_dim, &zero, dweight, in_dim));
  // dbias (out) = dout^T (out x rows, dout's buffer as is) * ones (rows).
  CUBLAS_CHECK(
      cublasSgemv(h, CUBLAS_OP_N, out_dim, rows, &one, dout, out_dim, ones, 1, &zero, dbias, 1));
}

}  // namespace gossip::train::cuda
