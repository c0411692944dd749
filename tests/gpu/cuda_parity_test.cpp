// CUDA backend against the CPU backend (the readable reference), through
// make_backend("cuda") and make_backend("cpu"): forward loss and accuracy,
// then k training steps of every optimizer with every activation and loss,
// comparing the returned losses, the parameters and the optimizer state.
// Exits 77 (skipped) without a CUDA device.
#include "gpu_test_util.hpp"

using namespace gossip::train;
using namespace gossip::train::gpu_test;

namespace {

struct Case {
  const char* name;
  ModelSpec model;
};

ModelSpec spec(std::vector<int> layers, Activation act, LossKind loss, uint64_t seed = 7) {
  ModelSpec m;
  m.layers = std::move(layers);
  m.activation = act;
  m.loss = loss;
  m.seed = seed;
  return m;
}

// Odd sizes on purpose (no multiple of a warp or of 8), a class count above
// the warp width, and a regression head.
std::vector<Case> cases() {
  std::vector<Case> out;
  for (Activation a : {Activation::kRelu, Activation::kTanh, Activation::kGelu}) {
    out.push_back({"xent-13-24-17-5", spec({13, 24, 17, 5}, a, LossKind::kSoftmaxCrossEntropy)});
    out.push_back({"xent-20-48-40", spec({20, 48, 40}, a, LossKind::kSoftmaxCrossEntropy)});
    out.push_back({"mse-10-20-3", spec({10, 20, 3}, a, LossKind::kMse)});
  }
  return out;
}

struct OptCase {
  const char* name;
  OptimizerSpec opt;
};

std::vector<OptCase> optimizers() {
  std::vector<OptCase> out;
  OptimizerSpec sgd;
  sgd.kind = OptimizerKind::kSgd;
  sgd.lr = 0.05;
  sgd.momentum = 0.9;
  out.push_back({"sgd-momentum", sgd});
  OptimizerSpec nesterov = sgd;
  nesterov.nesterov = true;
  nesterov.weight_decay = 1e-2;
  out.push_back({"sgd-nesterov-wd", nesterov});
  OptimizerSpec plain = sgd;
  plain.momentum = 0.0;
  plain.weight_decay = 1e-2;
  out.push_back({"sgd-plain-wd", plain});
  OptimizerSpec adam;
  adam.kind = OptimizerKind::kAdam;
  adam.lr = 3e-3;
  adam.weight_decay = 1e-2;
  out.push_back({"adam-wd", adam});
  OptimizerSpec adamw = adam;
  adamw.kind = OptimizerKind::kAdamW;
  adamw.weight_decay = 1e-2;
  out.push_back({"adamw", adamw});
  return out;
}

}  // namespace

TEST_CASE("cuda backend reports its device and starts from the CPU's initial parameters") {
  require_device();
  const ModelSpec m = spec({13, 24, 17, 5}, Activation::kRelu, LossKind::kSoftmaxCrossEntropy);
  const OptimizerSpec o;
  auto gpu = make(m, o, "cuda");
  auto cpu = make(m, o, "cpu");
  CHECK(gpu->device_name().rfind("cuda:", 0) == 0);
  CHECK(gpu->param_count() == cpu->param_count());
  CHECK(gpu->optimizer_state_count() == cpu->optimizer_state_count());
  CHECK(gpu->optimizer_steps() == 0);
  CHECK(params_of(*gpu) == params_of(*cpu));  // same host initialisation, bit for bit
  const std::vector<float> state = state_of(*gpu);
  CHECK(std::all_of(state.begin(), state.end(), [](float v) { return v == 0.0f; }));
}

TEST_CASE("forward: evaluate matches the CPU for every activation and loss") {
  require_device();
  const OptimizerSpec o;
  for (const Case& c : cases()) {
    INFO(c.name << " " << activation_name(c.model.activation));
    const Problem p(c.model, 150, 11);
    // max_batch 64: 150 rows are evaluated in chunks of 64, 64 and 22.
    auto gpu = make(c.model, o, "cuda", 64);
    auto cpu = make(c.model, o, "cpu", 64);
    const EvalStats g = gpu->evaluate(p.all());
    const EvalStats h = cpu->evaluate(p.all());
    CHECK(g.rows == 150);
    CHECK(g.rows == h.rows);
    CHECK(rel_close(g.loss_sum, h.loss_sum, 1e-4));
    // Argmax can only differ on a near-tie of two logits.
    CHECK(std::llabs(g.correct - h.correct) <= 1);
    // evaluate() touches no training state and repeats bit for bit.
    const EvalStats again = gpu->evaluate(p.all());
    CHECK(again.loss_sum == g.loss_sum);
    CHECK(again.correct == g.correct);
    CHECK(gpu->optimizer_steps() == 0);
    CHECK(params_of(*gpu) == params_of(*cpu));
  }
}

TEST_CASE("training: k steps of each optimizer match the CPU (losses, parameters, state)") {
  require_device();
  constexpr int kSteps = 5;
  constexpr int kRows = 37;
  for (const OptCase& oc : optimizers()) {
    for (const Case& c : cases()) {
      INFO(oc.name << " " << c.name << " " << activation_name(c.model.activation));
      const Problem p(c.model, kSteps * kRows, 23);
      auto gpu = make(c.model, oc.opt, "cuda", 64);
      auto cpu = make(c.model, oc.opt, "cpu", 64);
      for (int s = 0; s < kSteps; ++s) {
        const float lr = static_cast<float>(oc.opt.lr_at(s));
        const float lg = gpu->train_step(p.batch(s * kRows, kRows), lr);
        const float lc = cpu->train_step(p.batch(s * kRows, kRows), lr);
        INFO("step " << s << ": cuda loss " << lg << ", cpu loss " << lc);
        CHECK(rel_close(lg, lc, 1e-4));
      }
      CHECK(gpu->optimizer_steps() == kSteps);
      check_close(params_of(*gpu), params_of(*cpu), 1e-3, 1e-4, "parameters");
      check_close(state_of(*gpu), state_of(*cpu), 1e-3, 1e-4, "optimizer state");
    }
  }
}

TEST_CASE("weight decay: its effect on the parameters matches the CPU for every optimizer") {
  require_device();
  // The effect of decay is the difference between a run with it and the same
  // run without: compared on its own it cannot hide under the tolerance of
  // the parameters. lr * wd is 5e-4 to 1e-3 per step, so after 5 steps the
  // effect is about 1e-3 of parameters near 0.3, far above float noise.
  constexpr int kSteps = 5;
  constexpr int kRows = 37;
  const ModelSpec m = spec({13, 24, 17, 5}, Activation::kTanh, LossKind::kSoftmaxCrossEntropy);
  const Problem p(m, kSteps * kRows, 29);
  for (OptCase oc : optimizers()) {
    if (oc.opt.kind != OptimizerKind::kSgd) oc.opt.lr = 1e-2;
    oc.opt.weight_decay = oc.opt.kind == OptimizerKind::kAdamW ? 0.1 : 1e-2;
    OptimizerSpec none = oc.opt;
    none.weight_decay = 0.0;
    INFO(oc.name << " weight_decay " << oc.opt.weight_decay);
    std::vector<float> effect[2];  // cuda, cpu
    for (int d = 0; d < 2; ++d) {
      auto with = make(m, oc.opt, d == 0 ? "cuda" : "cpu");
      auto without = make(m, none, d == 0 ? "cuda" : "cpu");
      for (int s = 0; s < kSteps; ++s) {
        with->train_step(p.batch(s * kRows, kRows), static_cast<float>(oc.opt.lr));
        without->train_step(p.batch(s * kRows, kRows), static_cast<float>(oc.opt.lr));
      }
      const std::vector<float> a = params_of(*with);
      const std::vector<float> b = params_of(*without);
      for (size_t i = 0; i < a.size(); ++i) effect[d].push_back(a[i] - b[i]);
    }
    double largest = 0.0;
    for (float e : effect[1]) largest = std::max(largest, static_cast<double>(std::fabs(e)));
    CHECK(largest > 1e-4);  // visible: the decay did move the CPU's parameters
    check_close(effect[0], effect[1], 2e-2, 2e-2, "effect of weight decay");
  }
}

TEST_CASE("weight decay leaves the biases alone on both devices (one step)") {
  require_device();
  // After one step the gradient is the same with and without decay, so any
  // difference in a bias would be decay applied to it: none, to the bit.
  const ModelSpec m = spec({13, 24, 17, 5}, Activation::kTanh, LossKind::kSoftmaxCrossEntropy);
  const Problem p(m, 37, 31);
  for (OptCase oc : optimizers()) {
    oc.opt.weight_decay = 0.1;
    OptimizerSpec none = oc.opt;
    none.weight_decay = 0.0;
    INFO(oc.name);
    for (const char* device : {"cuda", "cpu"}) {
      INFO(device);
      auto with = make(m, oc.opt, device);
      auto without = make(m, none, device);
      with->train_step(p.all(), static_cast<float>(oc.opt.lr));
      without->train_step(p.all(), static_cast<float>(oc.opt.lr));
      const std::vector<float> a = params_of(*with);
      const std::vector<float> b = params_of(*without);
      for (const LayerView& v : m.layer_views()) {
        size_t weights_moved = 0;
        for (size_t i = 0; i < static_cast<size_t>(v.in) * v.out; ++i) {
          weights_moved += a[v.weight_offset + i] != b[v.weight_offset + i];
        }
        CHECK(weights_moved > 0);
        for (int i = 0; i < v.out; ++i) {
          CHECK(a[v.bias_offset + i] == b[v.bias_offset + i]);
        }
      }
    }
  }
}

TEST_CASE("grad_clip: k steps of each optimizer with clipping match the CPU, and the clip acts") {
  require_device();
  constexpr int kSteps = 5;
  constexpr int kRows = 37;
  const ModelSpec m = spec({13, 24, 17, 5}, Activation::kGelu, LossKind::kSoftmaxCrossEntropy);
  const Problem p(m, kSteps * kRows, 37);
  for (OptCase oc : optimizers()) {
    oc.opt.grad_clip = 0.05;  // well below this problem's gradient norms
    OptimizerSpec unclipped = oc.opt;
    unclipped.grad_clip = 0.0;
    INFO(oc.name << " grad_clip " << oc.opt.grad_clip);
    auto gpu = make(m, oc.opt, "cuda");
    auto cpu = make(m, oc.opt, "cpu");
    auto free_cpu = make(m, unclipped, "cpu");
    for (int s = 0; s < kSteps; ++s) {
      const float lr = static_cast<float>(oc.opt.lr);
      const float lg = gpu->train_step(p.batch(s * kRows, kRows), lr);
      const float lc = cpu->train_step(p.batch(s * kRows, kRows), lr);
      free_cpu->train_step(p.batch(s * kRows, kRows), lr);
      INFO("step " << s << ": cuda loss " << lg << ", cpu loss " << lc);
      CHECK(rel_close(lg, lc, 1e-4));
    }
    const std::vector<float> clipped = params_of(*cpu);
    const std::vector<float> free_params = params_of(*free_cpu);
    double moved = 0.0;
    for (size_t i = 0; i < clipped.size(); ++i) {
      moved = std::max(moved, static_cast<double>(std::fabs(clipped[i] - free_params[i])));
    }
    // The clip changed the CPU's run. Adam's step barely depends on a
    // gradient scale that varies little between steps, so only SGD's shows it.
    if (oc.opt.kind == OptimizerKind::kSgd) CHECK(moved > 1e-4);
    check_close(params_of(*gpu), clipped, 1e-3, 1e-4, "parameters");
    check_close(state_of(*gpu), state_of(*cpu), 1e-3, 1e-4, "optimizer state");
  }
}

TEST_CASE("training: a full max_batch step and a one-row step match the CPU") {
  require_device();
  const ModelSpec m = spec({31, 65, 33, 10}, Activation::kGelu, LossKind::kSoftmaxCrossEntropy);
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  o.lr = 1e-3;
  o.weight_decay = 0.05;
  const Problem p(m, 129, 5);
  auto gpu = make(m, o, "cuda", 128);
  auto cpu = make(m, o, "cpu", 128);
  for (int rows : {128, 1, 128}) {
    INFO("rows " << rows);
    const float lg = gpu->train_step(p.batch(0, rows), 1e-3f);
    const float lc = cpu->train_step(p.batch(0, rows), 1e-3f);
    CHECK(rel_close(lg, lc, 1e-4));
  }
  check_close(params_of(*gpu), params_of(*cpu), 1e-3, 1e-4, "parameters");
  check_close(state_of(*gpu), state_of(*cpu), 1e-3, 1e-4, "optimizer state");
}

TEST_CASE("tf32: allowed tensor-core products stay close to the CPU") {
  require_device();
  const ModelSpec m = spec({64, 128, 10}, Activation::kRelu, LossKind::kSoftmaxCrossEntropy);
  const OptimizerSpec o;
  const Problem p(m, 64, 3);
  auto gpu = make(m, o, "cuda", 64, /*tf32=*/true);
  auto cpu = make(m, o, "cpu", 64);
  const EvalStats g = gpu->evaluate(p.all());
  const EvalStats h = cpu->evaluate(p.all());
  CHECK(rel_close(g.loss_sum, h.loss_sum, 1e-2));  // TF32 keeps 10 mantissa bits
  const float lg = gpu->train_step(p.all(), 0.02f);
  const float lc = cpu->train_step(p.all(), 0.02f);
  CHECK(rel_close(lg, lc, 1e-2));
}
