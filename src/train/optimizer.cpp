// OptimizerSpec parsing, validation and learning-rate schedules, and the host
// update rules (sgd with momentum/nesterov/weight decay, adam, adamw).
//
// Each update is one fused pass over params, grads and state so that the
// optimizer costs one read and write of each buffer per step; the loops are
// written so that GCC vectorises them at -O2/-O3.
#include "gossip/train/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>
#include <string>

#include "gossip/train/host_optimizer.hpp"

namespace gossip::train {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

core::Status field_error(const std::string& field, const std::string& what, double got) {
  return core::invalid_argument("optimizer." + field + ": " + what + ", got " + num(got));
}

class Sgd final : public Optimizer {
 public:
  using Optimizer::Optimizer;

 protected:
  void step(float* x_in, const float* g_in, float* v_in, float* /*unused*/, size_t n, float lr,
            int64_t /*t*/, float wd) const override {
    float* __restrict x = x_in;
    const float* __restrict g = g_in;
    const float mu = static_cast<float>(spec().momentum);
    if (spec().momentum == 0.0) {
      for (size_t i = 0; i < n; ++i) x[i] -= lr * (g[i] + wd * x[i]);
      return;
    }
    float* __restrict v = v_in;
    if (spec().nesterov) {
      for (size_t i = 0; i < n; ++i) {
        const float gi = g[i] + wd * x[i];
        const float vi = mu * v[i] + gi;
        v[i] = vi;
        x[i] -= lr * (gi + mu * vi);
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        const float vi = mu * v[i] + (g[i] + wd * x[i]);
        v[i] = vi;
        x[i] -= lr * vi;
      }
    }
  }
};

// Adam and AdamW share the moment updates; `decoupled` selects where the
// weight decay goes (into the gradient, or straight onto the weights).
class Adam final : public Optimizer {
 public:
  Adam(const OptimizerSpec& spec, bool decoupled) : Optimizer(spec), decoupled_(decoupled) {}

 protected:
  void step(float* x_in, const float* g_in, float* m_in, float* v_in, size_t n, float lr, int64_t t,
            float wd) const override {
    float* __restrict x = x_in;
    const float* __restrict g = g_in;
    float* __restrict m = m_in;
    float* __restrict v = v_in;
    const double b1 = spec().beta1;
    const double b2 = spec().beta2;
    const double step = static_cast<double>(t < 1 ? 1 : t);
    const float inv_bc1 = static_cast<float>(1.0 / (1.0 - std::pow(b1, step)));
    const float inv_bc2 = static_cast<float>(1.0 / (1.0 - std::pow(b2, step)));
    const float b1f = static_cast<float>(b1);
    const float b2f = static_cast<float>(b2);
    const float eps = static_cast<float>(spec().eps);
    const float coupled_wd = decoupled_ ? 0.0f : wd;
    const float keep = decoupled_ ? 1.0f - lr * wd : 1.0f;  // x *= (1 - lr*wd), pre-update x
    for (size_t i = 0; i < n; ++i) {
      const float gi = g[i] + coupled_wd * x[i];
      const float mi = b1f * m[i] + (1.0f - b1f) * gi;
      const float vi = b2f * v[i] + (1.0f - b2f) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      x[i] = keep * x[i] - lr * (mi * inv_bc1) / (std::sqrt(vi * inv_bc2) + eps);
    }
  }

 private:
  bool decoupled_;
};

}  // namespace

core::Result<OptimizerKind> parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamw") return OptimizerKind::kAdamW;
  return core::invalid_argument("optimizer.type: unknown optimizer '" + name +
                                "' (expected sgd, adam or adamw)");
}

core::Result<ScheduleKind> parse_schedule(const std::string& name) {
  if (name == "constant") return ScheduleKind::kConstant;
  if (name == "cosine") return ScheduleKind::kCosine;
  if (name == "step") return ScheduleKind::kStep;
  return core::invalid_argument("optimizer.schedule.type: unknown schedule '" + name +
                                "' (expected constant, cosine or step)");
}

const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
  }
  return "unknown";
}

const char* schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::kConstant:
      return "constant";
    case ScheduleKind::kCosine:
      return "cosine";
    case ScheduleKind::kStep:
      return "step";
  }
  return "unknown";
}

core::Status OptimizerSpec::validate() const {
  // `!(x > 0)` also rejects NaN.
  if (!(lr > 0.0) || !std::isfinite(lr)) return field_error("lr", "must be > 0 and finite", lr);
  if (!(grad_clip >= 0.0) || !std::isfinite(grad_clip)) {
    return field_error("grad_clip", "must be >= 0 and finite (0 = off)", grad_clip);
  }
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay)) {
    return field_error("weight_decay", "must be >= 0 and finite", weight_decay);
  }
  if (kind == OptimizerKind::kSgd) {
    if (!(momentum >= 0.0 && momentum < 1.0)) {
      return field_error("momentum", "must be in [0, 1)", momentum);
    }
    if (nesterov && momentum == 0.0) {
      return core::invalid_argument("optimizer.nesterov: needs momentum > 0, got momentum 0");
    }
  } else {
    if (!(beta1 >= 0.0 && beta1 < 1.0)) return field_error("beta1", "must be in [0, 1)", beta1);
    if (!(beta2 >= 0.0 && beta2 < 1.0)) return field_error("beta2", "must be in [0, 1)", beta2);
    if (!(eps > 0.0) || !std::isfinite(eps)) return field_error("eps", "must be > 0", eps);
  }
  const LrSchedule& s = schedule;
  if (s.warmup_steps < 0) {
    return field_error("schedule.warmup_steps", "must be >= 0",
                       static_cast<double>(s.warmup_steps));
  }
  switch (s.kind) {
    case ScheduleKind::kConstant:
      break;
    case ScheduleKind::kCosine:
      if (s.total_steps <= s.warmup_steps) {
        return core::invalid_argument("optimizer.schedule.total_steps: must be > warmup_steps (" +
                                      std::to_string(s.warmup_steps) + "), got " +
                                      std::to_string(s.total_steps));
      }
      if (!(s.min_lr >= 0.0 && s.min_lr <= lr)) {
        return field_error("schedule.min_lr", "must be in [0, lr]", s.min_lr);
      }
      break;
    case ScheduleKind::kStep:
      if (s.step_every < 1) {
        return field_error("schedule.step_every", "must be >= 1",
                           static_cast<double>(s.step_every));
      }
      if (!(s.gamma > 0.0) || !std::isfinite(s.gamma)) {
        return field_error("schedule.gamma", "must be > 0 and finite", s.gamma);
      }
      break;
  }
  return core::Status::ok();
}

size_t OptimizerSpec::state_count(size_t params) const {
  switch (kind) {
    case OptimizerKind::kSgd:
      return momentum == 0.0 ? 0 : params;
    case OptimizerKind::kAdam:
    case OptimizerKind::kAdamW:
      return 2 * params;
  }
  return 0;
}

double OptimizerSpec::lr_at(int64_t step) const {
  const LrSchedule& s = schedule;
  if (step < 0) step = 0;
  // Warm-up: step k (0-based) uses lr * (k+1)/warmup, reaching lr on the last
  // warm-up step; the schedule proper starts counting after it.
  if (step < s.warmup_steps) {
    return lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  }
  const int64_t k = step - s.warmup_steps;
  switch (s.kind) {
    case ScheduleKind::kConstant:
      return lr;
    case ScheduleKind::kCosine: {
      const double span = static_cast<double>(s.total_steps - s.warmup_steps);
      const double p = span > 0 ? std::min(1.0, static_cast<double>(k) / span) : 1.0;
      return s.min_lr + (lr - s.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
    }
    case ScheduleKind::kStep: {
      const int64_t every = s.step_every > 0 ? s.step_every : 1;
      return lr * std::pow(s.gamma, static_cast<double>(k / every));
    }
  }
  return lr;
}

void Optimizer::update(std::span<float> params, std::span<const float> grads,
                       std::span<float> state, float lr, int64_t t) const {
  const Part whole{0, params.size(), true};
  update(params, grads, state, lr, t, std::span<const Part>(&whole, 1));
}

void Optimizer::update(std::span<float> params, std::span<const float> grads,
                       std::span<float> state, float lr, int64_t t,
                       std::span<const Part> parts) const {
  const size_t n = params.size();
  const bool two = spec().kind != OptimizerKind::kSgd;  // adam: [m | v]; sgd: [v] or nothing
  float* s1 = state.empty() ? nullptr : state.data();
  float* s2 = two ? state.data() + n : nullptr;
  const auto wd = static_cast<float>(spec().weight_decay);
  for (const Part& p : parts) {
    step(params.data() + p.offset, grads.data() + p.offset, s1 ? s1 + p.offset : nullptr,
         s2 ? s2 + p.offset : nullptr, p.size, lr, t, p.decay ? wd : 0.0f);
  }
}

core::Result<std::unique_ptr<Optimizer>> make_optimizer(const OptimizerSpec& spec) {
  GOSSIP_RETURN_IF_ERROR(spec.validate());
  switch (spec.kind) {
    case OptimizerKind::kSgd:
      return std::unique_ptr<Optimizer>(std::make_unique<Sgd>(spec));
    case OptimizerKind::kAdam:
      return std::unique_ptr<Optimizer>(std::make_unique<Adam>(spec, false));
    case OptimizerKind::kAdamW:
      return std::unique_ptr<Optimizer>(std::make_unique<Adam>(spec, true));
  }
  return core::internal_error("make_optimizer: unhandled optimizer kind");
}

}  // namespace gossip::train
