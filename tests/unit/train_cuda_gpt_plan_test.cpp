// The host-side arithmetic of the CUDA GPT operations (src/train/cuda/
// gpt_plan.hpp), checked on the CPU: a column-major emulation of
// cublasSgemm(StridedBatched) runs every product with exactly the arguments
// gpt_ops.cu hands cuBLAS, the head gather/scatter uses the kernels' index
// map, and the temporaries sit in the scratch layout the launchers use (dy and
// dq sharing a slot); the results must equal the CPU reference operations.
// The emulation also fails any read or write outside a buffer. Needs no GPU
// and no CUDA toolkit: it runs in every build.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "../../src/train/cuda/gpt_plan.hpp"
#include "gossip/train/gpt_ops.hpp"

using namespace gossip::train;
using gossip::train::cuda::AttentionShape;
using gossip::train::cuda::GemmPlan;

namespace {

std::vector<double> random_vector(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A device buffer as the emulation sees it: a base index into `mem` and the
// number of elements the call may touch from there.
struct View {
  std::vector<double>* mem;
  size_t base;
  size_t size;
  double& at(size_t i) const {
    REQUIRE(i < size);  // an argument would make cuBLAS run off the buffer
    return (*mem)[base + i];
  }
};

View whole(std::vector<double>& v) {
  return {&v, 0, v.size()};
}

// cuBLAS's definition, column-major: C_i = alpha op(A_i) op(B_i) + beta C_i;
// with beta == 0, C is not read.
void gemm_emulated(const GemmPlan& p, const View& a, const View& b, const View& c) {
  REQUIRE(p.m >= 1);
  REQUIRE(p.n >= 1);
  REQUIRE(p.k >= 1);
  CHECK(p.lda >= (p.trans_a ? p.k : p.m));
  CHECK(p.ldb >= (p.trans_b ? p.n : p.k));
  CHECK(p.ldc >= p.m);
  for (int i = 0; i < p.batch; ++i) {
    const size_t oa = static_cast<size_t>(i * p.stride_a);
    const size_t ob = static_cast<size_t>(i * p.stride_b);
    const size_t oc = static_cast<size_t>(i * p.stride_c);
    for (int col = 0; col < p.n; ++col) {
      for (int row = 0; row < p.m; ++row) {
        double acc = 0.0;
        for (int kk = 0; kk < p.k; ++kk) {
          const size_t ia =
              p.trans_a ? size_t(kk) + size_t(row) * p.lda : size_t(row) + size_t(kk) * p.lda;
          const size_t ib =
              p.trans_b ? size_t(col) + size_t(kk) * p.ldb : size_t(kk) + size_t(col) * p.ldb;
          acc += a.at(oa + ia) * b.at(ob + ib);
        }
        double& out = c.at(oc + size_t(row) + size_t(col) * p.ldc);
        out = static_cast<double>(p.alpha) * acc +
              (p.beta == 0.0f ? 0.0 : static_cast<double>(p.beta) * out);
      }
    }
  }
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                 const std::string& what) {
  REQUIRE(got.size() == want.size());
  double scale = 0.0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]) / std::max(1.0, scale));
  }
  INFO(what << ": worst error relative to the array's scale " << worst);
  CHECK(worst <= tol);
}

// The scale of the scores is a float (1/sqrt(hs) rounded), the reference's a
// double: 1e-6 of the array's scale covers that rounding (about 3e-8) with
// room, and is far below any index mistake (order 1).
constexpr double kTol = 1e-6;

struct Shape {
  int B, T, C, NH;
};

// Odd sizes, a single head, a single position, hs = 1.
const Shape kShapes[] = {{2, 5, 12, 3}, {3, 7, 8, 2}, {1, 1, 4, 4}, {2, 9, 6, 1}, {4, 3, 5, 5}};

}  // namespace

TEST_CASE("matmul plans compute the CPU reference's products") {
  for (auto [N, C, OC] : {std::array<int, 3>{7, 5, 3}, {1, 4, 9}, {12, 16, 48}}) {
    CAPTURE(N);
    CAPTURE(C);
    CAPTURE(OC);
    auto inp = random_vector(size_t(N) * C, 1);
    auto w = random_vector(size_t(OC) * C, 2);
    auto bias = random_vector(size_t(OC), 3);
    std::vector<double> want(size_t(N) * OC), got(want.size());
    cpu::matmul_forward(want.data(), inp.data(), w.data(), bias.data(), N, C, OC);
    gemm_emulated(cuda::matmul_forward_plan(N, C, OC), whole(w), whole(inp), whole(got));
    for (size_t i = 0; i < got.size(); ++i) got[i] += bias[i % size_t(OC)];  // add_bias_kernel
    check_close(got, want, kTol, "matmul_forward");

    auto dout = random_vector(size_t(N) * OC, 4);
    // Non-zero starting gradients: the backward accumulates.
    auto dinp_want = random_vector(size_t(N) * C, 5), dinp_got = dinp_want;
    auto dw_want = random_vector(size_t(OC) * C, 6), dw_got = dw_want;
    std::vector<double> db(size_t(OC), 0.0);
    cpu::matmul_backward(dinp_want.data(), dw_want.data(), db.data(), dout.data(), inp.data(),
                         w.data(), N, C, OC);
    gemm_emulated(cuda::matmul_backward_dinp_plan(N, C, OC), whole(w), whole(dout),
                  whole(dinp_got));
    gemm_emulated(cuda::matmul_backward_dweight_plan(N, C, OC), whole(inp), whole(dout),
                  whole(dw_got));
    check_close(dinp_got, dinp_want, kTol, "matmul_backward dinp");
    check_close(dw_got, dw_want, kTol, "matmul_backward dweight");
  }
}

TEST_CASE("the head index map splits qkv into q, k, v and is one to one") {
  const int B = 2, T = 3, C = 6, NH = 3, hs = C / NH;
  const size_t n = size_t(B) * T * C;
  std::vector<int> hits(3 * n, 0);
  for (size_t i = 0; i < n; ++i) {
    const size_t j = cuda::head_to_row_index(i, T, NH, hs, 3 * C);
    REQUIRE(j + 2 * C < 3 * n);
    ++hits[j];
    ++hits[j + C];
    ++hits[j + 2 * C];
  }
  CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
  // Element (b=1, h=2, t=0, d=1) is channel 2 hs + 1 of position (1, 0).
  const size_t i = ((size_t(1) * NH + 2) * T + 0) * hs + 1;
  CHECK(cuda::head_to_row_index(i, T, NH, hs, C) == (size_t(1) * T + 0) * C + 2 * hs + 1);
}

TEST_CASE("the attention scratch layout keeps its temporaries apart") {
  const AttentionShape s{3, 7, 12, 4};
  const auto a = cuda::attention_scratch_layout(s);
  const size_t h = s.head_floats();
  CHECK(h == size_t(3) * 7 * 12);
  CHECK(s.att_floats() == size_t(3) * 4 * 7 * 7);
  const size_t starts[] = {a.q, a.k, a.v, a.y_or_dq, a.dk, a.dv, a.datt};
  for (size_t i = 0; i + 1 < std::size(starts); ++i) CHECK(starts[i] + h <= starts[i + 1]);
  CHECK(a.datt + s.att_floats() == a.total);
  CHECK(cuda::attention_scratch_floats(3, 7, 12, 4) == a.total);
}

TEST_CASE("attention plans, index map and scratch compute the CPU reference's attention") {
  for (const Shape& sh : kShapes) {
    const int B = sh.B, T = sh.T, C = sh.C, NH = sh.NH;
    CAPTURE(B);
    CAPTURE(T);
    CAPTURE(C);
    CAPTURE(NH);
    const AttentionShape s{B, T, C, NH};
    const int hs = s.hs();
    const size_t n = s.head_floats();
    const auto lay = cuda::attention_scratch_layout(s);
    auto qkv = random_vector(3 * n, 11);

    // The reference.
    std::vector<double> out_want(n), att_want(s.att_floats()), tt(size_t(T) * T);
    cpu::attention_forward(out_want.data(), att_want.data(), qkv.data(), B, T, C, NH);

    // The launcher's steps, in its order, over one scratch buffer.
    std::vector<double> scratch(lay.total, std::nan("")), att(s.att_floats(), std::nan(""));
    std::vector<double> out(n, std::nan(""));
    auto slot = [&](size_t at) { return View{&scratch, at, n}; };
    for (size_t i = 0; i < n; ++i) {  // split_heads_kernel
      const size_t j = cuda::head_to_row_index(i, T, NH, hs, 3 * C);
      slot(lay.q).at(i) = qkv[j];
      slot(lay.k).at(i) = qkv[j + C];
      slot(lay.v).at(i) = qkv[j + 2 * size_t(C)];
    }
    gemm_emulated(cuda::attention_scores_plan(s), slot(lay.k), slot(lay.q), whole(att));
    for (size_t r = 0; r < size_t(s.pairs()) * T; ++r) {  // causal_softmax_kernel
      const int t = int(r % size_t(T));
      double* a = att.data() + r * T;
      double mx = -INFINITY, sum = 0.0;
      for (int t2 = 0; t2 <= t; ++t2) mx = std::max(mx, a[t2]);
      for (int t2 = 0; t2 <= t; ++t2) sum += (a[t2] = std::exp(a[t2] - mx));
      for (int t2 = 0; t2 <= t; ++t2) a[t2] /= sum;
      for (int t2 = t + 1; t2 < T; ++t2) a[t2] = 0.0;
    }
    gemm_emulated(cuda::attention_values_plan(s), slot(lay.v), whole(att), slot(lay.y_or_dq));
    for (size_t i = 0; i < n; ++i) {  // merge_heads_kernel
      out[cuda::head_to_row_index(i, T, NH, hs, C)] = slot(lay.y_or_dq).at(i);
    }
    check_close(att, att_want, kTol, "attention_forward att");
    check_close(out, out_want, kTol, "attention_forward out");

    // Backward, accumulating onto a non-zero dqkv.
    auto dout = random_vector(n, 12);
    auto dqkv_want = random_vector(3 * n, 13), dqkv = dqkv_want;
    cpu::attention_backward(dqkv_want.data(), tt.data(), dout.data(), qkv.data(), att_want.data(),
                            B, T, C, NH);
    std::fill(scratch.begin(), scratch.end(), std::nan(""));
    const View datt{&scratch, lay.datt, s.att_floats()};
    for (size_t i = 0; i < n; ++i) {  // split_heads_kernel, split_rows_kernel
      const size_t j = cuda::head_to_row_index(i, T, NH, hs, 3 * C);
      slot(lay.q).at(i) = qkv[j];
      slot(lay.k).at(i) = qkv[j + C];
      slot(lay.v).at(i) = qkv[j + 2 * size_t(C)];
      slot(lay.y_or_dq).at(i) = dout[cuda::head_to_row_index(i, T, NH, hs, C)];
    }
    gemm_emulated(cuda::attention_datt_plan(s), slot(lay.v), slot(lay.y_or_dq), datt);
    gemm_emulated(cuda::attention_dv_plan(s), slot(lay.y_or_dq), whole(att), slot(lay.dv));
    for (size_t r = 0; r < size_t(s.pairs()) * T; ++r) {  // causal_softmax_backward_kernel
      const int t = int(r % size_t(T));
      const double* a = att.data() + r * T;
      double dot = 0.0;
      for (int t2 = 0; t2 <= t; ++t2) dot += a[t2] * datt.at(r * T + t2);
      for (int t2 = 0; t2 <= t; ++t2) datt.at(r * T + t2) = a[t2] * (datt.at(r * T + t2) - dot);
      for (int t2 = t + 1; t2 < T; ++t2) datt.at(r * T + t2) = 0.0;
    }
    gemm_emulated(cuda::attention_dq_plan(s), slot(lay.k), datt, slot(lay.y_or_dq));
    gemm_emulated(cuda::attention_dk_plan(s), slot(lay.q), datt, slot(lay.dk));
    for (size_t i = 0; i < n; ++i) {  // merge_heads_backward_kernel
      const size_t j = cuda::head_to_row_index(i, T, NH, hs, 3 * C);
      dqkv[j] += slot(lay.y_or_dq).at(i);
      dqkv[j + C] += slot(lay.dk).at(i);
      dqkv[j + 2 * size_t(C)] += slot(lay.dv).at(i);
    }
    check_close(dqkv, dqkv_want, kTol, "attention_backward dqkv");
  }
}
