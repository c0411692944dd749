// CUDA backend state handling against the CPU backend: snapshot, apply_delta
// (also right behind an asynchronous step), parameter and optimizer-state
// round trips, moving a CPU replica's state onto the GPU and training on,
// determinism run to run, and the errors a caller can provoke. Exits 77
// (skipped) without a CUDA device.
#include <stdexcept>

#include "gpu_test_util.hpp"

using namespace gossip::train;
using namespace gossip::train::gpu_test;

namespace {

ModelSpec small_model(LossKind loss = LossKind::kSoftmaxCrossEntropy) {
  ModelSpec m;
  m.layers = loss == LossKind::kMse ? std::vector<int>{9, 21, 2} : std::vector<int>{12, 30, 19, 6};
  m.activation = Activation::kTanh;
  m.loss = loss;
  m.seed = 99;
  return m;
}

OptimizerSpec adam() {
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdam;
  o.lr = 2e-3;
  return o;
}

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

}  // namespace

TEST_CASE("snapshot returns the current parameters and stays valid until the next call") {
  require_device();
  const ModelSpec m = small_model();
  const Problem p(m, 40, 1);
  auto gpu = make(m, adam(), "cuda");
  gpu->train_step(p.all(), 2e-3f);
  const std::vector<float> params = params_of(*gpu);
  std::span<const float> snap = gpu->snapshot();
  REQUIRE(snap.size() == gpu->param_count());
  CHECK(std::vector<float>(snap.begin(), snap.end()) == params);
  const std::vector<float> kept(snap.begin(), snap.end());
  gpu->train_step(p.all(), 2e-3f);  // the view is not refreshed by training
  CHECK(std::vector<float>(snap.begin(), snap.end()) == kept);
  snap = gpu->snapshot();
  CHECK(std::vector<float>(snap.begin(), snap.end()) == params_of(*gpu));
  CHECK(std::vector<float>(snap.begin(), snap.end()) != kept);
}

TEST_CASE("apply_delta computes x += scale * (other - own) like the CPU") {
  require_device();
  const ModelSpec m = small_model();
  auto gpu = make(m, adam(), "cuda");
  auto cpu = make(m, adam(), "cpu");
  const size_t n = gpu->param_count();
  const std::vector<float> other = random_vector(n, 2);
  const std::vector<float> own = random_vector(n, 3);
  std::vector<float> expect = params_of(*cpu);
  for (size_t i = 0; i < n; ++i) expect[i] += 0.375f * (other[i] - own[i]);
  gpu->apply_delta(0.375f, other, own);
  cpu->apply_delta(0.375f, other, own);
  check_close(params_of(*gpu), params_of(*cpu), 1e-6, 1e-7, "apply_delta vs cpu");
  check_close(params_of(*gpu), expect, 1e-6, 1e-7, "apply_delta vs host formula");
  // Same inputs twice: the staging buffer is reused safely.
  gpu->apply_delta(-0.375f, other, own);
  cpu->apply_delta(-0.375f, other, own);
  check_close(params_of(*gpu), params_of(*cpu), 1e-6, 1e-7, "apply_delta undone");
}

TEST_CASE("steps interleaved with averaging deltas match the CPU (stream ordering)") {
  require_device();
  const ModelSpec m = small_model();
  const Problem p(m, 6 * 32, 4);
  auto gpu = make(m, adam(), "cuda");
  auto cpu = make(m, adam(), "cpu");
  for (int s = 0; s < 6; ++s) {
    gpu->train_step(p.batch(32 * s, 32), 2e-3f);
    cpu->train_step(p.batch(32 * s, 32), 2e-3f);
    // No wait between the step and the delta: the GPU's backward may still run.
    const std::span<const float> snap = cpu->snapshot();
    const std::vector<float> own(snap.begin(), snap.end());
    const std::vector<float> other = random_vector(own.size(), 100 + s, 0.1f);
    gpu->apply_delta(0.5f, other, own);
    cpu->apply_delta(0.5f, other, own);
  }
  check_close(params_of(*gpu), params_of(*cpu), 1e-3, 1e-4, "parameters");
}

TEST_CASE("parameters and optimizer state round-trip exactly") {
  require_device();
  for (const OptimizerKind k : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kAdamW}) {
    OptimizerSpec o = adam();
    o.kind = k;
    auto gpu = make(small_model(), o, "cuda");
    const std::vector<float> params = random_vector(gpu->param_count(), 5);
    const std::vector<float> state = random_vector(gpu->optimizer_state_count(), 6);
    gpu->write_parameters(params);
    gpu->write_optimizer_state(state);
    gpu->set_optimizer_steps(41);
    CHECK(params_of(*gpu) == params);
    CHECK(state_of(*gpu) == state);
    CHECK(gpu->optimizer_steps() == 41);
  }
  OptimizerSpec plain;
  plain.momentum = 0.0;  // no state at all
  auto gpu = make(small_model(), plain, "cuda");
  CHECK(gpu->optimizer_state_count() == 0);
  gpu->write_optimizer_state({});
  CHECK(state_of(*gpu).empty());
}

TEST_CASE("a CPU replica's full state moved onto the GPU trains on identically") {
  require_device();
  for (const LossKind loss : {LossKind::kSoftmaxCrossEntropy, LossKind::kMse}) {
    const ModelSpec m = small_model(loss);
    OptimizerSpec o = adam();
    o.kind = OptimizerKind::kAdamW;
    o.weight_decay = 0.01;
    const Problem p(m, 5 * 24, 8);
    auto cpu = make(m, o, "cpu");
    for (int s = 0; s < 3; ++s) cpu->train_step(p.batch(24 * s, 24), 2e-3f);
    auto gpu = make(m, o, "cuda");
    gpu->write_parameters(params_of(*cpu));
    gpu->write_optimizer_state(state_of(*cpu));
    gpu->set_optimizer_steps(cpu->optimizer_steps());
    for (int s = 3; s < 5; ++s) {
      const float lg = gpu->train_step(p.batch(24 * s, 24), 2e-3f);
      const float lc = cpu->train_step(p.batch(24 * s, 24), 2e-3f);
      CHECK(rel_close(lg, lc, 1e-4));
    }
    check_close(params_of(*gpu), params_of(*cpu), 1e-3, 1e-4, "parameters");
    check_close(state_of(*gpu), state_of(*cpu), 1e-3, 1e-4, "optimizer state");
  }
}

TEST_CASE("determinism: two CUDA replicas fed the same batches agree bit for bit") {
  require_device();
  ModelSpec m = small_model();
  m.layers = {40, 96, 64, 12};
  m.activation = Activation::kGelu;
  const Problem p(m, 8 * 50, 9);
  auto a = make(m, adam(), "cuda");
  auto b = make(m, adam(), "cuda");
  for (int s = 0; s < 8; ++s) {
    CHECK(a->train_step(p.batch(50 * s, 50), 2e-3f) == b->train_step(p.batch(50 * s, 50), 2e-3f));
  }
  CHECK(params_of(*a) == params_of(*b));
  CHECK(state_of(*a) == state_of(*b));
  const EvalStats ea = a->evaluate(p.all());
  const EvalStats eb = b->evaluate(p.all());
  CHECK(ea.loss_sum == eb.loss_sum);
  CHECK(ea.correct == eb.correct);
}

TEST_CASE("bad calls fail loudly and leave the backend usable") {
  require_device();
  const ModelSpec m = small_model();
  const Problem p(m, 80, 10);
  auto gpu = make(m, adam(), "cuda", 64);
  std::vector<float> short_buf(gpu->param_count() - 1);
  CHECK_THROWS_AS(gpu->read_parameters(short_buf), std::invalid_argument);
  CHECK_THROWS_AS(gpu->write_parameters(short_buf), std::invalid_argument);
  CHECK_THROWS_AS(gpu->apply_delta(0.5f, short_buf, short_buf), std::invalid_argument);
  CHECK_THROWS_AS(gpu->train_step(p.batch(0, 80), 1e-3f), std::invalid_argument);  // > max_batch
  gossip::data::Batch wrong = p.batch(0, 8);
  wrong.cols = 11;
  CHECK_THROWS_AS(gpu->train_step(wrong, 1e-3f), std::invalid_argument);
  std::vector<int32_t> bad_labels(p.labels.begin(), p.labels.begin() + 8);
  bad_labels[5] = 6;  // 6 classes: valid labels are 0..5
  gossip::data::Batch bad = p.batch(0, 8);
  bad.labels = bad_labels.data();
  CHECK_THROWS_AS(gpu->train_step(bad, 1e-3f), std::out_of_range);
  CHECK(gpu->optimizer_steps() == 0);
  // Still healthy afterwards.
  auto cpu = make(m, adam(), "cpu", 64);
  CHECK(rel_close(gpu->train_step(p.batch(0, 64), 2e-3f), cpu->train_step(p.batch(0, 64), 2e-3f),
                  1e-4));
}
