// The GPT's CUDA launchers, and the optimizer step's, refuse bad shapes and
// null buffers before they touch the device: every check below throws CudaError naming the
// operation without a CUDA call being made, so it runs on machines with no GPU and no driver. Built
// only with the CUDA backend (it includes its internal header).
#include <doctest/doctest.h>

#include <string>

#include "../../src/train/cuda/gpt_ops.cuh"

using namespace gossip::train;
using cuda::CudaError;

namespace {

// Never dereferenced: the launchers must throw before using any buffer.
float* fake() {
  static float f[1];
  return f;
}
const int32_t* fake_ids() {
  static int32_t i[1];
  return i;
}

template <typename F>
void check_refused(F&& call, const std::string& op, const std::string& why) {
  try {
    call();
    FAIL("no error from " << op);
  } catch (const CudaError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find(op) != std::string::npos);
    CHECK(what.find(why) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("GPT launchers refuse non-positive dimensions") {
  cudaStream_t s = nullptr;
  cublasHandle_t h = nullptr;
  float* f = fake();
  check_refused([&] { cuda::encoder_forward(s, f, fake_ids(), f, f, 0, 4, 8); }, "encoder_forward",
                ">= 1");
  check_refused([&] { cuda::encoder_backward(s, f, f, f, fake_ids(), 2, 4, 8, 0); },
                "encoder_backward", ">= 1");
  check_refused([&] { cuda::layernorm_forward(s, f, f, f, f, f, f, 3, 0); }, "layernorm_forward",
                ">= 1");
  check_refused([&] { cuda::layernorm_backward(s, f, f, f, f, f, f, f, f, -1, 8); },
                "layernorm_backward", ">= 1");
  check_refused([&] { cuda::matmul_forward(h, s, f, f, f, f, 3, 8, 0); }, "matmul_forward", ">= 1");
  check_refused([&] { cuda::matmul_backward(h, s, f, f, f, f, f, f, 0, 8, 8); }, "matmul_backward",
                ">= 1");
  check_refused([&] { cuda::attention_forward(h, s, f, f, f, f, 2, 0, 8, 2); }, "attention_forward",
                ">= 1");
  check_refused(
      [&] {
        cuda::crossentropy_forward_backward(s, nullptr, f, nullptr, f, f, fake_ids(), 0, 256);
      },
      "crossentropy_forward_backward", ">= 1");
}

TEST_CASE("GPT launchers refuse heads that do not divide the channels") {
  cudaStream_t s = nullptr;
  cublasHandle_t h = nullptr;
  float* f = fake();
  check_refused([&] { cuda::attention_forward(h, s, f, f, f, f, 2, 3, 10, 4); },
                "attention_forward", "not divisible by heads 4");
  check_refused([&] { cuda::attention_backward(h, s, f, f, f, f, f, 2, 3, 10, 3); },
                "attention_backward", "not divisible by heads 3");
}

TEST_CASE("GPT launchers refuse null buffers") {
  cudaStream_t s = nullptr;
  cublasHandle_t h = nullptr;
  float* f = fake();
  check_refused([&] { cuda::encoder_forward(s, f, nullptr, f, f, 2, 4, 8); }, "encoder_forward",
                "null buffer");
  check_refused([&] { cuda::layernorm_backward(s, f, nullptr, f, f, f, f, f, f, 2, 8); },
                "layernorm_backward", "null buffer");
  check_refused([&] { cuda::matmul_forward(h, s, f, nullptr, f, f, 2, 8, 8); }, "matmul_forward",
                "null buffer");
  check_refused([&] { cuda::matmul_backward(h, s, nullptr, f, f, f, f, f, 2, 8, 8); },
                "matmul_backward", "null buffer");
  check_refused([&] { cuda::attention_forward(h, s, f, f, nullptr, f, 2, 3, 8, 2); },
                "attention_forward", "null buffer");
  check_refused([&] { cuda::attention_backward(h, s, f, f, f, f, nullptr, 2, 3, 8, 2); },
                "attention_backward", "null buffer");
  check_refused([&] { cuda::gelu_forward(s, nullptr, f, 5); }, "gelu_forward", "null buffer");
  check_refused([&] { cuda::gelu_backward(s, f, f, nullptr, 5); }, "gelu_backward", "null buffer");
  check_refused([&] { cuda::residual_forward(s, f, nullptr, f, 5); }, "residual_forward",
                "null buffer");
  check_refused(
      [&] {
        cuda::crossentropy_forward_backward(s, nullptr, f, nullptr, f, f, fake_ids(), 4, 256);
      },
      "crossentropy_forward_backward", "null buffer");
}

TEST_CASE("the optimizer step's launchers refuse null buffers and a clip norm <= 0") {
  cudaStream_t s = nullptr;
  float* f = fake();
  double partials[1];
  check_refused([&] { cuda::grad_clip_factor(s, f, nullptr, f, 5, 1.0); }, "grad_clip_factor",
                "null buffer");
  check_refused([&] { cuda::grad_clip_factor(s, f, partials, f, 5, 0.0); }, "grad_clip_factor",
                "max_norm must be > 0");
  check_refused(
      [&] {
        cuda::adam_update(s, f, f, nullptr, f, nullptr, 5, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f,
                          1.0f, true);
      },
      "adamw_update", "null buffer");
  check_refused(
      [&] { cuda::sgd_update(s, f, nullptr, nullptr, nullptr, 5, 0.1f, 0.0f, 0.0f, false); },
      "sgd_update", "null buffer");
}
