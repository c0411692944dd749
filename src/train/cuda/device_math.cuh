// Device-side scalar helpers shared by the CUDA backend's kernels (the MLP's
// layers.cu and the GPT's gpt_ops.cu): the tanh-approximated GELU and its
// derivative, written as in src/train/cpu/kernels.hpp, and warp reductions.
#pragma once

#include <cuda_runtime.h>

namespace gossip::train::cuda {

inline constexpr int kWarp = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;

inline constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2/pi)
inline constexpr float kGeluC = 0.044715f;

// 0.5 x (1 + tanh(k (x + c x^3))): PyTorch's gelu(approximate="tanh").
__device__ __forceinline__ float gelu(float x) {
  return 0.5f * x * (1.0f + tanhf(kGeluK * (x + kGeluC * x * x * x)));
}

__device__ __forceinline__ float gelu_grad(float x) {
  const float u = kGeluK * (x + kGeluC * x * x * x);
  const float t = tanhf(u);
  const float du = kGeluK * (1.0f + 3.0f * kGeluC * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

// Butterfly reductions: every lane ends with the same value, and the order of
// the additions depends only on the lane layout, so results repeat bit for bit.
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

}  // namespace gossip::train::cuda
