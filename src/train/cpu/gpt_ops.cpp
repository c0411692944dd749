// CPU reference operations of the GPT family (definitions in
// include/gossip/train/gpt_ops.hpp). Templates instantiated for float and
// double; attention runs its two products per (row, head) through BLAS with
// strides into the packed qkv buffer, and the causal softmax in plain loops.
#include "gossip/train/gpt_ops.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels.hpp"

namespace gossip::train::cpu {

using detail::gelu;
using detail::gelu_grad;
using detail::gemm;

namespace {

constexpr double kLayerNormEps = 1e-5;

inline size_t idx(int64_t a) {
  return static_cast<size_t>(a);
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
  for (int n = 0; n < N; ++n) {
    const T* x = inp + idx(int64_t(n) * C);
    T m = 0;
    for (int c = 0; c < C; ++c) m += x[c];
    m /= C;
    T v = 0;
    for (int c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
    v /= C;
    const T s = T(1) / std::sqrt(v + T(kLayerNormEps));
    T* o = out + idx(int64_t(n) * C);
    for (int c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                        const T* mean, const T* rstd, int N, int C) {
  for (int n = 0; n < N; ++n) {
    const T* d = dout + idx(int64_t(n) * C);
    const T* x = inp + idx(int64_t(n) * C);
    T* dx = dinp + idx(int64_t(n) * C);
    const T m = mean[n], s = rstd[n];
    // Two reductions, then the gradient: dx = s (dnorm - mean(dnorm) -
    // norm mean(dnorm norm)), with dnorm = w dout.
    T dnorm_mean = 0, dnorm_norm_mean = 0;
    for (int c = 0; c < C; ++c) {
      const T norm = (x[c] - m) * s;
      const T dnorm = weight[c] * d[c];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= C;
    dnorm_norm_mean /= C;
    for (int c = 0; c < C; ++c) {
      const T norm = (x[c] - m) * s;
      const T dnorm = weight[c] * d[c];
      dbias[c] += d[c];
      dweight[c] += norm * d[c];
      dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
  }
}

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int C, int OC) {
  gemm(false, true, N, OC, C, T(1), inp, C, weight, C, T(0), out, OC);
  if (bias == nullptr) return;
  for (int n = 0; n < N; ++n) {
    T* o = out + idx(int64_t(n) * OC);
    for (int j = 0; j < OC; ++j) o[j] += bias[j];
  }
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
      // Scores of every pair (the upper triangle is computed and discarded:
      // one GEMM beats T small ones).
      gemm(false, true, Tn, Tn, hs, scale, q, ld, k, ld, T(0), a, Tn);
      for (int t = 0; t < Tn; ++t) {
        T* row = a + idx(int64_t(t) * Tn);
        T max = row[0];
        for (int t2 = 1; t2 <= t; ++t2) max = std::max(max, row[t2]);
        T sum = 0;
        for (int t2 = 0; t2 <= t; ++t2) {
          row[t2] = std::exp(row[t2] - max);
          sum += row[t2];
        }
        const T inv = T(1) / sum;
        for (int t2 = 0; t2 <= t; ++t2) row[t2] *= inv;
        for (int t2 = t + 1; t2 < Tn; ++t2) row[t2] = T(0);
      }
      gemm(false, false, Tn, hs, Tn, T(1), a, Tn, v, ld, T(0),
           out + idx(int64_t(b) * Tn * C + h * hs), C);
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
      gemm(false, true, Tn, Tn, hs, T(1), d, C, v, ld, T(0), scratch, Tn);
      gemm(true, false, Tn, hs, Tn, T(1), a, Tn, d, C, T(1), dv, ld);
      // Softmax backward per row, causal: ds = a (da - sum(a da)); 0 above
      // the diagonal, where a is 0.
      for (int t = 0; t < Tn; ++t) {
        T* ds = scratch + idx(int64_t(t) * Tn);
        const T* ar = a + idx(int64_t(t) * Tn);
        T dot = 0;
        for (int t2 = 0; t2 <= t; ++t2) dot += ar[t2] * ds[t2];
        for (int t2 = 0; t2 <= t; ++t2) ds[t2] = ar[t2] * (ds[t2] - dot);
        for (int t2 = t + 1; t2 < Tn; ++t2) ds[t2] = T(0);
      }
      // scores = scale q k^T: dq += scale ds k, dk += scale ds^T q.
      gemm(false, false, Tn, hs, Tn, scale, scratch, Tn, k, ld, T(1), dq, ld);
      gemm(true, false, Tn, hs, Tn, scale, scratch, Tn, q, ld, T(1), dk, ld);
    }
  }
}

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gelu(inp[i]);
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dinp[i] += gelu_grad(inp[i]) * dout[i];
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
    T sum = 0;
    for (int j = 0; j < V; ++j) sum += std::exp(z[j] - z[arg]);
    const T lse = z[arg] + std::log(sum);
    sums.loss_sum += static_cast<double>(lse - z[target]);
    sums.correct += arg == target ? 1 : 0;
    if (dlogits == nullptr) continue;
    T* dz = dlogits + idx(int64_t(n) * V);
    const T inv_n = T(1) / N;
    for (int j = 0; j < V; ++j) dz[j] = std::exp(z[j] - lse) * inv_n;
    dz[target] -= inv_n;
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
