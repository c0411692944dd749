// Optimizer update rules against hand-computed numbers, learning-rate
// schedules, state sizes and validation messages.
#include <doctest/doctest.h>

#include <vector>

#include "gossip/train/host_optimizer.hpp"

using namespace gossip::train;

namespace {

// Runs the optimizer on a single parameter x0 with the given gradients and
// returns x after each step.
std::vector<double> run(const OptimizerSpec& spec, float x0, const std::vector<float>& grads,
                        float lr) {
  auto opt = make_optimizer(spec);
  REQUIRE(opt.is_ok());
  std::vector<float> x = {x0};
  std::vector<float> state(spec.state_count(1), 0.0f);
  std::vector<double> out;
  int64_t t = 0;
  for (float g : grads) {
    std::vector<float> gv = {g};
    (*opt)->update(x, gv, state, lr, ++t);
    out.push_back(x[0]);
  }
  return out;
}

OptimizerSpec sgd(double momentum, bool nesterov = false, double wd = 0.0) {
  OptimizerSpec s;
  s.kind = OptimizerKind::kSgd;
  s.momentum = momentum;
  s.nesterov = nesterov;
  s.weight_decay = wd;
  return s;
}

OptimizerSpec adam(OptimizerKind kind, double wd = 0.0) {
  OptimizerSpec s;
  s.kind = kind;
  s.weight_decay = wd;
  return s;
}

}  // namespace

TEST_CASE("sgd: plain, weight decay, momentum, nesterov") {
  // x=1, g=0.5, lr=0.1.
  auto plain = run(sgd(0.0), 1.0f, {0.5f, 0.5f}, 0.1f);
  CHECK(plain[0] == doctest::Approx(0.95));
  CHECK(plain[1] == doctest::Approx(0.90));
  // g' = g + 0.1 x = 0.6 -> 0.94; then g' = 0.5 + 0.094 -> 0.94 - 0.0594.
  auto decay = run(sgd(0.0, false, 0.1), 1.0f, {0.5f, 0.5f}, 0.1f);
  CHECK(decay[0] == doctest::Approx(0.94));
  CHECK(decay[1] == doctest::Approx(0.8806));
  // v1 = 0.5, x = 0.95; v2 = 0.45 + 0.5 = 0.95, x = 0.855.
  auto mom = run(sgd(0.9), 1.0f, {0.5f, 0.5f}, 0.1f);
  CHECK(mom[0] == doctest::Approx(0.95));
  CHECK(mom[1] == doctest::Approx(0.855));
  // Nesterov: x -= lr (g + mu v): 1 - 0.1 (0.5 + 0.45) = 0.905; 0.905 - 0.1 (0.5 + 0.855).
  auto nest = run(sgd(0.9, true), 1.0f, {0.5f, 0.5f}, 0.1f);
  CHECK(nest[0] == doctest::Approx(0.905));
  CHECK(nest[1] == doctest::Approx(0.7695));
  // Momentum with weight decay: v1 = 0.6, x = 0.94; v2 = 0.54 + 0.5 + 0.094, x = 0.94 - 0.1134.
  auto mwd = run(sgd(0.9, false, 0.1), 1.0f, {0.5f, 0.5f}, 0.1f);
  CHECK(mwd[0] == doctest::Approx(0.94));
  CHECK(mwd[1] == doctest::Approx(0.8266));
}

TEST_CASE("adam and adamw against hand-computed steps") {
  // Values from the documented rule evaluated in double (b1 .9, b2 .999, eps 1e-8).
  auto a = run(adam(OptimizerKind::kAdam), 1.0f, {0.5f, -0.25f}, 0.1f);
  CHECK(a[0] == doctest::Approx(0.900000002).epsilon(1e-6));
  CHECK(a[1] == doctest::Approx(0.8733662987078463).epsilon(1e-6));
  auto awd = run(adam(OptimizerKind::kAdam, 0.1), 1.0f, {0.5f, -0.25f}, 0.1f);
  CHECK(awd[0] == doctest::Approx(0.9000000016666666).epsilon(1e-6));
  CHECK(awd[1] == doctest::Approx(0.8544413674617625).epsilon(1e-6));
  // AdamW: x (1 - lr wd) - lr mhat / (sqrt(vhat) + eps): 0.99 - 0.1 = 0.89.
  auto aw = run(adam(OptimizerKind::kAdamW, 0.1), 1.0f, {0.5f, -0.25f}, 0.1f);
  CHECK(aw[0] == doctest::Approx(0.890000002).epsilon(1e-6));
  CHECK(aw[1] == doctest::Approx(0.8544662986878463).epsilon(1e-6));
}

TEST_CASE("update works element-wise over long buffers (vectorised path)") {
  OptimizerSpec s = sgd(0.9, true, 0.01);
  auto opt = make_optimizer(s);
  REQUIRE(opt.is_ok());
  const size_t n = 1003;  // not a multiple of any vector width
  std::vector<float> x(n), g(n), v(n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    x[i] = 0.001f * static_cast<float>(i);
    g[i] = 0.5f - 0.0007f * static_cast<float>(i);
  }
  const std::vector<float> x0 = x;
  (*opt)->update(x, g, v, 0.05f, 1);
  for (size_t i = 0; i < n; i += 97) {
    const double gp = g[i] + 0.01 * x0[i];
    CHECK(x[i] == doctest::Approx(x0[i] - 0.05 * (gp + 0.9 * gp)).epsilon(1e-5));
    CHECK(v[i] == doctest::Approx(gp).epsilon(1e-5));
  }
}

TEST_CASE("state_count follows the documented layout") {
  CHECK(sgd(0.0).state_count(100) == 0);
  CHECK(sgd(0.9).state_count(100) == 100);
  CHECK(adam(OptimizerKind::kAdam).state_count(100) == 200);
  CHECK(adam(OptimizerKind::kAdamW).state_count(100) == 200);
}

TEST_CASE("learning-rate schedules: warm-up, cosine, step") {
  OptimizerSpec s;
  s.lr = 0.1;
  CHECK(s.lr_at(0) == doctest::Approx(0.1));
  CHECK(s.lr_at(1000000) == doctest::Approx(0.1));

  s.schedule.warmup_steps = 10;
  CHECK(s.lr_at(0) == doctest::Approx(0.01));
  CHECK(s.lr_at(4) == doctest::Approx(0.05));
  CHECK(s.lr_at(9) == doctest::Approx(0.1));
  CHECK(s.lr_at(10) == doctest::Approx(0.1));

  s.schedule = {};
  s.schedule.kind = ScheduleKind::kCosine;
  s.schedule.total_steps = 100;
  CHECK(s.lr_at(0) == doctest::Approx(0.1));
  CHECK(s.lr_at(25) == doctest::Approx(0.1 * 0.8535533905932737));
  CHECK(s.lr_at(50) == doctest::Approx(0.05));
  CHECK(s.lr_at(100) == doctest::Approx(0.0));
  CHECK(s.lr_at(500) == doctest::Approx(0.0));
  s.schedule.min_lr = 0.01;
  s.schedule.warmup_steps = 20;
  CHECK(s.lr_at(19) == doctest::Approx(0.1));
  CHECK(s.lr_at(20) == doctest::Approx(0.1));
  CHECK(s.lr_at(60) == doctest::Approx(0.055));  // halfway through the decay
  CHECK(s.lr_at(100) == doctest::Approx(0.01));
  CHECK(s.validate().is_ok());

  s.schedule = {};
  s.schedule.kind = ScheduleKind::kStep;
  s.schedule.step_every = 10;
  s.schedule.gamma = 0.5;
  CHECK(s.lr_at(9) == doctest::Approx(0.1));
  CHECK(s.lr_at(10) == doctest::Approx(0.05));
  CHECK(s.lr_at(25) == doctest::Approx(0.025));
}

TEST_CASE("parse and validate give errors naming the field") {
  CHECK(*parse_optimizer("adamw") == OptimizerKind::kAdamW);
  CHECK(std::string(optimizer_name(OptimizerKind::kSgd)) == "sgd");
  CHECK(*parse_schedule("cosine") == ScheduleKind::kCosine);
  CHECK(std::string(schedule_name(ScheduleKind::kStep)) == "step");
  auto bad = parse_optimizer("rmsprop");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("optimizer.type") != std::string::npos);
  CHECK_FALSE(parse_schedule("linear").is_ok());

  OptimizerSpec s;
  CHECK(s.validate().is_ok());
  s.lr = -1;
  CHECK(s.validate().message() == "optimizer.lr: must be > 0 and finite, got -1");
  s = {};
  s.momentum = 1.0;
  CHECK(s.validate().message().find("optimizer.momentum") == 0);
  s = {};
  s.momentum = 0.0;
  s.nesterov = true;
  CHECK(s.validate().message().find("optimizer.nesterov") == 0);
  s = {};
  s.weight_decay = -0.1;
  CHECK(s.validate().message().find("optimizer.weight_decay") == 0);
  s = {};
  s.kind = OptimizerKind::kAdam;
  s.beta2 = 1.0;
  CHECK(s.validate().message().find("optimizer.beta2") == 0);
  s.beta2 = 0.999;
  s.eps = 0;
  CHECK(s.validate().message().find("optimizer.eps") == 0);
  s = {};
  s.schedule.kind = ScheduleKind::kCosine;
  CHECK(s.validate().message().find("optimizer.schedule.total_steps") == 0);
  s.schedule.total_steps = 10;
  s.schedule.min_lr = 1.0;
  CHECK(s.validate().message().find("optimizer.schedule.min_lr") == 0);
  s = {};
  s.schedule.kind = ScheduleKind::kStep;
  CHECK(s.validate().message().find("optimizer.schedule.step_every") == 0);
  s = {};
  s.schedule.warmup_steps = -1;
  CHECK(s.validate().message().find("optimizer.schedule.warmup_steps") == 0);

  s = {};
  s.lr = 0;
  auto opt = make_optimizer(s);
  REQUIRE_FALSE(opt.is_ok());
  CHECK(opt.status().message().find("optimizer.lr") == 0);
}
