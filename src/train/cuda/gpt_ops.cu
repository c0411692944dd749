// The GPT family's operations on the GPU (declarations and contracts in
// gpt_ops.cuh): element-wise and per-row kernels of our own, products through
// cuBLAS with the arguments of gpt_plan.hpp. Mirrors src/train/cpu/gpt_ops.cpp
// operation by operation; the row kernels give one warp to each row, so they
// need C (or T) to be nothing in particular.
#include <cmath>
#include <initializer_list>
#include <string>

#include "cuda_check.cuh"
#include "device_math.cuh"
#include "gpt_ops.cuh"

namespace gossip::train::cuda {

// ============================== kernels =====================================
namespace {

constexpr float kLayerNormEps = 1e-5f;
constexpr int kRowsPerBlock = kThreads / kWarp;  // row kernels: one warp per row
// Per-channel sums (bias and LayerNorm parameter gradients): a block covers
// kSumCols channels with kSumLanes threads each; lane y sums rows y,
// y + kSumLanes, ... in order, then lane 0 adds the lanes' partials in order.
constexpr int kSumCols = 32;
constexpr int kSumLanes = 16;

#define GRID_STRIDE_LOOP(i, n)                                                         \
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<size_t>(gridDim.x) * blockDim.x)

__global__ void encoder_forward_kernel(float* __restrict__ out, const int32_t* __restrict__ tokens,
                                       const float* __restrict__ wte, const float* __restrict__ wpe,
                                       size_t n, int T, int C) {
  GRID_STRIDE_LOOP(i, n) {
    const size_t bt = i / static_cast<size_t>(C);
    const size_t c = i % static_cast<size_t>(C);
    const size_t t = bt % static_cast<size_t>(T);
    out[i] = wte[static_cast<size_t>(tokens[bt]) * C + c] + wpe[t * C + c];
  }
}

// Block (v, tile): channels tile*kThreads + threadIdx.x of vocabulary row v.
// Stages kThreads tokens at a time in shared memory and adds, in position
// order, the rows of dout whose token is v. Every block reads all N tokens
// (cheap next to dout) and no two blocks write the same element.
__global__ void encoder_backward_wte_kernel(float* __restrict__ dwte,
                                            const float* __restrict__ dout,
                                            const int32_t* __restrict__ tokens, int N, int C) {
  __shared__ int32_t tok[kThreads];
  const int v = static_cast<int>(blockIdx.x);
  const int c = static_cast<int>(blockIdx.y) * kThreads + static_cast<int>(threadIdx.x);
  const size_t at = static_cast<size_t>(v) * C + static_cast<size_t>(c);
  float acc = c < C ? dwte[at] : 0.0f;
  for (int base = 0; base < N; base += kThreads) {
    const int n = base + static_cast<int>(threadIdx.x);
    tok[threadIdx.x] = n < N ? tokens[n] : -1;
    __syncthreads();
    const int count = N - base < kThreads ? N - base : kThreads;
    if (c < C) {
      for (int j = 0; j < count; ++j) {
        if (tok[j] == v) acc += dout[static_cast<size_t>(base + j) * C + c];
      }
    }
    __syncthreads();  // before the next tile overwrites tok
  }
  if (c < C) dwte[at] = acc;
}

// Element (t, c) of dwpe: the sum over rows b in order.
__global__ void encoder_backward_wpe_kernel(float* __restrict__ dwpe,
                                            const float* __restrict__ dout, int B, size_t tc) {
  GRID_STRIDE_LOOP(i, tc) {
    float acc = dwpe[i];
    for (int b = 0; b < B; ++b) acc += dout[static_cast<size_t>(b) * tc + i];
    dwpe[i] = acc;
  }
}

__global__ void layernorm_forward_kernel(float* __restrict__ out, float* __restrict__ mean,
                                         float* __restrict__ rstd, const float* __restrict__ inp,
                                         const float* __restrict__ weight,
                                         const float* __restrict__ bias, int N, int C) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int row =
      static_cast<int>(blockIdx.x) * kRowsPerBlock + static_cast<int>(threadIdx.x) / kWarp;
  if (row >= N) return;  // the whole warp leaves together
  const float* x = inp + static_cast<size_t>(row) * C;
  float sum = 0.0f;
  for (int c = lane; c < C; c += kWarp) sum += x[c];
  const float m = warp_sum(sum) / static_cast<float>(C);
  float var = 0.0f;
  for (int c = lane; c < C; c += kWarp) {
    const float d = x[c] - m;
    var += d * d;
  }
  var = warp_sum(var) / static_cast<float>(C);
  const float s = 1.0f / sqrtf(var + kLayerNormEps);
  float* o = out + static_cast<size_t>(row) * C;
  for (int c = lane; c < C; c += kWarp) o[c] = (x[c] - m) * s * weight[c] + bias[c];
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

// dinp += (dnorm - mean(dnorm) - norm mean(dnorm norm)) rstd, dnorm = w dout.
__global__ void layernorm_backward_kernel(float* __restrict__ dinp, const float* __restrict__ dout,
                                          const float* __restrict__ inp,
                                          const float* __restrict__ weight,
                                          const float* __restrict__ mean,
                                          const float* __restrict__ rstd, int N, int C) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int row =
      static_cast<int>(blockIdx.x) * kRowsPerBlock + static_cast<int>(threadIdx.x) / kWarp;
  if (row >= N) return;
  const size_t base = static_cast<size_t>(row) * C;
  const float* d = dout + base;
  const float* x = inp + base;
  const float m = mean[row];
  const float s = rstd[row];
  float dnorm_mean = 0.0f;
  float dnorm_norm_mean = 0.0f;
  for (int c = lane; c < C; c += kWarp) {
    const float norm = (x[c] - m) * s;
    const float dnorm = weight[c] * d[c];
    dnorm_mean += dnorm;
    dnorm_norm_mean += dnorm * norm;
  }
  dnorm_mean = warp_sum(dnorm_mean) / static_cast<float>(C);
  dnorm_norm_mean = warp_sum(dnorm_norm_mean) / static_cast<float>(C);
  float* dx = dinp + base;
  for (int c = lane; c < C; c += kWarp) {
    const float norm = (x[c] - m) * s;
    const float dnorm = weight[c] * d[c];
    dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
  }
}

// Per-channel sums over the N rows, block (kSumCols, kSumLanes): with inp
// non-null (LayerNorm) dweight += sum norm dout and dbias += sum dout; with
// inp null (a linear layer's bias) only dbias += sum dout.
__global__ void channel_sums_kernel(float* __restrict__ dweight, float* __restrict__ dbias,
                                    const float* __restrict__ dout, const float* __restrict__ inp,
                                    const float* __restrict__ mean, const float* __restrict__ rstd,
                                    int N, int C) {
  __shared__ float part_w[kSumLanes][kSumCols];
  __shared__ float part_b[kSumLanes][kSumCols];
  const int x = static_cast<int>(threadIdx.x);
  const int y = static_cast<int>(threadIdx.y);
  const int c = static_cast<int>(blockIdx.x) * kSumCols + x;
  float sw = 0.0f;
  float sb = 0.0f;
  if (c < C) {
    for (int n = y; n < N; n += kSumLanes) {
      const size_t i = static_cast<size_t>(n) * C + c;
      const float d = dout[i];
      sb += d;
      if (inp != nullptr) sw += (inp[i] - mean[n]) * rstd[n] * d;
    }
  }
  part_w[y][x] = sw;
  part_b[y][x] = sb;
  __syncthreads();
  if (y == 0 && c < C) {
    float tw = 0.0f;
    float tb = 0.0f;
    for (int l = 0; l < kSumLanes; ++l) {
      tw += part_w[l][x];
      tb += part_b[l][x];
    }
    dbias[c] += tb;
    if (inp != nullptr) dweight[c] += tw;
  }
}

__global__ void add_bias_kernel(float* __restrict__ out, const float* __restrict__ bias, size_t n,
                                int OC) {
  GRID_STRIDE_LOOP(i, n) {
    out[i] += bias[i % static_cast<size_t>(OC)];
  }
}

// qkv [B, T, 3C] -> q, k, v [B, NH, T, hs] (n = B T C elements each).
__global__ void split_heads_kernel(float* __restrict__ q, float* __restrict__ k,
                                   float* __restrict__ v, const float* __restrict__ qkv, size_t n,
                                   int T, int C, int NH) {
  GRID_STRIDE_LOOP(i, n) {
    const size_t j = head_to_row_index(i, T, NH, C / NH, 3 * C);
    q[i] = qkv[j];
    k[i] = qkv[j + C];
    v[i] = qkv[j + 2 * static_cast<size_t>(C)];
  }
}

// dqkv [B, T, 3C] += dq, dk, dv [B, NH, T, hs]: each element has one writer.
__global__ void merge_heads_backward_kernel(float* __restrict__ dqkv, const float* __restrict__ dq,
                                            const float* __restrict__ dk,
                                            const float* __restrict__ dv, size_t n, int T, int C,
                                            int NH) {
  GRID_STRIDE_LOOP(i, n) {
    const size_t j = head_to_row_index(i, T, NH, C / NH, 3 * C);
    dqkv[j] += dq[i];
    dqkv[j + C] += dk[i];
    dqkv[j + 2 * static_cast<size_t>(C)] += dv[i];
  }
}

// y [B, NH, T, hs] -> out [B, T, C].
__global__ void merge_heads_kernel(float* __restrict__ out, const float* __restrict__ y, size_t n,
                                   int T, int C, int NH) {
  GRID_STRIDE_LOOP(i, n) {
    out[head_to_row_index(i, T, NH, C / NH, C)] = y[i];
  }
}

// dout [B, T, C] -> dy [B, NH, T, hs] (the backward of merge_heads).
__global__ void split_rows_kernel(float* __restrict__ dy, const float* __restrict__ dout, size_t n,
                                  int T, int C, int NH) {
  GRID_STRIDE_LOOP(i, n) {
    dy[i] = dout[head_to_row_index(i, T, NH, C / NH, C)];
  }
}

// One warp per row r of the B NH T score rows (position t = r % T): the
// causal softmax of the scaled scores, in place; 0 above the diagonal.
__global__ void causal_softmax_kernel(float* __restrict__ att, size_t rows, int T) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const size_t r = static_cast<size_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (r >= rows) return;
  const int t = static_cast<int>(r % static_cast<size_t>(T));
  float* a = att + r * T;
  float mx = -INFINITY;
  for (int t2 = lane; t2 <= t; t2 += kWarp) mx = fmaxf(mx, a[t2]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int t2 = lane; t2 <= t; t2 += kWarp) {
    const float e = expf(a[t2] - mx);
    a[t2] = e;
    sum += e;
  }
  const float inv = 1.0f / warp_sum(sum);
  for (int t2 = lane; t2 <= t; t2 += kWarp) a[t2] *= inv;
  for (int t2 = t + 1 + lane; t2 < T; t2 += kWarp) a[t2] = 0.0f;
}

// In place: datt -> dpreatt = att (datt - sum(att datt)) on t2 <= t, else 0
// (the 1/sqrt(hs) of the scores is applied by the dq and dk products).
__global__ void causal_softmax_backward_kernel(float* __restrict__ datt,
                                               const float* __restrict__ att, size_t rows, int T) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const size_t r = static_cast<size_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (r >= rows) return;
  const int t = static_cast<int>(r % static_cast<size_t>(T));
  const float* a = att + r * T;
  float* d = datt + r * T;
  float dot = 0.0f;
  for (int t2 = lane; t2 <= t; t2 += kWarp) dot += a[t2] * d[t2];
  dot = warp_sum(dot);
  for (int t2 = lane; t2 <= t; t2 += kWarp) d[t2] = a[t2] * (d[t2] - dot);
  for (int t2 = t + 1 + lane; t2 < T; t2 += kWarp) d[t2] = 0.0f;
}

__global__ void gelu_forward_kernel(float* __restrict__ out, const float* __restrict__ inp,
                                    size_t n) {
  GRID_STRIDE_LOOP(i, n) {
    out[i] = gelu(inp[i]);
  }
}

__global__ void gelu_backward_kernel(float* __restrict__ dinp, const float* __restrict__ inp,
                                     const float* __restrict__ dout, size_t n) {
  GRID_STRIDE_LOOP(i, n) {
    dinp[i] += gelu_grad(inp[i]) * dout[i];
  }
}

__global__ void residual_forward_kernel(float* __restrict__ out, const float* __restrict__ a,
                                        const float* __restrict__ b, size_t n) {
  GRID_STRIDE_LOOP(i, n) {
    out[i] = a[i] + b[i];
  }
}

#undef GRID_STRIDE_LOOP

// ---- launch helpers ----------------------------------------------------------

void require(bool ok, const char* op, const std::string& what) {
  if (!ok) throw_shape_error(op, what);
}

void require_dims(const char* op, std::initializer_list<int> dims) {
  for (int d : dims) {
    if (d < 1) throw_shape_error(op, "every dimension must be >= 1, got " + std::to_string(d));
  }
}

void require_buffers(const char* op, std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs) {
    if (p == nullptr) throw_shape_error(op, "null buffer");
  }
}

// The handle must enqueue on `s`, or the products would race the kernels.
void require_stream(const char* op, cublasHandle_t h, cudaStream_t s) {
  cudaStream_t bound = nullptr;
  CUBLAS_CHECK(cublasGetStream(h, &bound));
  require(bound == s, op, "the cuBLAS handle is bound to another stream");
}

unsigned row_grid(size_t rows) {
  return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

// Batches go in chunks of at most kMaxGemmBatch: cuBLAS on compute
// capability 7.x has failed strided-batched calls of more than 65535 matrices
// (pytorch/pytorch#45724; PyTorch splits them the same way).
constexpr int kMaxGemmBatch = 63 * 1024;

void gemm(cublasHandle_t h, const GemmPlan& p, const float* a, const float* b, float* c) {
  const cublasOperation_t ta = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (p.batch == 1) {
    CUBLAS_CHECK(
        cublasSgemm(h, ta, tb, p.m, p.n, p.k, &p.alpha, a, p.lda, b, p.ldb, &p.beta, c, p.ldc));
    return;
  }
  for (int first = 0; first < p.batch; first += kMaxGemmBatch) {
    const int count = p.batch - first < kMaxGemmBatch ? p.batch - first : kMaxGemmBatch;
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, ta, tb, p.m, p.n, p.k, &p.alpha,
                                           a + first * p.stride_a, p.lda, p.stride_a,
                                           b + first * p.stride_b, p.ldb, p.stride_b, &p.beta,
                                           c + first * p.stride_c, p.ldc, p.stride_c, count));
  }
}

}  // namespace

// ============================== launchers ===================================

void encoder_forward(cudaStream_t s, float* out, const int32_t* tokens, const float* wte,
                     const float* wpe, int B, int T, int C) {
  require_dims("encoder_forward", {B, T, C});
  require_buffers("encoder_forward", {out, tokens, wte, wpe});
  const size_t n = static_cast<size_t>(B) * T * C;
  encoder_forward_kernel<<<grid_for(n), kThreads, 0, s>>>(out, tokens, wte, wpe, n, T, C);
  CUDA_CHECK_LAUNCH();
}

void encoder_backward(cudaStream_t s, float* dwte, float* dwpe, const float* dout,
                      const int32_t* tokens, int B, int T, int C, int V) {
  require_dims("encoder_backward", {B, T, C, V});
  require_buffers("encoder_backward", {dwte, dwpe, dout, tokens});
  const long long N = 1LL * B * T;
  // The kernel steps through positions kThreads at a time in int.
  require(N <= 0x7fffffffLL - kThreads, "encoder_backward", "too many positions");
  const unsigned tiles = static_cast<unsigned>((C + kThreads - 1) / kThreads);
  require(tiles <= 65535u, "encoder_backward", "too many channels for one grid");
  encoder_backward_wte_kernel<<<dim3(static_cast<unsigned>(V), tiles), kThreads, 0, s>>>(
      dwte, dout, tokens, static_cast<int>(N), C);
  CUDA_CHECK_LAUNCH();
  const size_t tc = static_cast<size_t>(T) * C;
  encoder_backward_wpe_kernel<<<grid_for(tc), kThreads, 0, s>>>(dwpe, dout, B, tc);
  CUDA_CHECK_LAUNCH();
}

void layernorm_forward(cudaStream_t s, float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int N, int C) {
  require_dims("layernorm_forward", {N, C});
  require_buffers("layernorm_forward", {out, mean, rstd, inp, weight, bias});
  layernorm_forward_kernel<<<row_grid(static_cast<size_t>(N)), kThreads, 0, s>>>(
      out, mean, rstd, inp, weight, bias, N, C);
  CUDA_CHECK_LAUNCH();
}

void layernorm_backward(cudaStream_t s, float* dinp, float* dweight, float* dbias,
                        const float* dout, const float* inp, const float* weight, const float* mean,
                        const float* rstd, int N, int C) {
  require_dims("layernorm_backward", {N, C});
  require_buffers("layernorm_backward", {dinp, dweight, dbias, dout, inp, weight, mean, rstd});
  layernorm_backward_kernel<<<row_grid(static_cast<size_t>(N)), kThreads, 0, s>>>(
      dinp, dout, inp, weight, mean, rstd, N, C);
  CUDA_CHECK_LAUNCH();
  const unsigned tiles = static_cast<unsigned>((C + kSumCols - 1) / kSumCols);
  channel_sums_kernel<<<tiles, dim3(kSumCols, kSumLanes), 0, s>>>(dweight, dbias, dout, inp, mean,
                                                                  rstd, N, C);
  CUDA_CHECK_LAUNCH();
}

void matmul_forward(cublasHandle_t h, cudaStream_t s, float* out, const float* inp,
                    const float* weight, const float* bias, int N, int C, int OC) {
  require_dims("matmul_forward", {N, C, OC});
  require_buffers("matmul_forward", {out, inp, weight});
  require_stream("matmul_forward", h, s);
  gemm(h, matmul_forward_plan(N, C, OC), weight, inp, out);
  if (bias == nullptr) return;
  const size_t n = static_cast<size_t>(N) * OC;
  add_bias_kernel<<<grid_for(n), kThreads, 0, s>>>(out, bias, n, OC);
  CUDA_CHECK_LAUNCH();
}

void matmul_backward(cublasHandle_t h, cudaStream_t s, float* dinp, float* dweight, float* dbias,
                     const float* dout, const float* inp, const float* weight, int N, int C,
                     int OC) {
  require_dims("matmul_backward", {N, C, OC});
  require_buffers("matmul_backward", {dinp, dweight, dout, inp, weight});
  require_stream("matmul_backward", h, s);
  gemm(h, matmul_backward_dinp_plan(N, C, OC), weight, dout, dinp);
  gemm(h, matmul_backward_dweight_plan(N, C, OC), inp, dout, dweight);
  if (dbias == nullptr) return;
  const unsigned tiles = static_cast<unsigned>((OC + kSumCols - 1) / kSumCols);
  channel_sums_kernel<<<tiles, dim3(kSumCols, kSumLanes), 0, s>>>(nullptr, dbias, dout, nullptr,
                                                                  nullptr, nullptr, N, OC);
  CUDA_CHECK_LAUNCH();
}

namespace {

AttentionShape attention_shape(const char* op, int B, int T, int C, int NH) {
  require_dims(op, {B, T, C, NH});
  require(C % NH == 0, op,
          "channels " + std::to_string(C) + " not divisible by heads " + std::to_string(NH));
  return {B, T, C, NH};
}

}  // namespace

void attention_forward(cublasHandle_t h, cudaStream_t s, float* out, float* att, float* scratch,
                       const float* qkv, int B, int T, int C, int NH) {
  const AttentionShape shape = attention_shape("attention_forward", B, T, C, NH);
  require_buffers("attention_forward", {out, att, scratch, qkv});
  require_stream("attention_forward", h, s);
  const AttentionScratch at = attention_scratch_layout(shape);
  float* q = scratch + at.q;
  float* k = scratch + at.k;
  float* v = scratch + at.v;
  float* y = scratch + at.y_or_dq;
  const size_t n = shape.head_floats();
  split_heads_kernel<<<grid_for(n), kThreads, 0, s>>>(q, k, v, qkv, n, T, C, NH);
  CUDA_CHECK_LAUNCH();
  gemm(h, attention_scores_plan(shape), k, q, att);
  const size_t rows = static_cast<size_t>(shape.pairs()) * T;
  causal_softmax_kernel<<<row_grid(rows), kThreads, 0, s>>>(att, rows, T);
  CUDA_CHECK_LAUNCH();
  gemm(h, attention_values_plan(shape), v, att, y);
  merge_heads_kernel<<<grid_for(n), kThreads, 0, s>>>(out, y, n, T, C, NH);
  CUDA_CHECK_LAUNCH();
}

void attention_backward(cublasHandle_t h, cudaStream_t s, float* dqkv, float* scratch,
                        const float* dout, const float* qkv, const float* att, int B, int T, int C,
                        int NH) {
  const AttentionShape shape = attention_shape("attention_backward", B, T, C, NH);
  require_buffers("attention_backward", {dqkv, scratch, dout, qkv, att});
  require_stream("attention_backward", h, s);
  const AttentionScratch at = attention_scratch_layout(shape);
  float* q = scratch + at.q;
  float* k = scratch + at.k;
  float* v = scratch + at.v;
  float* dy = scratch + at.y_or_dq;  // dy first, dq once dy is spent
  float* dq = scratch + at.y_or_dq;
  float* dk = scratch + at.dk;
  float* dv = scratch + at.dv;
  float* datt = scratch + at.datt;
  const size_t n = shape.head_floats();
  split_heads_kernel<<<grid_for(n), kThreads, 0, s>>>(q, k, v, qkv, n, T, C, NH);
  CUDA_CHECK_LAUNCH();
  split_rows_kernel<<<grid_for(n), kThreads, 0, s>>>(dy, dout, n, T, C, NH);
  CUDA_CHECK_LAUNCH();
  // y = att v: datt = dy v^T, dv = att^T dy.
  gemm(h, attention_datt_plan(shape), v, dy, datt);
  gemm(h, attention_dv_plan(shape), dy, att, dv);
  const size_t rows = static_cast<size_t>(shape.pairs()) * T;
  causal_softmax_backward_kernel<<<row_grid(rows), kThreads, 0, s>>>(datt, att, rows, T);
  CUDA_CHECK_LAUNCH();
  // preatt = scale q k^T: dq = scale dpreatt k, dk = scale dpreatt^T q.
  gemm(h, attention_dq_plan(shape), k, datt, dq);
  gemm(h, attention_dk_plan(shape), q, datt, dk);
  merge_heads_backward_kernel<<<grid_for(n), kThreads, 0, s>>>(dqkv, dq, dk, dv, n, T, C, NH);
  CUDA_CHECK_LAUNCH();
}

void gelu_forward(cudaStream_t s, float* out, const float* inp, size_t n) {
  if (n == 0) return;
  require_buffers("gelu_forward", {out, inp});
  gelu_forward_kernel<<<grid_for(n), kThreads, 0, s>>>(out, inp, n);
  CUDA_CHECK_LAUNCH();
}

void gelu_backward(cudaStream_t s, float* dinp, const float* inp, const float* dout, size_t n) {
  if (n == 0) return;
  require_buffers("gelu_backward", {dinp, inp, dout});
  gelu_backward_kernel<<<grid_for(n), kThreads, 0, s>>>(dinp, inp, dout, n);
  CUDA_CHECK_LAUNCH();
}

void residual_forward(cudaStream_t s, float* out, const float* a, const float* b, size_t n) {
  if (n == 0) return;
  require_buffers("residual_forward", {out, a, b});
  residual_forward_kernel<<<grid_for(n), kThreads, 0, s>>>(out, a, b, n);
  CUDA_CHECK_LAUNCH();
}

void crossentropy_forward_backward(cudaStream_t s, LossStats* sums, float* row_loss,
                                   int* row_correct, float* dlogits, const float* logits,
                                   const int32_t* targets, int N, int V) {
  require_dims("crossentropy_forward_backward", {N, V});
  require_buffers("crossentropy_forward_backward", {sums, row_loss, row_correct, logits, targets});
  // The MLP's fused softmax cross-entropy has exactly this definition (one
  // warp per position, first maximum wins) and its fixed-order reduction.
  softmax_xent_forward_backward(s, dlogits, row_loss, row_correct, logits, targets, N, V);
  reduce_loss_stats(s, sums, row_loss, row_correct, N);
}

}  // namespace gossip::train::cuda
