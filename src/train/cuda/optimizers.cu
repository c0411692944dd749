// Optimizer updates of the CUDA backend, one fused kernel per optimizer (one
// read and write of params, grads and state per step), and the averaging
// delta x += scale * (other - own). The arithmetic is written in the same
// order as the host rules in src/train/optimizer.cpp so the two backends agree
// to float rounding.
#include <initializer_list>
#include <string>

#include "cuda_check.cuh"
#include "ops.cuh"

namespace gossip::train::cuda {

// ============================== kernels =====================================
namespace {

#define GOSSIP_GRID_STRIDE(i, n)                                                       \
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<size_t>(gridDim.x) * blockDim.x)

__global__ void sgd_plain_kernel(float* __restrict__ x, const float* __restrict__ g, size_t n,
                                 float lr, float wd) {
  GOSSIP_GRID_STRIDE(i, n) {
    x[i] -= lr * (g[i] + wd * x[i]);
  }
}

template <bool Nesterov>
__global__ void sgd_momentum_kernel(float* __restrict__ x, const float* __restrict__ g,
                                    float* __restrict__ v, size_t n, float lr, float mu, float wd) {
  GOSSIP_GRID_STRIDE(i, n) {
    const float gi = g[i] + wd * x[i];
    const float vi = mu * v[i] + gi;
    v[i] = vi;
    if constexpr (Nesterov) {
      x[i] -= lr * (gi + mu * vi);
    } else {
      x[i] -= lr * vi;
    }
  }
}

// Decoupled == false: adam (weight decay folded into the gradient);
// Decoupled == true: adamw (x *= 1 - lr*wd on the pre-update x).
template <bool Decoupled>
__global__ void adam_kernel(float* __restrict__ x, const float* __restrict__ g,
                            float* __restrict__ m, float* __restrict__ v, size_t n, float lr,
                            float b1, float b2, float eps, float wd, float inv_bc1, float inv_bc2) {
  const float keep = Decoupled ? 1.0f - lr * wd : 1.0f;
  const float coupled_wd = Decoupled ? 0.0f : wd;
  GOSSIP_GRID_STRIDE(i, n) {
    const float gi = g[i] + coupled_wd * x[i];
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    x[i] = keep * x[i] - lr * (mi * inv_bc1) / (sqrtf(vi * inv_bc2) + eps);
  }
}

__global__ void apply_delta_axpy_kernel(float* __restrict__ x, const float* __restrict__ other,
                                        const float* __restrict__ own, size_t n, float scale) {
  GOSSIP_GRID_STRIDE(i, n) {
    x[i] += scale * (other[i] - own[i]);
  }
}

#undef GOSSIP_GRID_STRIDE

void check_buffers(const char* op, size_t n, std::initializer_list<const void*> bufs) {
  for (const void* b : bufs) {
    if (b == nullptr) throw_shape_error(op, "null buffer for " + std::to_string(n) + " values");
  }
}

}  // namespace

// ============================== launchers ===================================

void sgd_update(cudaStream_t s, float* x, const float* g, float* v, size_t n, float lr,
                float momentum, float weight_decay, bool nesterov) {
  if (n == 0) return;
  check_buffers("sgd_update", n, {x, g});
  const unsigned grid = grid_for(n);
  if (momentum == 0.0f) {
    sgd_plain_kernel<<<grid, kThreads, 0, s>>>(x, g, n, lr, weight_decay);
  } else {
    check_buffers("sgd_update", n, {v});
    if (nesterov) {
      sgd_momentum_kernel<true><<<grid, kThreads, 0, s>>>(x, g, v, n, lr, momentum, weight_decay);
    } else {
      sgd_momentum_kernel<false><<<grid, kThreads, 0, s>>>(x, g, v, n, lr, momentum, weight_decay);
    }
  }
  CUDA_CHECK_LAUNCH();
}

void adam_update(cudaStream_t s, float* x, const float* g, float* m, float* v, size_t n, float lr,
                 float beta1, float beta2, float eps, float weight_decay, float inv_bc1,
                 float inv_bc2, bool decoupled) {
  if (n == 0) return;
  check_buffers(decoupled ? "adamw_update" : "adam_update", n, {x, g, m, v});
  const unsigned grid = grid_for(n);
  if (decoupled) {
    adam_kernel<true><<<grid, kThreads, 0, s>>>(x, g, m, v, n, lr, beta1, beta2, eps, weight_decay,
                                                inv_bc1, inv_bc2);
  } else {
    adam_kernel<false><<<grid, kThreads, 0, s>>>(x, g, m, v, n, lr, beta1, beta2, eps, weight_decay,
                                                 inv_bc1, inv_bc2);
  }
  CUDA_CHECK_LAUNCH();
}

void check_kernel_image() {
  cudaFuncAttributes attr{};
  CUDA_CHECK(cudaFuncGetAttributes(&attr, apply_delta_axpy_kernel));
}

void apply_delta_axpy(cudaStream_t s, float* x, const float* other, const float* own, size_t n,
                      float scale) {
  if (n == 0) return;
  check_buffers("apply_delta_axpy", n, {x, other, own});
  apply_delta_axpy_kernel<<<grid_for(n), kThreads, 0, s>>>(x, other, own, n, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace gossip::train::cuda
