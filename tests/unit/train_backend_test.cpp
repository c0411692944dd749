// The CPU backend through the Backend interface: its float gradient against the
// double reference, determinism, evaluate() purity, snapshot/apply_delta
// arithmetic, state round trips, the factory, and that MLPs actually learn.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "gossip/train/backend.hpp"
#include "gossip/train/cpu_backend.hpp"
#include "gossip/train/cpu_ops.hpp"
#include "gossip/train/host_optimizer.hpp"

using namespace gossip::train;
using gossip::data::Batch;

namespace {

// A classification problem an MLP can learn: `classes` random prototypes in
// `dim` dimensions plus Gaussian noise.
struct Blobs {
  std::vector<float> x;
  std::vector<int32_t> labels;
  int rows = 0, cols = 0;
  Blobs(int rows_, int dim, int classes, uint32_t seed, float noise) : rows(rows_), cols(dim) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    std::mt19937 proto_gen(1234);  // same prototypes for every draw
    std::vector<float> protos(static_cast<size_t>(classes) * dim);
    for (auto& p : protos) p = n01(proto_gen);
    x.resize(static_cast<size_t>(rows) * dim);
    labels.resize(rows);
    std::uniform_int_distribution<int> pick(0, classes - 1);
    for (int r = 0; r < rows; ++r) {
      labels[r] = pick(gen);
      for (int c = 0; c < dim; ++c) {
        x[static_cast<size_t>(r) * dim + c] = protos[labels[r] * dim + c] + noise * n01(gen);
      }
    }
  }
  Batch batch(int begin, int n) const {
    Batch b;
    b.rows = n;
    b.cols = cols;
    b.x = x.data() + static_cast<size_t>(begin) * cols;
    b.labels = labels.data() + begin;
    return b;
  }
};

std::unique_ptr<Backend> cpu_backend(const ModelSpec& m, const OptimizerSpec& o,
                                     int max_batch = 64) {
  BackendOptions opts;
  opts.device = "cpu";
  opts.max_batch = max_batch;
  auto b = make_backend(m, o, opts);
  REQUIRE(b.is_ok());
  return std::move(b).value();
}

ModelSpec small_model(Activation act = Activation::kRelu) {
  ModelSpec m;
  m.layers = {8, 16, 12, 4};
  m.activation = act;
  return m;
}

std::vector<float> params_of(Backend& b) {
  std::vector<float> p(b.param_count());
  b.read_parameters(p);
  return p;
}

}  // namespace

TEST_CASE("float train_step applies the gradient of the double reference") {
  for (Activation act : {Activation::kRelu, Activation::kTanh, Activation::kGelu}) {
    CAPTURE(activation_name(act));
    const ModelSpec m = small_model(act);
    OptimizerSpec o;
    o.momentum = 0.0;  // plain SGD with lr 1: x1 = x0 - grad
    auto b = cpu_backend(m, o);
    const Blobs data(16, 8, 4, 5, 0.5f);
    const std::vector<float> x0 = params_of(*b);
    std::vector<double> p(x0.begin(), x0.end()), g(p.size());
    const double ref_loss = cpu::reference_loss_and_gradient<double>(m, p, data.batch(0, 16), g);
    const float loss = b->train_step(data.batch(0, 16), 1.0f);
    CHECK(loss == doctest::Approx(ref_loss).epsilon(1e-5));
    const std::vector<float> x1 = params_of(*b);
    double max_err = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      max_err = std::max(max_err, std::abs((double{x0[i]} - x1[i]) - g[i]));
    }
    CHECK(max_err < 1e-5);
    CHECK(b->optimizer_steps() == 1);
  }
}

TEST_CASE("every optimizer path of the backend follows the host Optimizer rules") {
  // Heavy-ball SGD takes the backend's fused path (momentum accumulated in the
  // GEMM); the others take Optimizer::update. All must track the reference.
  std::vector<OptimizerSpec> specs(5);
  specs[0].weight_decay = 0.01;  // sgd momentum 0.9, fused
  specs[1].momentum = 0.9;       // fused, no decay
  specs[2].nesterov = true;
  specs[3].kind = OptimizerKind::kAdam;
  specs[4].kind = OptimizerKind::kAdamW;
  specs[4].weight_decay = 0.05;
  for (const OptimizerSpec& o : specs) {
    CAPTURE(optimizer_name(o.kind));
    CAPTURE(o.nesterov);
    const ModelSpec m = small_model(Activation::kTanh);
    auto b = cpu_backend(m, o);
    auto rule = make_optimizer(o);
    REQUIRE(rule.is_ok());
    const Blobs data(96, 8, 4, 6, 0.5f);
    std::vector<float> p = params_of(*b), g(p.size()), state(o.state_count(p.size()), 0.0f);
    for (int s = 0; s < 3; ++s) {
      const Batch batch = data.batch(s * 32, 32);
      std::vector<double> pd(p.begin(), p.end()), gd(p.size());
      cpu::reference_loss_and_gradient<double>(m, pd, batch, gd);
      for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(gd[i]);
      (*rule)->update(p, g, state, 0.05f, s + 1, m.decay_parts());
      b->train_step(batch, 0.05f);
    }
    const auto got = params_of(*b);
    std::vector<float> got_state(state.size());
    b->read_optimizer_state(got_state);
    double err = 0, serr = 0;
    for (size_t i = 0; i < p.size(); ++i) err = std::max(err, double{std::abs(got[i] - p[i])});
    for (size_t i = 0; i < state.size(); ++i) {
      serr = std::max(serr, double{std::abs(got_state[i] - state[i])});
    }
    CHECK(err < 2e-5);
    CHECK(serr < 2e-5);
  }
}

TEST_CASE("grad_clip scales the gradient to the stated norm, by the double reference's factor") {
  // lr 1, no decay: x0 - x1 is the (clipped) gradient. The plain rule and
  // the heavy-ball path (which without clipping fuses v = mu v + g into the
  // GEMM) must both apply clip / (||g|| + 1e-6) times the reference gradient.
  for (double momentum : {0.0, 0.9}) {
    CAPTURE(momentum);
    const ModelSpec m = small_model(Activation::kTanh);
    const Blobs data(16, 8, 4, 7, 0.5f);
    OptimizerSpec o;
    o.momentum = momentum;
    auto probe = cpu_backend(m, o);
    const std::vector<float> x0 = params_of(*probe);
    std::vector<double> p(x0.begin(), x0.end()), g(p.size());
    cpu::reference_loss_and_gradient<double>(m, p, data.batch(0, 16), g);
    double norm = 0;
    for (double v : g) norm += v * v;
    norm = std::sqrt(norm);
    REQUIRE(norm > 0.01);
    for (double clip : {0.25 * norm, 4.0 * norm}) {
      CAPTURE(clip);
      o.grad_clip = clip;
      auto b = cpu_backend(m, o);
      b->train_step(data.batch(0, 16), 1.0f);
      const std::vector<float> x1 = params_of(*b);
      const double factor = std::min(1.0, clip / (norm + 1e-6));
      double step_sq = 0, max_err = 0;
      for (size_t i = 0; i < p.size(); ++i) {
        const double step = double{x0[i]} - x1[i];
        step_sq += step * step;
        max_err = std::max(max_err, std::abs(step - factor * g[i]));
      }
      CHECK(max_err < 1e-5);
      CHECK(std::sqrt(step_sq) == doctest::Approx(std::min(clip, norm)).epsilon(1e-4));
    }
  }
}

TEST_CASE("weight decay: the weight matrices decay, the biases never (a zero-gradient step)") {
  // x = 0 and negative hidden biases make every ReLU inactive, so the output
  // is the output bias; targets equal to it make the mse gradient exactly 0.
  // What moves the parameters is then the decay alone.
  ModelSpec m;
  m.layers = {4, 6, 3};
  m.activation = Activation::kRelu;
  m.loss = LossKind::kMse;
  const std::vector<LayerView> views = m.layer_views();
  std::vector<float> x(static_cast<size_t>(5) * 4, 0.0f), targets;
  std::vector<float> init(m.param_count());
  init_parameters(m, init);
  for (int i = 0; i < 6; ++i) init[views[0].bias_offset + i] = -0.5f - 0.1f * static_cast<float>(i);
  for (int i = 0; i < 3; ++i)
    init[views[1].bias_offset + i] = 0.3f * static_cast<float>(i - 1) + 0.05f;
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 3; ++c) targets.push_back(init[views[1].bias_offset + c]);
  }
  Batch batch;
  batch.rows = 5;
  batch.cols = 4;
  batch.x = x.data();
  batch.targets = targets.data();
  batch.target_cols = 3;

  std::vector<OptimizerSpec> specs(5);
  specs[0].kind = OptimizerKind::kAdamW;
  specs[1].kind = OptimizerKind::kAdam;
  specs[2].momentum = 0.0;  // plain sgd
  specs[3].momentum = 0.9;  // heavy ball: the fused path
  specs[4].nesterov = true;
  for (OptimizerSpec& o : specs) {
    o.lr = 0.01;
    o.weight_decay = 0.1;
    CAPTURE(optimizer_name(o.kind));
    CAPTURE(o.momentum);
    CAPTURE(o.nesterov);
    auto b = cpu_backend(m, o);
    b->write_parameters(init);
    CHECK(b->train_step(batch, 0.01f) == 0.0f);
    const std::vector<float> after = params_of(*b);
    const float keep = 1.0f - 0.01f * 0.1f;  // adamw: x *= 1 - lr wd, exactly
    for (const LayerView& v : views) {
      for (int i = 0; i < v.out; ++i) {
        const size_t at = v.bias_offset + static_cast<size_t>(i);
        INFO("bias " << at);
        CHECK(std::memcmp(&after[at], &init[at], sizeof(float)) == 0);
      }
      for (size_t i = 0; i < static_cast<size_t>(v.in) * v.out; ++i) {
        const size_t at = v.weight_offset + i;
        INFO("weight " << at << ": " << init[at] << " -> " << after[at]);
        REQUIRE(init[at] != 0.0f);
        if (o.kind == OptimizerKind::kAdam) {
          CHECK(after[at] != init[at]);  // g' = wd x: a step of about lr, maybe past 0
        } else {
          CHECK(std::abs(after[at]) < std::abs(init[at]));
        }
        if (o.kind == OptimizerKind::kAdamW) CHECK(after[at] == keep * init[at]);
      }
    }
  }
}

TEST_CASE("same seed, same data: bit-identical parameters after N steps") {
  ModelSpec m = small_model(Activation::kGelu);
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  o.lr = 0.01;
  o.weight_decay = 0.01;
  auto a = cpu_backend(m, o);
  auto b = cpu_backend(m, o);
  const Blobs data(320, 8, 4, 3, 0.5f);
  for (int s = 0; s < 10; ++s) {
    a->train_step(data.batch(s * 32, 32), 0.01f);
    b->train_step(data.batch(s * 32, 32), 0.01f);
  }
  const auto pa = params_of(*a), pb = params_of(*b);
  CHECK(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)) == 0);
  std::vector<float> sa(a->optimizer_state_count()), sb(sa.size());
  a->read_optimizer_state(sa);
  b->read_optimizer_state(sb);
  CHECK(std::memcmp(sa.data(), sb.data(), sa.size() * sizeof(float)) == 0);

  m.seed = 99;
  auto c = cpu_backend(m, o);
  CHECK(params_of(*c) != params_of(*cpu_backend(small_model(Activation::kGelu), o)));
}

TEST_CASE("evaluate touches no training state and chunks large batches") {
  const ModelSpec m = small_model();
  OptimizerSpec o;
  auto b = cpu_backend(m, o, 16);
  const Blobs data(100, 8, 4, 8, 0.5f);
  b->train_step(data.batch(0, 16), 0.05f);
  const auto p0 = params_of(*b);
  std::vector<float> s0(b->optimizer_state_count()), s1(s0.size());
  b->read_optimizer_state(s0);

  const EvalStats whole = b->evaluate(data.batch(0, 100));  // > max_batch: chunked
  CHECK(whole.rows == 100);
  EvalStats parts;
  for (int i = 0; i < 100; i += 10) parts += b->evaluate(data.batch(i, 10));
  CHECK(parts.rows == 100);
  CHECK(parts.correct == whole.correct);
  CHECK(parts.loss_sum == doctest::Approx(whole.loss_sum).epsilon(1e-5));
  CHECK(whole.mean_loss() > 0);

  CHECK(params_of(*b) == p0);
  b->read_optimizer_state(s1);
  CHECK(s1 == s0);
  CHECK(b->optimizer_steps() == 1);
}

TEST_CASE("snapshot is an owned copy; apply_delta adds scale * (other - own)") {
  const ModelSpec m = small_model();
  OptimizerSpec o;
  auto b = cpu_backend(m, o);
  const size_t n = b->param_count();
  const auto snap = b->snapshot();
  REQUIRE(snap.size() == n);
  const std::vector<float> before(snap.begin(), snap.end());
  CHECK(before == params_of(*b));

  const Blobs data(32, 8, 4, 9, 0.5f);
  b->train_step(data.batch(0, 32), 0.1f);
  CHECK(std::vector<float>(snap.begin(), snap.end()) == before);  // not aliased to the live buffer

  std::vector<float> x(n), other(n), own(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = 0.5f * static_cast<float>(i % 7);
    other[i] = static_cast<float>(i % 5);
    own[i] = static_cast<float>(i % 3);
  }
  b->write_parameters(x);
  b->apply_delta(0.25f, other, own);
  const auto after = params_of(*b);
  for (size_t i = 0; i < n; ++i) CHECK(after[i] == x[i] + 0.25f * (other[i] - own[i]));
  std::vector<float> wrong(n - 1);
  CHECK_THROWS_AS(b->apply_delta(0.5f, wrong, own), std::invalid_argument);
}

TEST_CASE("state round trip: parameters, optimizer state and step count") {
  const ModelSpec m = small_model();
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdam;
  auto a = cpu_backend(m, o);
  const Blobs data(64, 8, 4, 4, 0.5f);
  for (int s = 0; s < 2; ++s) a->train_step(data.batch(s * 32, 32), 0.01f);
  std::vector<float> p(a->param_count()), st(a->optimizer_state_count());
  CHECK(st.size() == 2 * p.size());
  a->read_parameters(p);
  a->read_optimizer_state(st);

  auto b = cpu_backend(m, o);
  b->write_parameters(p);
  b->write_optimizer_state(st);
  b->set_optimizer_steps(a->optimizer_steps());
  a->train_step(data.batch(0, 32), 0.01f);
  b->train_step(data.batch(0, 32), 0.01f);
  CHECK(params_of(*a) == params_of(*b));
}

TEST_CASE("bad batches are programmer errors with a clear message") {
  auto b = cpu_backend(small_model(), OptimizerSpec{}, 16);
  const Blobs data(32, 8, 4, 4, 0.5f);
  CHECK_THROWS_AS(b->train_step(data.batch(0, 32), 0.1f), std::invalid_argument);  // > max_batch
  Batch wrong = data.batch(0, 8);
  wrong.cols = 7;
  CHECK_THROWS_AS(b->train_step(wrong, 0.1f), std::invalid_argument);
  wrong = data.batch(0, 8);
  wrong.labels = nullptr;
  CHECK_THROWS_AS(b->evaluate(wrong), std::invalid_argument);
}

TEST_CASE("factory: cpu, auto fallback, errors for unknown or missing devices") {
  ModelSpec gpt;  // both families follow the same device rule
  gpt.family = ModelFamily::kGpt;
  gpt.gpt.block = 8;
  gpt.gpt.layers = 1;
  gpt.gpt.heads = 2;
  gpt.gpt.embd = 8;
  for (const ModelSpec& m : {small_model(), gpt}) {
    CAPTURE(m.describe());
    BackendOptions opts;
    // Both branches run somewhere: CPU-only hosts take the second, GPU hosts
    // (tools/gpu_check runs this test there) the first.
    const CudaProbe probe = probe_cuda();
    INFO("probe: " << probe.detail);
    CHECK_FALSE(probe.detail.empty());
    CHECK((probe.outcome == CudaProbe::Outcome::kNotCompiled) == !cuda_compiled());
    CHECK((probe.outcome == CudaProbe::Outcome::kPresent) == cuda_device_present());
    for (const char* device : {"auto", "cuda"}) {
      INFO("device " << device);
      opts.device = device;
      auto b = make_backend(m, OptimizerSpec{}, opts);
      if (probe.outcome == CudaProbe::Outcome::kPresent) {
        // A GPU is there: auto must pick it, and cuda must not fail.
        REQUIRE_MESSAGE(b.is_ok(), b.status().to_string());
        CHECK((*b)->device_name().rfind("cuda:", 0) == 0);
      } else if (opts.device == "auto") {
        REQUIRE(b.is_ok());
        CHECK((*b)->device_name() == "cpu");
      } else {
        // Never a silent CPU run: the error says why there is no device.
        REQUIRE_FALSE(b.is_ok());
        CHECK(b.status().code() == gossip::core::Code::kUnavailable);
        CHECK(b.status().message() ==
              "training.device: cuda requested but " + probe.detail + " (or use device auto/cpu)");
      }
    }
    opts.device = "tpu";
    auto t = make_backend(m, OptimizerSpec{}, opts);
    REQUIRE_FALSE(t.is_ok());
    CHECK(t.status().message().find("tpu") != std::string::npos);
    opts.device = "cpu";
    opts.max_batch = 0;
    CHECK(make_backend(m, OptimizerSpec{}, opts).status().message().find("max_batch") !=
          std::string::npos);
    opts.max_batch = 8;
    OptimizerSpec bad;
    bad.lr = 0;
    CHECK(make_backend(m, bad, opts).status().message().find("optimizer.lr") == 0);
    ModelSpec bad_model;
    bad_model.layers = {3};
    CHECK_FALSE(make_backend(bad_model, OptimizerSpec{}, opts).is_ok());
  }
}

TEST_CASE("784-256-128-10 relu MLP, SGD momentum 0.9, lr 0.02, batch 64 learns") {
  ModelSpec m;
  m.layers = {784, 256, 128, 10};
  OptimizerSpec o;  // defaults: sgd, momentum 0.9, lr 0.02
  auto b = cpu_backend(m, o);
  const Blobs train(64 * 60, 784, 10, 21, 3.0f);  // noise 3x the prototype scale
  const Blobs test(500, 784, 10, 22, 3.0f);
  const EvalStats before = b->evaluate(test.batch(0, 500));
  float first = 0, last = 0;
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (int s = 0; s < 60; ++s) {
      const float loss = b->train_step(train.batch(s * 64, 64), 0.02f);
      if (epoch == 0 && s == 0) first = loss;
      last = loss;
    }
  }
  const EvalStats after = b->evaluate(test.batch(0, 500));
  MESSAGE("loss ", first, " -> ", last, "; test loss ", before.mean_loss(), " -> ",
          after.mean_loss(), ", accuracy ", before.accuracy(), " -> ", after.accuracy());
  CHECK(after.mean_loss() < before.mean_loss() / 10);
  CHECK(after.accuracy() > 0.95);
}

TEST_CASE("toy regression 10-20-1 tanh MSE: loss falls by a large factor") {
  ModelSpec m;
  m.layers = {10, 20, 1};
  m.activation = Activation::kTanh;
  m.loss = LossKind::kMse;
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdam;
  o.lr = 0.01;
  auto b = cpu_backend(m, o);
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int rows = 512;
  std::vector<float> x(rows * 10), y(rows);
  for (int r = 0; r < rows; ++r) {
    float s = 0;
    for (int c = 0; c < 10; ++c) {
      x[r * 10 + c] = u(gen);
      s += (c % 2 ? 0.3f : -0.2f) * x[r * 10 + c];
    }
    y[r] = std::sin(2.0f * s);
  }
  Batch all;
  all.rows = rows;
  all.cols = 10;
  all.x = x.data();
  all.targets = y.data();
  all.target_cols = 1;
  const double before = b->evaluate(all).mean_loss();
  for (int s = 0; s < 400; ++s) {
    Batch part = all;
    part.rows = 64;
    part.x = x.data() + (s % 8) * 64 * 10;
    part.targets = y.data() + (s % 8) * 64;
    b->train_step(part, 0.01f);
  }
  const double after = b->evaluate(all).mean_loss();
  MESSAGE("mse ", before, " -> ", after);
  CHECK(after < before / 20);
}
