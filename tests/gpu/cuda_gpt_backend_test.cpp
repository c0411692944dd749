// The CUDA GPT backend (make_backend with device "cuda" and model.type gpt)
// against the CPU GPT backend through the Backend interface only: the loss
// and every gradient of one step, clipping to the stated norm, 10 AdamW steps
// with grad_clip and weight decay on, evaluation (nats per byte and next-byte
// accuracy), the averaging and checkpoint paths, bit-identical repeats, and a
// device too small failing make_backend. Exits 77 (skipped) without a device.
//
// Gradients are read off one plain SGD step with lr 1024 ((x0 - x1) / 1024 =
// g; a power of two scales exactly), so they carry the rounding of
// x0 - 1024 g in float: about 6e-8 |x0| / 1024, far below the per-tensor
// bound of cuda_gpt_parity_test (1e-3 of max(|g|, 1% of the tensor's largest
// |g|)), which this test reuses: the passes are the ones that test checks,
// here reached through the backend.
// AdamW's first step is lr sign(g), so an element whose gradient is near 0
// can step either way on either device; the 10-step comparison therefore
// judges each tensor's whole update by its relative L2 error (bound 1e-3,
// not yet measured: this test has not run on a GPU), leaving out the one part
// whose gradient is 0 in exact arithmetic (the key bias, see below), and the
// losses to 1e-4.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "gossip/train/gpt.hpp"
#include "gpu_test_util.hpp"

using namespace gossip::train;
using gpu_test::make;
using gpu_test::params_of;
using gpu_test::require_device;
using gpu_test::state_of;

namespace {

ModelSpec gpt_model() {
  ModelSpec m;
  m.family = ModelFamily::kGpt;
  m.gpt.block = 32;
  m.gpt.layers = 2;
  m.gpt.heads = 4;
  m.gpt.embd = 64;
  m.seed = 3;
  return m;
}

// rows windows of block + 1 random bytes.
struct Windows {
  std::vector<int32_t> ids;
  int rows = 0, cols = 0;
  Windows(int rows_, int block, uint32_t seed) : rows(rows_), cols(block + 1) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    ids.resize(static_cast<size_t>(rows) * cols);
    for (int32_t& v : ids) v = byte(gen);
  }
  gossip::data::Batch batch(int begin, int n) const {
    gossip::data::Batch b;
    b.rows = n;
    b.cols = cols;
    b.tokens = ids.data() + static_cast<size_t>(begin) * cols;
    return b;
  }
};

double worst_relative(const float* got, const float* want, size_t n) {
  double largest = 0.0;
  for (size_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(double{want[i]}));
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double scale = std::max(std::fabs(double{want[i]}), 0.01 * largest);
    const double err = std::fabs(double{got[i]} - want[i]);
    double r = scale > 0.0 ? err / scale : (err > 0.0 ? 1e30 : 0.0);
    if (std::isnan(r)) r = std::numeric_limits<double>::infinity();
    worst = std::max(worst, r);
  }
  return worst;
}

double relative_l2(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

constexpr float kProbeLr = 1024.0f;  // the SGD step that reads off a gradient

// (x0 - x1) / lr per element, in double.
std::vector<double> moved(const std::vector<float>& x0, const std::vector<float>& x1,
                          double lr = 1.0) {
  std::vector<double> d(x0.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = (double{x0[i]} - x1[i]) / lr;
  return d;
}

void check_bits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  REQUIRE(a.size() == b.size());
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += std::memcmp(&a[i], &b[i], 4) != 0;
  INFO(what << ": " << differ << " of " << a.size() << " values differ in their bits");
  CHECK(differ == 0);
}

}  // namespace

TEST_CASE("cuda gpt backend: same initial parameters, loss and every gradient as the CPU's") {
  require_device();
  const ModelSpec m = gpt_model();
  OptimizerSpec sgd;
  sgd.momentum = 0.0;  // x1 = x0 - lr g
  auto gpu = make(m, sgd, "cuda", 8);
  auto cpu = make(m, sgd, "cpu", 8);
  CHECK(gpu->device_name().rfind("cuda:", 0) == 0);
  const std::vector<float> x0 = params_of(*cpu);
  check_bits(params_of(*gpu), x0, "initial parameters");
  const Windows data(6, m.gpt.block, 11);
  const float gpu_loss = gpu->train_step(data.batch(0, 6), kProbeLr);
  const float cpu_loss = cpu->train_step(data.batch(0, 6), kProbeLr);
  CHECK(gpu_loss == doctest::Approx(cpu_loss).epsilon(1e-5));
  const std::vector<double> g_gpu = moved(x0, params_of(*gpu), kProbeLr);
  const std::vector<double> g_cpu = moved(x0, params_of(*cpu), kProbeLr);
  for (const TensorSpec& t : m.gpt.tensor_table()) {
    std::vector<float> a(g_gpu.begin() + static_cast<std::ptrdiff_t>(t.offset),
                         g_gpu.begin() + static_cast<std::ptrdiff_t>(t.offset + t.size));
    std::vector<float> b(g_cpu.begin() + static_cast<std::ptrdiff_t>(t.offset),
                         g_cpu.begin() + static_cast<std::ptrdiff_t>(t.offset + t.size));
    const double worst = worst_relative(a.data(), b.data(), a.size());
    INFO("gradient of " << t.name << ": worst relative error " << worst);
    CHECK(worst <= 1e-3);
  }
  CHECK(relative_l2(g_gpu, g_cpu) < 1e-4);
  CHECK(gpu->optimizer_steps() == 1);
}

TEST_CASE("cuda gpt backend: grad_clip scales the step to the stated norm, as the CPU does") {
  require_device();
  const ModelSpec m = gpt_model();
  const Windows data(4, m.gpt.block, 12);
  OptimizerSpec sgd;
  sgd.momentum = 0.0;
  auto free_run = make(m, sgd, "cpu", 4);
  const std::vector<float> x0 = params_of(*free_run);
  free_run->train_step(data.batch(0, 4), kProbeLr);
  double norm = 0.0;
  for (double v : moved(x0, params_of(*free_run), kProbeLr)) norm += v * v;
  norm = std::sqrt(norm);
  REQUIRE(norm > 0.0);
  sgd.grad_clip = 0.3 * norm;
  auto gpu = make(m, sgd, "cuda", 4);
  auto cpu = make(m, sgd, "cpu", 4);
  gpu->train_step(data.batch(0, 4), kProbeLr);
  cpu->train_step(data.batch(0, 4), kProbeLr);
  const std::vector<double> step_gpu = moved(x0, params_of(*gpu), kProbeLr);
  const std::vector<double> step_cpu = moved(x0, params_of(*cpu), kProbeLr);
  double got = 0.0;
  for (double v : step_gpu) got += v * v;
  CHECK(std::sqrt(got) == doctest::Approx(sgd.grad_clip).epsilon(1e-4));
  CHECK(relative_l2(step_gpu, step_cpu) < 1e-4);
}

TEST_CASE("cuda gpt backend: 10 AdamW steps with grad_clip and decay follow the CPU") {
  require_device();
  const ModelSpec m = gpt_model();
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  o.lr = 1e-3;
  o.beta2 = 0.95;
  o.weight_decay = 0.1;
  o.grad_clip = 0.5;  // below the first steps' norms: the clip acts
  auto gpu = make(m, o, "cuda", 8);
  auto cpu = make(m, o, "cpu", 8);
  const std::vector<float> x0 = params_of(*cpu);
  const Windows data(80, m.gpt.block, 13);
  for (int s = 0; s < 10; ++s) {
    const float lg = gpu->train_step(data.batch(8 * s, 8), static_cast<float>(o.lr));
    const float lc = cpu->train_step(data.batch(8 * s, 8), static_cast<float>(o.lr));
    INFO("step " << s << ": gpu " << lg << " cpu " << lc);
    CHECK(lg == doctest::Approx(lc).epsilon(1e-4));
  }
  CHECK(gpu->optimizer_steps() == 10);
  const std::vector<double> up_gpu = moved(x0, params_of(*gpu));
  const std::vector<double> up_cpu = moved(x0, params_of(*cpu));
  const std::vector<float> s_gpu = state_of(*gpu), s_cpu = state_of(*cpu);
  const size_t n = x0.size();
  for (const TensorSpec& t : m.gpt.tensor_table()) {
    const auto a = static_cast<std::ptrdiff_t>(t.offset);
    const auto b = static_cast<std::ptrdiff_t>(t.offset + t.size);
    std::vector<double> ug(up_gpu.begin() + a, up_gpu.begin() + b);
    std::vector<double> uc(up_cpu.begin() + a, up_cpu.begin() + b);
    if (t.name.find("attn.c_attn.bias") != std::string::npos) {
      // The key bias adds q.b_k to every score of a query: softmax ignores
      // it, so its gradient is 0 but for rounding, and Adam turns that noise
      // into steps of either sign on either device. Its q and v thirds count.
      const size_t c = static_cast<size_t>(m.gpt.embd);
      std::fill(ug.begin() + static_cast<std::ptrdiff_t>(c),
                ug.begin() + static_cast<std::ptrdiff_t>(2 * c), 0.0);
      std::fill(uc.begin() + static_cast<std::ptrdiff_t>(c),
                uc.begin() + static_cast<std::ptrdiff_t>(2 * c), 0.0);
    }
    INFO(t.name << ": relative L2 error of the update " << relative_l2(ug, uc));
    CHECK(relative_l2(ug, uc) < 1e-3);
    for (size_t half : {size_t{0}, n}) {  // m, then v
      const std::vector<double> sg(s_gpu.begin() + static_cast<std::ptrdiff_t>(half) + a,
                                   s_gpu.begin() + static_cast<std::ptrdiff_t>(half) + b);
      const std::vector<double> sc(s_cpu.begin() + static_cast<std::ptrdiff_t>(half) + a,
                                   s_cpu.begin() + static_cast<std::ptrdiff_t>(half) + b);
      INFO(t.name << (half ? " v" : " m") << ": relative L2 error " << relative_l2(sg, sc));
      CHECK(relative_l2(sg, sc) < 1e-3);
    }
  }
}

TEST_CASE("cuda gpt backend: two runs agree bit for bit (clip and decay on)") {
  require_device();
  const ModelSpec m = gpt_model();
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  o.lr = 1e-3;
  o.weight_decay = 0.1;
  o.grad_clip = 0.5;
  const Windows data(40, m.gpt.block, 14);
  std::vector<float> losses[2], params[2], state[2];
  for (int run = 0; run < 2; ++run) {
    auto gpu = make(m, o, "cuda", 8);
    for (int s = 0; s < 5; ++s) losses[run].push_back(gpu->train_step(data.batch(8 * s, 8), 1e-3f));
    params[run] = params_of(*gpu);
    state[run] = state_of(*gpu);
  }
  check_bits(losses[0], losses[1], "losses");
  check_bits(params[0], params[1], "parameters");
  check_bits(state[0], state[1], "optimizer state");
}

TEST_CASE("cuda gpt backend: evaluate gives the CPU's nats per byte and next-byte accuracy") {
  require_device();
  const ModelSpec m = gpt_model();
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  o.lr = 3e-3;
  auto gpu = make(m, o, "cuda", 4);
  auto cpu = make(m, o, "cpu", 4);
  // A few steps so the prediction is not uniform, then the same parameters.
  const Windows train(16, m.gpt.block, 15);
  for (int s = 0; s < 4; ++s) gpu->train_step(train.batch(4 * s, 4), 3e-3f);
  cpu->write_parameters(params_of(*gpu));
  const Windows eval(11, m.gpt.block, 16);  // more windows than max_batch: chunked
  const EvalStats a = gpu->evaluate(eval.batch(0, 11));
  const EvalStats b = cpu->evaluate(eval.batch(0, 11));
  CHECK(a.rows == 11 * m.gpt.block);
  CHECK(a.rows == b.rows);
  CHECK(a.mean_loss() == doctest::Approx(b.mean_loss()).epsilon(1e-5));
  CHECK(std::abs(a.correct - b.correct) <= 2);  // arg-max ties within rounding
  const std::vector<float> before = params_of(*gpu);
  const std::vector<float> state_before = state_of(*gpu);
  gpu->evaluate(eval.batch(0, 11));
  check_bits(params_of(*gpu), before, "parameters after evaluate");
  check_bits(state_of(*gpu), state_before, "state after evaluate");
  CHECK(gpu->optimizer_steps() == 4);
}

TEST_CASE("cuda gpt backend: snapshot, apply_delta and whole-state round trips") {
  require_device();
  const ModelSpec m = gpt_model();
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  o.lr = 1e-3;
  o.grad_clip = 1.0;
  auto gpu = make(m, o, "cuda", 4);
  auto cpu = make(m, o, "cpu", 4);
  const Windows data(8, m.gpt.block, 17);
  gpu->train_step(data.batch(0, 4), 1e-3f);
  // The whole state onto the CPU: both then take the same next step.
  cpu->write_parameters(params_of(*gpu));
  cpu->write_optimizer_state(state_of(*gpu));
  cpu->set_optimizer_steps(gpu->optimizer_steps());
  const std::span<const float> view = gpu->snapshot();
  const std::vector<float> snap(view.begin(), view.end());
  check_bits(snap, params_of(*gpu), "snapshot");
  std::vector<float> other(snap.size());
  for (size_t i = 0; i < other.size(); ++i) other[i] = snap[i] + 0.01f * std::sin(float(i));
  gpu->apply_delta(0.5f, other, snap);
  cpu->apply_delta(0.5f, other, snap);
  gpu_test::check_close(params_of(*gpu), params_of(*cpu), 1e-6, 1e-7, "after apply_delta");
  const float lg = gpu->train_step(data.batch(4, 4), 1e-3f);
  const float lc = cpu->train_step(data.batch(4, 4), 1e-3f);
  CHECK(lg == doctest::Approx(lc).epsilon(1e-4));
  std::vector<float> wrong(3);
  CHECK_THROWS_AS(gpu->read_parameters(wrong), std::invalid_argument);
  CHECK_THROWS_AS(gpu->write_optimizer_state(wrong), std::invalid_argument);
  gossip::data::Batch too_long = data.batch(0, 1);
  too_long.cols = m.gpt.block + 2;
  CHECK_THROWS_AS(gpu->train_step(too_long, 1e-3f), std::invalid_argument);
  CHECK_THROWS_AS(gpu->train_step(data.batch(0, 5), 1e-3f), std::invalid_argument);
}

TEST_CASE("cuda gpt backend: a model too large for the device fails make_backend") {
  require_device();
  ModelSpec m;
  m.family = ModelFamily::kGpt;
  m.gpt = GptSpec{256, 1024, 12, 12, 768, 1};
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  BackendOptions opts;
  opts.device = "cuda";
  opts.max_batch = 100000;  // terabytes of activations
  auto b = make_backend(m, o, opts);
  REQUIRE_FALSE(b.is_ok());
  const std::string msg = b.status().message();
  INFO(msg);
  CHECK(msg.find("gpt vocab 256 block 1024") != std::string::npos);
  CHECK(msg.find("max_batch 100000") != std::string::npos);
  // The device stays usable.
  auto small = make(gpt_model(), o, "cuda", 2);
  CHECK(small->param_count() == gpt_model().param_count());
}
