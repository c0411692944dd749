// Optimizer updates of the CUDA backend, one fused kernel per optimizer (one
// read and write of params, grads and state per step), the deterministic
// global-norm clipping factor, and the averaging delta
// x += scale * (other - own). The arithmetic is written in the same
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

// The clipping factor, or 1 without clipping.
__device__ inline float scale_of(const float* grad_scale) {
  return grad_scale != nullptr ? *grad_scale : 1.0f;
}

__global__ void sgd_plain_kernel(float* __restrict__ x, const float* __restrict__ g,
                                 const float* __restrict__ grad_scale, size_t n, float lr,
                                 float wd) {
  const float gs = scale_of(grad_scale);
  GOSSIP_GRID_STRIDE(i, n) {
    x[i] -= lr * (g[i] * gs + wd * x[i]);
  }
}

template <bool Nesterov>
__global__ void sgd_momentum_kernel(float* __restrict__ x, const float* __restrict__ g,
                                    const float* __restrict__ grad_scale, float* __restrict__ v,
                                    size_t n, float lr, float mu, float wd) {
  const float gs = scale_of(grad_scale);
  GOSSIP_GRID_STRIDE(i, n) {
    const float gi = g[i] * gs + wd * x[i];
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
                            const float* __restrict__ grad_scale, float* __restrict__ m,
                            float* __restrict__ v, size_t n, float lr, float b1, float b2,
                            float eps, float wd, float inv_bc1, float inv_bc2) {
  const float keep = Decoupled ? 1.0f - lr * wd : 1.0f;
  const float coupled_wd = Decoupled ? 0.0f : wd;
  const float gs = scale_of(grad_scale);
  GOSSIP_GRID_STRIDE(i, n) {
    const float gi = g[i] * gs + coupled_wd * x[i];
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

// Block b sums the squares of elements b kThreads + t + k (kClipPartials
// kThreads) in double, thread by thread in index order, then in a fixed tree.
__global__ void sumsq_partials_kernel(double* __restrict__ partials, const float* __restrict__ g,
                                      size_t n) {
  __shared__ double sum[kThreads];
  double acc = 0.0;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const double gi = g[i];
    acc += gi * gi;
  }
  sum[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) sum[threadIdx.x] += sum[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = sum[0];
}

// One block: the partials in a fixed order, then the clipping factor.
__global__ void clip_factor_kernel(float* __restrict__ factor, const double* __restrict__ partials,
                                   double max_norm) {
  __shared__ double sum[kThreads];
  double acc = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < kClipPartials; i += kThreads) acc += partials[i];
  sum[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) sum[threadIdx.x] += sum[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double scale = max_norm / (sqrt(sum[0]) + 1e-6);
    *factor = scale >= 1.0 ? 1.0f : static_cast<float>(scale);
  }
}

void check_buffers(const char* op, size_t n, std::initializer_list<const void*> bufs) {
  for (const void* b : bufs) {
    if (b == nullptr) throw_shape_error(op, "null buffer for " + std::to_string(n) + " values");
  }
}

}  // namespace

// ============================== launchers ===================================

void sgd_update(cudaStream_t s, float* x, const float* g, const float* grad_scale, float* v,
                size_t n, float lr, float momentum, float weight_decay, bool nesterov) {
  if (n == 0) return;
  check_buffers("sgd_update", n, {x, g});
  const unsigned grid = grid_for(n);
  const float* gs = grad_scale;
  const float wd = weight_decay;
  if (momentum == 0.0f) {
    sgd_plain_kernel<<<grid, kThreads, 0, s>>>(x, g, gs, n, lr, wd);
  } else {
    check_buffers("sgd_update", n, {v});
    if (nesterov) {
      sgd_momentum_kernel<true><<<grid, kThreads, 0, s>>>(x, g, gs, v, n, lr, momentum, wd);
    } else {
      sgd_momentum_kernel<false><<<grid, kThreads, 0, s>>>(x, g, gs, v, n, lr, momentum, wd);
    }
  }
  CUDA_CHECK_LAUNCH();
}

void adam_update(cudaStream_t s, float* x, const float* g, const float* grad_scale, float* m,
                 float* v, size_t n, float lr, float beta1, float beta2, float eps,
                 float weight_decay, float inv_bc1, float inv_bc2, bool decoupled) {
  if (n == 0) return;
  check_buffers(decoupled ? "adamw_update" : "adam_update", n, {x, g, m, v});
  const unsigned grid = grid_for(n);
  const float* gs = grad_scale;
  if (decoupled) {
    adam_kernel<true><<<grid, kThreads, 0, s>>>(x, g, gs, m, v, n, lr, beta1, beta2, eps,
                                                weight_decay, inv_bc1, inv_bc2);
  } else {
    adam_kernel<false><<<grid, kThreads, 0, s>>>(x, g, gs, m, v, n, lr, beta1, beta2, eps,
                                                 weight_decay, inv_bc1, inv_bc2);
  }
  CUDA_CHECK_LAUNCH();
}

void grad_clip_factor(cudaStream_t s, float* factor, double* partials, const float* g, size_t n,
                      double max_norm) {
  check_buffers("grad_clip_factor", n, {factor, partials, g});
  if (!(max_norm > 0.0)) throw_shape_error("grad_clip_factor", "max_norm must be > 0");
  sumsq_partials_kernel<<<kClipPartials, kThreads, 0, s>>>(partials, g, n);
  CUDA_CHECK_LAUNCH();
  clip_factor_kernel<<<1, kThreads, 0, s>>>(factor, partials, max_norm);
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
