// The GPT's CUDA operations (src/train/cuda/gpt_ops.cuh) and passes
// (CudaGptModel) against the CPU reference in float (gpt_ops.hpp,
// cpu::GptModel<float>): every operation on random inputs, the whole model's
// logits, loss and every gradient, bit-identical repeats, a batch of more
// positions than the loss reduction has threads, buffers longer than one
// grid-stride pass covers, more attention heads than one batched GEMM call
// takes, and a model too large for the device failing at construction.
// Exits 77 (skipped) without a CUDA device.
//
// Tolerances. Both sides compute in float; they differ only in the order of
// the additions (warp trees, cuBLAS's blocking against OpenBLAS's), in FMA
// contraction, and in the last bits of expf/tanhf. Values are compared by the
// worst |gpu - cpu| / max(|cpu|, 1% of the tensor's largest |cpu|), the
// metric of the PyTorch parity test (train_gpt_parity_test.cpp), so that
// near-zero entries are judged against the tensor's scale. Gathers, copies
// and additions of the same two floats (encoder forward and backward,
// residual) must be bit-identical: the CUDA code adds in the CPU's order.
// The other bounds are about 10x the CPU float path's own error against its
// double instantiation, measured by this metric on these very inputs and
// shapes (a GPU computing as well as the CPU lands within about 2x of it):
//  - gelu: measured 1.6e-5 (backward: tanh near +-1 cancels), bound 2e-4;
//  - reductions (layernorm, matmul, attention, cross-entropy): measured at
//    most 2.4e-5, bound 3e-4;
//  - the whole model: logits measured 2.2e-5, bound 3e-4; each gradient
//    tensor measured at most 5e-5, bound 1e-3; the relative L2 error of the
//    whole gradient measured 4e-7, bound 1e-4; the loss sum measured 5e-9,
//    bound 1e-5.
// A wrong index, stride, mask or scale moves values by order 1, far above.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../../src/train/cuda/gpt_model.cuh"
#include "../../src/train/cuda/gpt_ops.cuh"
#include "gossip/train/gpt.hpp"
#include "gossip/train/gpt_cpu.hpp"
#include "gossip/train/gpt_ops.hpp"
#include "gpu_test_util.hpp"

using namespace gossip::train;
using gossip::train::cuda::BlasHandle;
using gossip::train::cuda::DeviceBuffer;
using gossip::train::cuda::Stream;
using gpu_test::require_device;

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::vector<int32_t> random_ids(size_t n, int below, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> pick(0, below - 1);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = pick(gen);
  return v;
}

// One stream, a cuBLAS handle bound to it with a fixed workspace (as the
// model has), and transfers ordered on that stream.
struct Gpu {
  Stream stream;
  DeviceBuffer workspace{size_t{32} << 20};
  BlasHandle blas{stream.get()};
  Gpu() {
    CUBLAS_CHECK(cublasSetMathMode(blas.get(), CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasSetWorkspace(blas.get(), workspace.as<void>(), workspace.bytes()));
  }
  cudaStream_t s() const { return stream.get(); }
  cublasHandle_t h() const { return blas.get(); }

  template <typename T>
  DeviceBuffer up(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T));
    CUDA_CHECK(cudaMemcpyAsync(b.as<void>(), v.data(), b.bytes(), cudaMemcpyHostToDevice, s()));
    CUDA_CHECK(cudaStreamSynchronize(s()));
    return b;
  }
  template <typename T = float>
  std::vector<T> down(const DeviceBuffer& b) {
    std::vector<T> v(b.bytes() / sizeof(T));
    CUDA_CHECK(cudaMemcpyAsync(v.data(), b.as<void>(), b.bytes(), cudaMemcpyDeviceToHost, s()));
    CUDA_CHECK(cudaStreamSynchronize(s()));
    return v;
  }
};

double worst_relative(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double largest = 0.0;
  for (float v : want) largest = std::max(largest, std::fabs(static_cast<double>(v)));
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double scale = std::max(std::fabs(static_cast<double>(want[i])), 0.01 * largest);
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    double r = scale > 0.0 ? err / scale : (err > 0.0 ? kInf : 0.0);
    if (std::isnan(r)) r = kInf;  // a NaN on either side
    worst = std::max(worst, r);
  }
  return worst;
}

void check_close(const std::vector<float>& got, const std::vector<float>& want, double tol,
                 const std::string& what) {
  const double worst = worst_relative(got, want);
  INFO(what << ": worst relative error " << worst << " (tolerance " << tol << ")");
  CHECK(worst <= tol);
}

void check_bits(const std::vector<float>& got, const std::vector<float>& want,
                const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], 4) != 0;
  INFO(what << ": " << differ << " of " << got.size() << " values differ in their bits");
  CHECK(differ == 0);
}

constexpr double kMap = 2e-4;     // element-wise maps
constexpr double kReduce = 3e-4;  // reductions
constexpr double kModel = 3e-4;   // the model's logits
constexpr double kGrad = 1e-3;    // one gradient tensor of the model

struct OpShape {
  int B, T, C, NH, V;
};

// Odd sizes; the second has N = 320 positions (more than a block of threads).
const OpShape kOpShapes[] = {{3, 37, 48, 4, 256}, {5, 64, 96, 3, 256}};

}  // namespace

TEST_CASE("encoder forward and backward equal the CPU's bit for bit") {
  require_device();
  Gpu g;
  for (const OpShape& sh : kOpShapes) {
    const int B = sh.B, T = sh.T, C = sh.C, V = sh.V, N = B * T;
    CAPTURE(N);
    // Few distinct tokens: each wte row gathers many positions.
    const auto tokens = random_ids(static_cast<size_t>(N), 20, 1);
    const auto wte = randn(static_cast<size_t>(V) * C, 2),
               wpe = randn(static_cast<size_t>(T) * C, 3);
    std::vector<float> out(static_cast<size_t>(N) * C);
    cpu::encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    auto d_tok = g.up(tokens);
    auto d_wte = g.up(wte), d_wpe = g.up(wpe);
    DeviceBuffer d_out(out.size() * sizeof(float));
    cuda::encoder_forward(g.s(), d_out.as<float>(), d_tok.as<int32_t>(), d_wte.as<float>(),
                          d_wpe.as<float>(), B, T, C);
    check_bits(g.down(d_out), out, "encoder_forward");

    const auto dout = randn(out.size(), 4);
    auto dwte = randn(wte.size(), 5), dwpe = randn(wpe.size(), 6);  // accumulated onto
    auto d_dout = g.up(dout), d_dwte = g.up(dwte), d_dwpe = g.up(dwpe);
    cpu::encoder_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
    cuda::encoder_backward(g.s(), d_dwte.as<float>(), d_dwpe.as<float>(), d_dout.as<float>(),
                           d_tok.as<int32_t>(), B, T, C, V);
    check_bits(g.down(d_dwte), dwte, "encoder_backward dwte");
    check_bits(g.down(d_dwpe), dwpe, "encoder_backward dwpe");
  }
}

TEST_CASE("layernorm forward and backward match the CPU") {
  require_device();
  Gpu g;
  for (const OpShape& sh : kOpShapes) {
    const int N = sh.B * sh.T, C = sh.C;
    CAPTURE(N);
    const auto inp = randn(static_cast<size_t>(N) * C, 7, 2.0f);
    const auto w = randn(static_cast<size_t>(C), 8), b = randn(static_cast<size_t>(C), 9);
    std::vector<float> out(inp.size()), mean(static_cast<size_t>(N)), rstd(static_cast<size_t>(N));
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N,
                           C);
    auto d_inp = g.up(inp), d_w = g.up(w), d_b = g.up(b);
    DeviceBuffer d_out(out.size() * 4), d_mean(mean.size() * 4), d_rstd(rstd.size() * 4);
    cuda::layernorm_forward(g.s(), d_out.as<float>(), d_mean.as<float>(), d_rstd.as<float>(),
                            d_inp.as<float>(), d_w.as<float>(), d_b.as<float>(), N, C);
    check_close(g.down(d_out), out, kReduce, "layernorm_forward out");
    check_close(g.down(d_mean), mean, kReduce, "layernorm_forward mean");
    check_close(g.down(d_rstd), rstd, kReduce, "layernorm_forward rstd");

    // The backward from the CPU's saved statistics on both sides.
    const auto dout = randn(inp.size(), 10);
    auto dinp = randn(inp.size(), 11), dw = randn(static_cast<size_t>(C), 12),
         db = randn(static_cast<size_t>(C), 13);
    auto d_dout = g.up(dout), d_dinp = g.up(dinp), d_dw = g.up(dw), d_db = g.up(db);
    auto d_m = g.up(mean), d_r = g.up(rstd);
    cpu::layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(),
                            mean.data(), rstd.data(), N, C);
    cuda::layernorm_backward(g.s(), d_dinp.as<float>(), d_dw.as<float>(), d_db.as<float>(),
                             d_dout.as<float>(), d_inp.as<float>(), d_w.as<float>(),
                             d_m.as<float>(), d_r.as<float>(), N, C);
    check_close(g.down(d_dinp), dinp, kReduce, "layernorm_backward dinp");
    check_close(g.down(d_dw), dw, kReduce, "layernorm_backward dweight");
    check_close(g.down(d_db), db, kReduce, "layernorm_backward dbias");
  }
}

TEST_CASE("matmul forward and backward match the CPU, with and without a bias") {
  require_device();
  Gpu g;
  for (const OpShape& sh : kOpShapes) {
    const int N = sh.B * sh.T, C = sh.C;
    for (int OC : {3 * C, sh.V}) {
      for (bool with_bias : {true, false}) {
        CAPTURE(N);
        CAPTURE(OC);
        CAPTURE(with_bias);
        const auto inp = randn(static_cast<size_t>(N) * C, 14),
                   w = randn(static_cast<size_t>(OC) * C, 15, 0.1f);
        const auto bias = randn(static_cast<size_t>(OC), 16);
        const float* cpu_bias = with_bias ? bias.data() : nullptr;
        std::vector<float> out(static_cast<size_t>(N) * OC);
        cpu::matmul_forward(out.data(), inp.data(), w.data(), cpu_bias, N, C, OC);
        auto d_inp = g.up(inp), d_w = g.up(w), d_bias = g.up(bias);
        DeviceBuffer d_out(out.size() * 4);
        cuda::matmul_forward(g.h(), g.s(), d_out.as<float>(), d_inp.as<float>(), d_w.as<float>(),
                             with_bias ? d_bias.as<float>() : nullptr, N, C, OC);
        check_close(g.down(d_out), out, kReduce, "matmul_forward");

        const auto dout = randn(out.size(), 17);
        auto dinp = randn(inp.size(), 18), dw = randn(w.size(), 19),
             db = randn(static_cast<size_t>(OC), 20);
        auto d_dout = g.up(dout), d_dinp = g.up(dinp), d_dw = g.up(dw), d_db = g.up(db);
        cpu::matmul_backward(dinp.data(), dw.data(), with_bias ? db.data() : nullptr, dout.data(),
                             inp.data(), w.data(), N, C, OC);
        cuda::matmul_backward(g.h(), g.s(), d_dinp.as<float>(), d_dw.as<float>(),
                              with_bias ? d_db.as<float>() : nullptr, d_dout.as<float>(),
                              d_inp.as<float>(), d_w.as<float>(), N, C, OC);
        check_close(g.down(d_dinp), dinp, kReduce, "matmul_backward dinp");
        check_close(g.down(d_dw), dw, kReduce, "matmul_backward dweight");
        check_close(g.down(d_db), db, kReduce, "matmul_backward dbias");
      }
    }
  }
}

TEST_CASE("attention forward and backward match the CPU: causal mask, scale, packed qkv") {
  require_device();
  Gpu g;
  for (const OpShape& sh : kOpShapes) {
    const int B = sh.B, T = sh.T, C = sh.C, NH = sh.NH, N = B * T;
    CAPTURE(N);
    CAPTURE(NH);
    const auto qkv = randn(static_cast<size_t>(N) * 3 * C, 21);
    std::vector<float> out(static_cast<size_t>(N) * C), att(static_cast<size_t>(B) * NH * T * T),
        tt(static_cast<size_t>(T) * T);
    cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    auto d_qkv = g.up(qkv);
    DeviceBuffer d_out(out.size() * 4), d_att(att.size() * 4);
    DeviceBuffer scratch(cuda::attention_scratch_floats(B, T, C, NH) * sizeof(float));
    // Poison the attention buffer: the upper triangle must be written as 0.
    CUDA_CHECK(cudaMemsetAsync(d_att.as<void>(), 0xff, d_att.bytes(), g.s()));
    cuda::attention_forward(g.h(), g.s(), d_out.as<float>(), d_att.as<float>(), scratch.as<float>(),
                            d_qkv.as<float>(), B, T, C, NH);
    const auto got_att = g.down(d_att);
    check_close(got_att, att, kReduce, "attention_forward att");
    check_close(g.down(d_out), out, kReduce, "attention_forward out");
    size_t above = 0;
    for (size_t r = 0; r < static_cast<size_t>(B) * NH * T; ++r) {
      for (int t2 = int(r % static_cast<size_t>(T)) + 1; t2 < T; ++t2)
        above += got_att[r * T + t2] != 0.0f;
    }
    CHECK(above == 0);

    const auto dout = randn(out.size(), 22);
    auto dqkv = randn(qkv.size(), 23);
    auto d_dout = g.up(dout), d_dqkv = g.up(dqkv);
    cpu::attention_backward(dqkv.data(), tt.data(), dout.data(), qkv.data(), att.data(), B, T, C,
                            NH);
    cuda::attention_backward(g.h(), g.s(), d_dqkv.as<float>(), scratch.as<float>(),
                             d_dout.as<float>(), d_qkv.as<float>(), d_att.as<float>(), B, T, C, NH);
    check_close(g.down(d_dqkv), dqkv, kReduce, "attention_backward dqkv");
  }
}

TEST_CASE("gelu, residual and the cross-entropy match the CPU") {
  require_device();
  Gpu g;
  const size_t n = 100003;
  const auto x = randn(n, 24, 3.0f), y = randn(n, 25), dout = randn(n, 26);
  auto d_x = g.up(x), d_y = g.up(y), d_dout = g.up(dout);
  DeviceBuffer d_out(n * 4);
  std::vector<float> out(n);
  cpu::gelu_forward(out.data(), x.data(), int64_t(n));
  cuda::gelu_forward(g.s(), d_out.as<float>(), d_x.as<float>(), n);
  check_close(g.down(d_out), out, kMap, "gelu_forward");
  auto dinp = randn(n, 27);
  auto d_dinp = g.up(dinp);
  cpu::gelu_backward(dinp.data(), x.data(), dout.data(), int64_t(n));
  cuda::gelu_backward(g.s(), d_dinp.as<float>(), d_x.as<float>(), d_dout.as<float>(), n);
  check_close(g.down(d_dinp), dinp, kMap, "gelu_backward");
  cpu::residual_forward(out.data(), x.data(), y.data(), int64_t(n));
  cuda::residual_forward(g.s(), d_out.as<float>(), d_x.as<float>(), d_y.as<float>(), n);
  check_bits(g.down(d_out), out, "residual_forward");

  for (const OpShape& sh : kOpShapes) {
    const int N = sh.B * sh.T, V = sh.V;
    CAPTURE(N);
    const auto logits = randn(static_cast<size_t>(N) * V, 28, 2.0f);
    const auto targets = random_ids(static_cast<size_t>(N), V, 29);
    std::vector<float> dlogits(logits.size());
    const auto want =
        cpu::crossentropy_forward_backward(dlogits.data(), logits.data(), targets.data(), N, V);
    auto d_logits = g.up(logits), d_targets = g.up(targets);
    DeviceBuffer d_dlogits(dlogits.size() * 4), row_loss(static_cast<size_t>(N) * 4),
        row_hit(static_cast<size_t>(N) * 4);
    DeviceBuffer sums(sizeof(cuda::LossStats));
    cuda::crossentropy_forward_backward(g.s(), sums.as<cuda::LossStats>(), row_loss.as<float>(),
                                        row_hit.as<int>(), d_dlogits.as<float>(),
                                        d_logits.as<float>(), d_targets.as<int32_t>(), N, V);
    check_close(g.down(d_dlogits), dlogits, kReduce, "crossentropy dlogits");
    const auto got = g.down<cuda::LossStats>(sums).at(0);
    CHECK(got.loss_sum == doctest::Approx(want.loss_sum).epsilon(1e-5));
    CHECK(got.correct == want.correct);
  }
}

TEST_CASE("element-wise kernels cover buffers longer than one grid-stride pass") {
  require_device();
  Gpu g;
  // grid_for() caps a launch at 65536 blocks of 256 threads, 16.7M elements:
  // every buffer here is longer, so each kernel's loop wraps.
  const size_t cap = size_t{65536} * cuda::kThreads;
  {
    const size_t n = cap + 4099;
    const auto x = randn(n, 30, 3.0f), y = randn(n, 31);
    auto d_x = g.up(x), d_y = g.up(y);
    DeviceBuffer d_out(n * 4);
    std::vector<float> out(n);
    cpu::gelu_forward(out.data(), x.data(), int64_t(n));
    cuda::gelu_forward(g.s(), d_out.as<float>(), d_x.as<float>(), n);
    check_close(g.down(d_out), out, kMap, "gelu_forward, long");
    cpu::residual_forward(out.data(), x.data(), y.data(), int64_t(n));
    cuda::residual_forward(g.s(), d_out.as<float>(), d_x.as<float>(), d_y.as<float>(), n);
    check_bits(g.down(d_out), out, "residual_forward, long");
  }
  {
    // Encoder: B T C > cap; matmul's bias add: N OC > cap.
    const int B = 64, T = 512, C = 520, V = 256, N = B * T;
    REQUIRE(static_cast<size_t>(N) * C > cap);
    const auto tokens = random_ids(static_cast<size_t>(N), V, 32);
    const auto wte = randn(static_cast<size_t>(V) * C, 33),
               wpe = randn(static_cast<size_t>(T) * C, 34);
    std::vector<float> out(static_cast<size_t>(N) * C);
    cpu::encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    auto d_tok = g.up(tokens), d_wte = g.up(wte), d_wpe = g.up(wpe);
    DeviceBuffer d_out(out.size() * 4);
    cuda::encoder_forward(g.s(), d_out.as<float>(), d_tok.as<int32_t>(), d_wte.as<float>(),
                          d_wpe.as<float>(), B, T, C);
    check_bits(g.down(d_out), out, "encoder_forward, long");
  }
  {
    const int N = 16384, C = 64, OC = 1040;
    REQUIRE(static_cast<size_t>(N) * OC > cap);
    const auto inp = randn(static_cast<size_t>(N) * C, 35),
               w = randn(static_cast<size_t>(OC) * C, 36, 0.1f);
    const auto bias = randn(static_cast<size_t>(OC), 37);
    std::vector<float> out(static_cast<size_t>(N) * OC);
    cpu::matmul_forward(out.data(), inp.data(), w.data(), bias.data(), N, C, OC);
    auto d_inp = g.up(inp), d_w = g.up(w), d_bias = g.up(bias);
    DeviceBuffer d_out(out.size() * 4);
    cuda::matmul_forward(g.h(), g.s(), d_out.as<float>(), d_inp.as<float>(), d_w.as<float>(),
                         d_bias.as<float>(), N, C, OC);
    check_close(g.down(d_out), out, kReduce, "matmul_forward, long");
  }
  {
    // Attention's head split/merge kernels: B T C > cap (short rows keep the
    // CPU reference cheap), and B NH = 65536 (row, head) pairs, more than one
    // strided-batched call takes (gpt_ops.cu splits them); also N = 32768
    // positions in the loss below.
    const int B = 8192, T = 4, C = 520, NH = 8, N = B * T;
    REQUIRE(B * NH > 63 * 1024);
    REQUIRE(static_cast<size_t>(N) * C > cap);
    const auto qkv = randn(static_cast<size_t>(N) * 3 * C, 38, 0.2f);
    std::vector<float> out(static_cast<size_t>(N) * C), att(static_cast<size_t>(B) * NH * T * T),
        tt(static_cast<size_t>(T) * T);
    cpu::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    auto d_qkv = g.up(qkv);
    DeviceBuffer d_out(out.size() * 4), d_att(att.size() * 4);
    DeviceBuffer scratch(cuda::attention_scratch_floats(B, T, C, NH) * sizeof(float));
    cuda::attention_forward(g.h(), g.s(), d_out.as<float>(), d_att.as<float>(), scratch.as<float>(),
                            d_qkv.as<float>(), B, T, C, NH);
    check_close(g.down(d_out), out, kReduce, "attention_forward, long");
    const auto dout = randn(out.size(), 39);
    std::vector<float> dqkv(qkv.size(), 0.0f);
    auto d_dout = g.up(dout), d_dqkv = g.up(dqkv);
    cpu::attention_backward(dqkv.data(), tt.data(), dout.data(), qkv.data(), att.data(), B, T, C,
                            NH);
    cuda::attention_backward(g.h(), g.s(), d_dqkv.as<float>(), scratch.as<float>(),
                             d_dout.as<float>(), d_qkv.as<float>(), d_att.as<float>(), B, T, C, NH);
    check_close(g.down(d_dqkv), dqkv, kReduce, "attention_backward, long");

    const int V = 256;
    const auto logits = randn(static_cast<size_t>(N) * V, 40, 2.0f);
    const auto targets = random_ids(static_cast<size_t>(N), V, 41);
    const auto want =
        cpu::crossentropy_forward_backward<float>(nullptr, logits.data(), targets.data(), N, V);
    auto d_logits = g.up(logits), d_targets = g.up(targets);
    DeviceBuffer row_loss(static_cast<size_t>(N) * 4), row_hit(static_cast<size_t>(N) * 4),
        sums(sizeof(cuda::LossStats));
    cuda::crossentropy_forward_backward(g.s(), sums.as<cuda::LossStats>(), row_loss.as<float>(),
                                        row_hit.as<int>(), nullptr, d_logits.as<float>(),
                                        d_targets.as<int32_t>(), N, V);
    const auto got = g.down<cuda::LossStats>(sums).at(0);
    CHECK(got.loss_sum == doctest::Approx(want.loss_sum).epsilon(1e-5));
    CHECK(got.correct == want.correct);
  }
}

namespace {

// A small GPT whose batch has B T = 5 x 64 = 320 positions, more than the
// 256 threads of the loss reduction; T below block exercises a short batch.
const GptSpec kModelSpec{256, 80, 2, 4, 64, 3};
constexpr int kB = 5, kT = 64;

struct ModelRun {
  double loss_sum = 0.0;
  int64_t correct = 0;
  std::vector<float> logits, grads;
};

ModelRun run_cuda(const std::vector<float>& params, const std::vector<int32_t>& tokens,
                  const std::vector<int32_t>& targets) {
  cuda::CudaGptModel model(kModelSpec, kB + 1);
  DeviceBuffer d_params(params.size() * 4), d_grads(params.size() * 4);
  CUDA_CHECK(cudaMemcpyAsync(d_params.as<void>(), params.data(), d_params.bytes(),
                             cudaMemcpyHostToDevice, model.stream()));
  ModelRun r;
  const auto sums =
      model.forward(d_params.as<float>(), tokens.data(), targets.data(), kB, kT, true);
  r.loss_sum = sums.loss_sum;
  r.correct = sums.correct;
  r.logits.resize(static_cast<size_t>(kB) * kT * kModelSpec.vocab);
  model.read_logits(r.logits);
  model.backward(d_params.as<float>(), d_grads.as<float>());
  r.grads.resize(params.size());
  CUDA_CHECK(cudaMemcpyAsync(r.grads.data(), d_grads.as<void>(), d_grads.bytes(),
                             cudaMemcpyDeviceToHost, model.stream()));
  model.synchronize();
  return r;
}

}  // namespace

TEST_CASE("CudaGptModel matches cpu::GptModel<float>: logits, loss, every gradient") {
  require_device();
  std::vector<float> params(kModelSpec.param_count());
  init_parameters(kModelSpec, params);
  // Non-trivial LayerNorm and bias values, so that no gradient path hides
  // behind a weight of 1 or a bias of 0.
  {
    const auto noise = randn(params.size(), 42, 0.02f);
    for (size_t i = 0; i < params.size(); ++i) params[i] += noise[i];
  }
  const auto tokens = random_ids(static_cast<size_t>(kB) * kT, 256, 43);
  const auto targets = random_ids(static_cast<size_t>(kB) * kT, 256, 44);

  cpu::GptModel<float> ref(kModelSpec, kB);
  const auto want = ref.forward(params.data(), tokens.data(), targets.data(), kB, kT, true);
  const std::vector<float> want_logits(
      ref.logits(), ref.logits() + static_cast<size_t>(kB) * kT * kModelSpec.vocab);
  std::vector<float> want_grads(params.size());
  ref.backward(params.data(), want_grads.data());

  const ModelRun got = run_cuda(params, tokens, targets);
  CHECK(got.loss_sum == doctest::Approx(want.loss_sum).epsilon(1e-5));
  check_close(got.logits, want_logits, kModel, "logits");
  for (const TensorSpec& t : kModelSpec.tensor_table()) {
    const auto first = static_cast<std::ptrdiff_t>(t.offset);
    const auto last = static_cast<std::ptrdiff_t>(t.offset + t.size);
    check_close(std::vector<float>(got.grads.begin() + first, got.grads.begin() + last),
                std::vector<float>(want_grads.begin() + first, want_grads.begin() + last), kGrad,
                "gradient of " + t.name);
  }
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < params.size(); ++i) {
    num += std::pow(double(got.grads[i]) - want_grads[i], 2);
    den += double(want_grads[i]) * want_grads[i];
  }
  INFO("relative L2 error of the whole gradient " << std::sqrt(num / den));
  CHECK(std::sqrt(num / den) < 1e-4);
  // The arg-max can flip only where two logits tie within rounding.
  CHECK(std::abs(got.correct - want.correct) <= 1);
}

TEST_CASE("CudaGptModel repeats itself bit for bit") {
  require_device();
  std::vector<float> params(kModelSpec.param_count());
  init_parameters(kModelSpec, params);
  const auto tokens = random_ids(static_cast<size_t>(kB) * kT, 256, 45);
  const auto targets = random_ids(static_cast<size_t>(kB) * kT, 256, 46);
  const ModelRun a = run_cuda(params, tokens, targets);
  const ModelRun b = run_cuda(params, tokens, targets);
  CHECK(std::memcmp(&a.loss_sum, &b.loss_sum, sizeof(double)) == 0);
  CHECK(a.correct == b.correct);
  check_bits(a.logits, b.logits, "logits, two runs");
  check_bits(a.grads, b.grads, "gradients, two runs");
}

TEST_CASE("CudaGptModel checks its inputs on the host and fails to build when memory is short") {
  require_device();
  cuda::CudaGptModel model(kModelSpec, 2);
  DeviceBuffer d_params(kModelSpec.param_count() * 4);
  std::vector<int32_t> ids(size_t(2) * kT, 7);
  CHECK_THROWS_AS(model.forward(d_params.as<float>(), ids.data(), ids.data(), 3, kT, true),
                  std::invalid_argument);
  CHECK_THROWS_AS(model.forward(d_params.as<float>(), ids.data(), ids.data(), 2, 81, true),
                  std::invalid_argument);
  ids[5] = 256;
  CHECK_THROWS_AS(model.forward(d_params.as<float>(), ids.data(), nullptr, 2, kT, false),
                  std::out_of_range);
  float* none = nullptr;
  CHECK_THROWS_AS(model.backward(d_params.as<float>(), none), std::logic_error);
  // Several terabytes of activations: the constructor's allocation fails.
  const GptSpec huge{256, 1024, 12, 12, 768, 1};
  CHECK_THROWS_AS(cuda::CudaGptModel(huge, 100000), cuda::CudaError);
}
