// CPU reference operations of the GPT family (definitions in
// include/gossip/train/gpt_ops.hpp). Templates instantiated for float and
// double; attention runs its two products per (row, head) through BLAS with
// strides into the packed qkv buffer, and the causal softmax in plain loops.
//
// Speed without changing what is computed: the element-wise operations are
// loops GCC vectorises, built for baseline x86-64 and AVX2
// (GOSSIP_VECTOR_CLONES). That needs e^x without a libm call (vexp below) and
// reductions with their lanes written out (sum_lanes): with -ffp-contract=off
// and a fixed order of additions, every build and clone gives the same bits.
#include "gossip/train/gpt_ops.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "gossip/core/vector_clones.hpp"
#include "kernels.hpp"

namespace gossip::train::cpu {

using detail::gemm;

namespace {

constexpr double kLayerNormEps = 1e-5;

inline size_t idx(int64_t a) {
  return static_cast<size_t>(a);
}

// x limited to [lo, hi] (NaN stays NaN) through bit masks: GCC if-converts
// and vectorises this where it keeps a float ?: as a branch (trapping math).
inline float clamp_bits(float x, float lo, float hi) {
  const uint32_t above = 0u - static_cast<uint32_t>(x > hi);
  const uint32_t below = 0u - static_cast<uint32_t>(x < lo);
  uint32_t b = std::bit_cast<uint32_t>(x);
  b = (b & ~above) | (std::bit_cast<uint32_t>(hi) & above);
  b = (b & ~below) | (std::bit_cast<uint32_t>(lo) & below);
  return std::bit_cast<float>(b);
}

// e^x in float as Cephes' expf computes it (range reduction by ln 2, a
// degree-6 polynomial; within 2 ulp of libm), in plain arithmetic that GCC
// vectorises. The input is clamped to [-87, 88]: below, e^-87 (1.6e-38)
// stands in for 0; NaN stays NaN. The rounding n = round(x / ln 2) and 2^n
// come from the bits of x / ln 2 + 1.5 2^23, so no float-to-int conversion.
inline float vexp(float x) {
  x = clamp_bits(x, -87.0f, 88.0f);
  const float shifted = x * 1.44269504088896341f + 12582912.0f;  // 1.5 2^23
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // The low mantissa bits of `shifted` hold n + 0x400000.
  const uint32_t e = (std::bit_cast<uint32_t>(shifted) - 0x4B400000u + 127u) << 23;
  return p * std::bit_cast<float>(e);
}
// The double instantiation (the finite-difference tests) keeps libm.
inline double vexp(double x) {
  return std::exp(x);
}

template <typename T>
constexpr T kGeluK = static_cast<T>(0.7978845608028654);  // sqrt(2/pi)
template <typename T>
constexpr T kGeluC = static_cast<T>(0.044715);

// tanh(u) = 1 - 2 / (1 + e^(2u)), exact limits at +-infinity.
template <typename T>
inline T vtanh(T u) {
  return T(1) - T(2) / (T(1) + vexp(T(2) * u));
}

// The sum of f(0) .. f(n-1) over 8 lanes added in a fixed order: vectorised
// by GCC, and the same bits whatever the vector width.
template <typename T, typename F>
inline T sum_lanes(int n, F f) {
  constexpr int kLanes = 8;
  T acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += f(i + l);
  }
  T s = (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
  for (; i < n; ++i) s += f(i);
  return s;
}

// --- kernels: the element-wise loops, one function per operation ----------

template <typename T>
GOSSIP_VECTOR_CLONES void layernorm_forward_kernel(T* __restrict out, T* __restrict mean,
                                                   T* __restrict rstd, const T* __restrict inp,
                                                   const T* __restrict weight,
                                                   const T* __restrict bias, int N, int C) {
  for (int n = 0; n < N; ++n) {
    const T* x = inp + idx(int64_t(n) * C);
    const T m = sum_lanes<T>(C, [&](int c) { return x[c]; }) / T(C);
    const T v = sum_lanes<T>(C, [&](int c) { return (x[c] - m) * (x[c] - m); }) / T(C);
    const T s = T(1) / std::sqrt(v + T(kLayerNormEps));
    T* o = out + idx(int64_t(n) * C);
    for (int c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

template <typename T>
GOSSIP_VECTOR_CLONES void layernorm_backward_kernel(T* __restrict dinp, T* __restrict dweight,
                                                    T* __restrict dbias, const T* __restrict dout,
                                                    const T* __restrict inp,
                                                    const T* __restrict weight,
                                                    const T* __restrict mean,
                                                    const T* __restrict rstd, int N, int C) {
  for (int n = 0; n < N; ++n) {
    const T* d = dout + idx(int64_t(n) * C);
    const T* x = inp + idx(int64_t(n) * C);
    T* dx = dinp + idx(int64_t(n) * C);
    const T m = mean[n], s = rstd[n];
    // Two reductions, then the gradient: dx = s (dnorm - mean(dnorm) -
    // norm mean(dnorm norm)), with dnorm = w dout.
    const T dnorm_mean = sum_lanes<T>(C, [&](int c) { return weight[c] * d[c]; }) / T(C);
    const T dnorm_norm_mean =
        sum_lanes<T>(C, [&](int c) { return weight[c] * d[c] * ((x[c] - m) * s); }) / T(C);
    for (int c = 0; c < C; ++c) {
      const T norm = (x[c] - m) * s;
      const T dnorm = weight[c] * d[c];
      dbias[c] += d[c];
      dweight[c] += norm * d[c];
      dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
  }
}

// The causal softmax of one head's scores (Tn x Tn) in place; 0 above the
// diagonal.
template <typename T>
GOSSIP_VECTOR_CLONES void causal_softmax_kernel(T* __restrict a, int Tn) {
  for (int t = 0; t < Tn; ++t) {
    T* row = a + idx(int64_t(t) * Tn);
    T max = row[0];
    for (int t2 = 1; t2 <= t; ++t2) max = row[t2] > max ? row[t2] : max;
    for (int t2 = 0; t2 <= t; ++t2) row[t2] = vexp(row[t2] - max);
    const T inv = T(1) / sum_lanes<T>(t + 1, [&](int t2) { return row[t2]; });
    for (int t2 = 0; t2 <= t; ++t2) row[t2] *= inv;
    for (int t2 = t + 1; t2 < Tn; ++t2) row[t2] = T(0);
  }
}

// Softmax backward of one head, in place on ds (the gradient wrt the
// probabilities a): ds = a (ds - sum(a ds)) per row; 0 above the diagonal.
template <typename T>
GOSSIP_VECTOR_CLONES void causal_softmax_backward_kernel(T* __restrict ds, const T* __restrict a,
                                                         int Tn) {
  for (int t = 0; t < Tn; ++t) {
    T* d = ds + idx(int64_t(t) * Tn);
    const T* ar = a + idx(int64_t(t) * Tn);
    const T dot = sum_lanes<T>(t + 1, [&](int t2) { return ar[t2] * d[t2]; });
    for (int t2 = 0; t2 <= t; ++t2) d[t2] = ar[t2] * (d[t2] - dot);
    for (int t2 = t + 1; t2 < Tn; ++t2) d[t2] = T(0);
  }
}

template <typename T>
GOSSIP_VECTOR_CLONES void gelu_forward_kernel(T* __restrict out, const T* __restrict inp,
                                              int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T x = inp[i];
    out[i] = T(0.5) * x * (T(1) + vtanh(kGeluK<T> * (x + kGeluC<T> * x * x * x)));
  }
}

template <typename T>
GOSSIP_VECTOR_CLONES void gelu_backward_kernel(T* __restrict dinp, const T* __restrict inp,
                                               const T* __restrict dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T t = vtanh(kGeluK<T> * (x + kGeluC<T> * x * x * x));
    const T du = kGeluK<T> * (T(1) + T(3) * kGeluC<T> * x * x);
    dinp[i] += (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du) * dout[i];
  }
}

// out[n, :] = residual[n, :] + bias (N x OC).
template <typename T>
GOSSIP_VECTOR_CLONES void add_rows_kernel(T* __restrict out, const T* __restrict residual,
                                          const T* __restrict bias, int N, int OC) {
  for (int n = 0; n < N; ++n) {
    T* o = out + idx(int64_t(n) * OC);
    const T* r = residual + idx(int64_t(n) * OC);
    for (int j = 0; j < OC; ++j) o[j] = r[j] + bias[j];
  }
}

// GELU and its derivative from one exp (the backward pass then multiplies).
template <typename T>
GOSSIP_VECTOR_CLONES void gelu_forward_grad_kernel(T* __restrict out, T* __restrict dgelu,
                                                   const T* __restrict inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T t = vtanh(kGeluK<T> * (x + kGeluC<T> * x * x * x));
    const T du = kGeluK<T> * (T(1) + T(3) * kGeluC<T> * x * x);
    out[i] = T(0.5) * x * (T(1) + t);
    dgelu[i] = T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
  }
}

template <typename T>
GOSSIP_VECTOR_CLONES void scale_kernel(T* __restrict d, const T* __restrict by, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] *= by[i];
}

// One row of logits: returns log-sum-exp given the row's maximum, and
// writes dz = softmax / N (the caller subtracts 1/N at the target).
template <typename T>
GOSSIP_VECTOR_CLONES T crossentropy_row_kernel(T* __restrict dz, const T* __restrict z, T max,
                                               int V, T inv_n) {
  const T lse = max + std::log(sum_lanes<T>(V, [&](int j) { return vexp(z[j] - max); }));
  if (dz != nullptr) {
    for (int j = 0; j < V; ++j) dz[j] = vexp(z[j] - lse) * inv_n;
  }
  return lse;
}

}  // namespace

template <typename T>
void encoder_forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tn,
                     int C) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < Tn; ++t) {
      T* o = out + idx((int64_t(b) * Tn + t) * C);
      const T* e = wte + idx(int64_t(tokens[b * Tn + t]) * C);
      const T* p = wpe + idx(int64_t(t) * C);
      for (int c = 0; c < C; ++c) o[c] = e[c] + p[c];
    }
  }
}

template <typename T>
void encoder_backward(T* dwte, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tn,
                      int C) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < Tn; ++t) {
      const T* d = dout + idx((int64_t(b) * Tn + t) * C);
      T* de = dwte + idx(int64_t(tokens[b * Tn + t]) * C);
      T* dp = dwpe + idx(int64_t(t) * C);
      for (int c = 0; c < C; ++c) {
        de[c] += d[c];
        dp[c] += d[c];
      }
    }
  }
}

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias,
                       int N, int C) {
  layernorm_forward_kernel(out, mean, rstd, inp, weight, bias, N, C);
}

template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                        const T* mean, const T* rstd, int N, int C) {
  layernorm_backward_kernel(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int C, int OC) {
  if (bias == nullptr) {
    gemm(false, true, N, OC, C, T(1), inp, C, weight, C, T(0), out, OC);
    return;
  }
  // The bias is the product's starting value (beta 1): one pass over out
  // instead of BLAS clearing it and a second pass adding the bias.
  for (int n = 0; n < N; ++n) std::memcpy(out + idx(int64_t(n) * OC), bias, sizeof(T) * OC);
  gemm(false, true, N, OC, C, T(1), inp, C, weight, C, T(1), out, OC);
}

template <typename T>
void matmul_residual_forward(T* out, const T* inp, const T* weight, const T* bias,
                             const T* residual, int N, int C, int OC) {
  add_rows_kernel(out, residual, bias, N, OC);
  gemm(false, true, N, OC, C, T(1), inp, C, weight, C, T(1), out, OC);
}

template <typename T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     int N, int C, int OC) {
  gemm(false, false, N, C, OC, T(1), dout, OC, weight, C, T(1), dinp, C);
  gemm(true, false, OC, C, N, T(1), dout, OC, inp, C, T(1), dweight, C);
  if (dbias == nullptr) return;
  for (int n = 0; n < N; ++n) {
    const T* d = dout + idx(int64_t(n) * OC);
    for (int j = 0; j < OC; ++j) dbias[j] += d[j];
  }
}

// Attention skips the masked upper triangle block by block: rows [r0, r1)
// of the scores need keys [0, r1) only. Blocks of kAttentionRows rows do 5/8
// of the full products' work at block 128.
constexpr int kAttentionRows = 32;

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) {
  const int hs = C / NH;
  const int ld = 3 * C;
  const T scale = T(1) / std::sqrt(T(hs));
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const T* q = qkv + idx(int64_t(b) * Tn * ld + h * hs);
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* a = att + idx((int64_t(b) * NH + h) * Tn * Tn);
      T* o = out + idx(int64_t(b) * Tn * C + h * hs);
      for (int r0 = 0; r0 < Tn; r0 += kAttentionRows) {
        const int r1 = std::min(Tn, r0 + kAttentionRows);
        gemm(false, true, r1 - r0, r1, hs, scale, q + idx(int64_t(r0) * ld), ld, k, ld, T(0),
             a + idx(int64_t(r0) * Tn), Tn);
      }
      causal_softmax_kernel(a, Tn);
      for (int r0 = 0; r0 < Tn; r0 += kAttentionRows) {
        const int r1 = std::min(Tn, r0 + kAttentionRows);
        gemm(false, false, r1 - r0, hs, r1, T(1), a + idx(int64_t(r0) * Tn), Tn, v, ld, T(0),
             o + idx(int64_t(r0) * C), C);
      }
    }
  }
}

template <typename T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* qkv, const T* att, int B,
                        int Tn, int C, int NH) {
  const int hs = C / NH;
  const int ld = 3 * C;
  const T scale = T(1) / std::sqrt(T(hs));
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const size_t head = idx(int64_t(b) * Tn * ld + h * hs);
      const T* q = qkv + head;
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* dq = dqkv + head;
      T* dk = dq + C;
      T* dv = dq + 2 * C;
      const T* a = att + idx((int64_t(b) * NH + h) * Tn * Tn);
      const T* d = dout + idx(int64_t(b) * Tn * C + h * hs);
      // out = a v: da = dout v^T (into scratch), dv += a^T dout.
      for (int r0 = 0; r0 < Tn; r0 += kAttentionRows) {
        const int r1 = std::min(Tn, r0 + kAttentionRows), rows = r1 - r0;
        const T* ab = a + idx(int64_t(r0) * Tn);
        const T* db = d + idx(int64_t(r0) * C);
        gemm(false, true, rows, r1, hs, T(1), db, C, v, ld, T(0), scratch + idx(int64_t(r0) * Tn),
             Tn);
        gemm(true, false, r1, hs, rows, T(1), ab, Tn, db, C, T(1), dv, ld);
      }
      // Softmax backward per row, causal: ds = a (da - sum(a da)); 0 above
      // the diagonal, where a is 0.
      causal_softmax_backward_kernel(scratch, a, Tn);
      // scores = scale q k^T: dq += scale ds k, dk += scale ds^T q.
      for (int r0 = 0; r0 < Tn; r0 += kAttentionRows) {
        const int r1 = std::min(Tn, r0 + kAttentionRows), rows = r1 - r0;
        const T* ds = scratch + idx(int64_t(r0) * Tn);
        gemm(false, false, rows, hs, r1, scale, ds, Tn, k, ld, T(1), dq + idx(int64_t(r0) * ld),
             ld);
        gemm(true, false, r1, hs, rows, scale, ds, Tn, q + idx(int64_t(r0) * ld), ld, T(1), dk, ld);
      }
    }
  }
}

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n) {
  gelu_forward_kernel(out, inp, n);
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
  gelu_backward_kernel(dinp, inp, dout, n);
}

template <typename T>
void gelu_forward_grad(T* out, T* dgelu, const T* inp, int64_t n) {
  gelu_forward_grad_kernel(out, dgelu, inp, n);
}

template <typename T>
void gelu_backward_inplace(T* dinout, const T* dgelu, int64_t n) {
  scale_kernel(dinout, dgelu, n);
}

template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
TokenLossSums crossentropy_forward_backward(T* dlogits, const T* logits, const int32_t* targets,
                                            int N, int V) {
  TokenLossSums sums;
  for (int n = 0; n < N; ++n) {
    const int32_t target = targets[n];
    if (target < 0 || target >= V) {
      throw std::out_of_range("crossentropy: target " + std::to_string(target) + " at position " +
                              std::to_string(n) + " is outside [0, " + std::to_string(V) + ")");
    }
    const T* z = logits + idx(int64_t(n) * V);
    int arg = 0;
    for (int j = 1; j < V; ++j) {
      if (z[j] > z[arg]) arg = j;
    }
    const T inv_n = T(1) / N;
    T* dz = dlogits == nullptr ? nullptr : dlogits + idx(int64_t(n) * V);
    const T lse = crossentropy_row_kernel(dz, z, z[arg], V, inv_n);
    sums.loss_sum += static_cast<double>(lse - z[target]);
    sums.correct += arg == target ? 1 : 0;
    if (dz != nullptr) dz[target] -= inv_n;
  }
  return sums;
}

#define GOSSIP_GPT_OPS(T)                                                                        \
  template void encoder_forward<T>(T*, const int32_t*, const T*, const T*, int, int, int);       \
  template void encoder_backward<T>(T*, T*, const T*, const int32_t*, int, int, int);            \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int, int);        \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                      const T*, int, int);                                       \
  template void matmul_forward<T>(T*, const T*, const T*, const T*, int, int, int);              \
  template void matmul_residual_forward<T>(T*, const T*, const T*, const T*, const T*, int, int, \
                                           int);                                                 \
  template void gelu_forward_grad<T>(T*, T*, const T*, int64_t);                                 \
  template void gelu_backward_inplace<T>(T*, const T*, int64_t);                                 \
  template void matmul_backward<T>(T*, T*, T*, const T*, const T*, const T*, int, int, int);     \
  template void attention_forward<T>(T*, T*, const T*, int, int, int, int);                      \
  template void attention_backward<T>(T*, T*, const T*, const T*, const T*, int, int, int, int); \
  template void gelu_forward<T>(T*, const T*, int64_t);                                          \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t);                               \
  template void residual_forward<T>(T*, const T*, const T*, int64_t);                            \
  template TokenLossSums crossentropy_forward_backward<T>(T*, const T*, const int32_t*, int, int);

GOSSIP_GPT_OPS(float)
GOSSIP_GPT_OPS(double)
#undef GOSSIP_GPT_OPS

}  // namespace gossip::train::cpu
