// The host-side arithmetic of the CUDA GPT operations (gpt_ops.cu): the
// arguments of every cuBLAS product, the index map between the packed qkv
// buffer [B, T, 3C] and the head-major buffers [B, NH, T, hs] that the
// strided-batched GEMMs need, and the attention scratch layout.
//
// Plain C++ without CUDA types, so that tests/unit/train_cuda_gpt_plan_test.cpp
// checks it on any machine: it emulates cuBLAS's column-major GEMM with these
// arguments and compares with the CPU reference (gpt_ops.hpp). gpt_ops.cu
// passes the plans to cuBLAS unchanged and its kernels use the same index map.
#pragma once

#include <cmath>
#include <cstddef>

#if defined(__CUDACC__)
#define GOSSIP_HOST_DEVICE __host__ __device__
#else
#define GOSSIP_HOST_DEVICE
#endif

namespace gossip::train::cuda {

// One cublasSgemmStridedBatched call (batch 1: a plain cublasSgemm), in
// cuBLAS's column-major terms: for i < batch,
//   C_i = alpha op(A_i) op(B_i) + beta C_i,  C_i m x n,  op(A_i) m x k,
// with X_i = X + i stride_x. A row-major matrix R (r x c) is the column-major
// R^T (c x r, leading dimension c), so each row-major product below is
// written as its transpose. Each plan's comment names its A, B and C.
struct GemmPlan {
  bool trans_a = false;
  bool trans_b = false;
  int m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  float beta = 0.0f;
  int lda = 0, ldb = 0, ldc = 0;
  long long stride_a = 0, stride_b = 0, stride_c = 0;
  int batch = 1;
};

// ---- matmul (inp N x C, weight OC x C, out N x OC) ---------------------------

// out = inp W^T.  A = weight, B = inp, C = out.
inline GemmPlan matmul_forward_plan(int N, int C, int OC) {
  return {.trans_a = true, .m = OC, .n = N, .k = C, .lda = C, .ldb = C, .ldc = OC};
}
// dinp += dout W.  A = weight, B = dout, C = dinp.
inline GemmPlan matmul_backward_dinp_plan(int N, int C, int OC) {
  return {.m = C, .n = N, .k = OC, .beta = 1.0f, .lda = C, .ldb = OC, .ldc = C};
}
// dweight += dout^T inp.  A = inp, B = dout, C = dweight.
inline GemmPlan matmul_backward_dweight_plan(int N, int C, int OC) {
  return {.trans_b = true, .m = C, .n = OC, .k = N, .beta = 1.0f, .lda = C, .ldb = OC, .ldc = C};
}

// ---- attention ---------------------------------------------------------------
// Batched over the B NH (row, head) pairs of the head-major buffers q, k, v
// (each [B, NH, T, hs], one T x hs matrix per pair, column-major hs x T) and
// att ([B, NH, T, T], column-major its transpose).

struct AttentionShape {
  int B = 0, T = 0, C = 0, NH = 0;
  int hs() const { return C / NH; }
  int pairs() const { return B * NH; }
  // Scores are scaled by 1 / sqrt(hs), computed in float as the CPU's float
  // instantiation does.
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(hs())); }
  size_t rows() const { return static_cast<size_t>(B) * T; }              // N
  size_t head_floats() const { return rows() * static_cast<size_t>(C); }  // one of q, k, v
  size_t att_floats() const {
    return static_cast<size_t>(B) * NH * static_cast<size_t>(T) * static_cast<size_t>(T);
  }
  long long head_stride() const { return 1LL * T * hs(); }  // one pair's T x hs matrix
  long long att_stride() const { return 1LL * T * T; }      // one pair's T x T matrix
};

// preatt = scale q k^T.  A = k, B = q, C = att.
inline GemmPlan attention_scores_plan(const AttentionShape& s) {
  return {.trans_a = true,
          .m = s.T,
          .n = s.T,
          .k = s.hs(),
          .alpha = s.scale(),
          .lda = s.hs(),
          .ldb = s.hs(),
          .ldc = s.T,
          .stride_a = s.head_stride(),
          .stride_b = s.head_stride(),
          .stride_c = s.att_stride(),
          .batch = s.pairs()};
}
// y = att v.  A = v, B = att, C = y (head-major).
inline GemmPlan attention_values_plan(const AttentionShape& s) {
  return {.m = s.hs(),
          .n = s.T,
          .k = s.T,
          .lda = s.hs(),
          .ldb = s.T,
          .ldc = s.hs(),
          .stride_a = s.head_stride(),
          .stride_b = s.att_stride(),
          .stride_c = s.head_stride(),
          .batch = s.pairs()};
}
// datt = dy v^T.  A = v, B = dy, C = datt.
inline GemmPlan attention_datt_plan(const AttentionShape& s) {
  return {.trans_a = true,
          .m = s.T,
          .n = s.T,
          .k = s.hs(),
          .lda = s.hs(),
          .ldb = s.hs(),
          .ldc = s.T,
          .stride_a = s.head_stride(),
          .stride_b = s.head_stride(),
          .stride_c = s.att_stride(),
          .batch = s.pairs()};
}
// dv = att^T dy.  A = dy, B = att, C = dv.
inline GemmPlan attention_dv_plan(const AttentionShape& s) {
  return {.trans_b = true,
          .m = s.hs(),
          .n = s.T,
          .k = s.T,
          .lda = s.hs(),
          .ldb = s.T,
          .ldc = s.hs(),
          .stride_a = s.head_stride(),
          .stride_b = s.att_stride(),
          .stride_c = s.head_stride(),
          .batch = s.pairs()};
}
// dq = scale dpreatt k.  A = k, B = dpreatt, C = dq.
inline GemmPlan attention_dq_plan(const AttentionShape& s) {
  return {.m = s.hs(),
          .n = s.T,
          .k = s.T,
          .alpha = s.scale(),
          .lda = s.hs(),
          .ldb = s.T,
          .ldc = s.hs(),
          .stride_a = s.head_stride(),
          .stride_b = s.att_stride(),
          .stride_c = s.head_stride(),
          .batch = s.pairs()};
}
// dk = scale dpreatt^T q.  A = q, B = dpreatt, C = dk.
inline GemmPlan attention_dk_plan(const AttentionShape& s) {
  return {.trans_b = true,
          .m = s.hs(),
          .n = s.T,
          .k = s.T,
          .alpha = s.scale(),
          .lda = s.hs(),
          .ldb = s.T,
          .ldc = s.hs(),
          .stride_a = s.head_stride(),
          .stride_b = s.att_stride(),
          .stride_c = s.head_stride(),
          .batch = s.pairs()};
}

// Element i of a head-major buffer [B, NH, T, hs] is channel d of head h at
// position t of row b; in a row-major buffer [B, T, ld] whose row holds the
// NH heads side by side from column 0 (ld = C for the attention output, 3C
// for qkv, whose k and v parts follow at +C and +2C) it sits here.
GOSSIP_HOST_DEVICE inline size_t head_to_row_index(size_t i, int T, int NH, int hs, int ld) {
  const size_t d = i % static_cast<size_t>(hs);
  const size_t t = (i / static_cast<size_t>(hs)) % static_cast<size_t>(T);
  const size_t h = (i / (static_cast<size_t>(hs) * T)) % static_cast<size_t>(NH);
  const size_t b = i / (static_cast<size_t>(hs) * T * NH);
  return (b * static_cast<size_t>(T) + t) * static_cast<size_t>(ld) + h * hs + d;
}

// Where attention_forward/backward keep their temporaries in the caller's
// scratch (attention_scratch_floats() floats, offsets in floats). Forward:
// q, k, v and the head-major output y. Backward: q, k, v again (re-gathered
// from qkv), dq (which first holds dy: dy is dead once datt and dv are
// computed, before dq is written), dk, dv, and datt (B NH T T), which the
// softmax backward turns into dpreatt in place.
struct AttentionScratch {
  size_t q = 0, k = 0, v = 0;
  size_t y_or_dq = 0;
  size_t dk = 0, dv = 0;
  size_t datt = 0;
  size_t total = 0;
};

inline AttentionScratch attention_scratch_layout(const AttentionShape& s) {
  const size_t h = s.head_floats();
  AttentionScratch a;
  a.q = 0;
  a.k = h;
  a.v = 2 * h;
  a.y_or_dq = 3 * h;
  a.dk = 4 * h;
  a.dv = 5 * h;
  a.datt = 6 * h;
  a.total = 6 * h + s.att_floats();
  return a;
}

inline size_t attention_scratch_floats(int B, int T, int C, int NH) {
  return attention_scratch_layout({B, T, C, NH}).total;
}

}  // namespace gossip::train::cuda
