// OptimizerSpec and learning-rate schedules: what every backend's update rule
// computes, independent of where it runs.
//
// Update rules (g = gradient of the mean batch loss, t = optimizer step >= 1):
//   sgd:   g' = g + wd*x;  v = mu*v + g';  x -= lr * (nesterov ? g' + mu*v : v)
//          (mu == 0: plain SGD, no state)
//   adam:  g' = g + wd*x;  m = b1*m + (1-b1)g';  v = b2*v + (1-b2)g'^2;
//          x -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
//   adamw: as adam with g' = g, then x -= lr*wd*x (decoupled decay, applied
//          before the Adam update, using the pre-update x)
// The backends apply wd only to the parts ModelSpec::decay_parts() marks
// (weight matrices and embeddings; biases and LayerNorms get wd = 0), and,
// with grad_clip > 0, first scale g by min(1, grad_clip / (||g||_2 + 1e-6))
// over the whole buffer.
// Optimizer state layout in its flat buffer: sgd [v] (empty when mu == 0),
// adam/adamw [m | v].
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::train {

enum class OptimizerKind { kSgd, kAdam, kAdamW };
enum class ScheduleKind { kConstant, kCosine, kStep };

core::Result<OptimizerKind> parse_optimizer(const std::string& name);  // "sgd"|"adam"|"adamw"
core::Result<ScheduleKind> parse_schedule(const std::string& name);    // "constant"|"cosine"|"step"
const char* optimizer_name(OptimizerKind k);
const char* schedule_name(ScheduleKind k);

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::kConstant;
  int64_t warmup_steps = 0;  // linear ramp from 0 to base lr over these steps
  int64_t total_steps = 0;   // cosine: decays to min_lr at total_steps
  double min_lr = 0.0;       // cosine floor
  int64_t step_every = 0;    // step: multiply by gamma every step_every steps
  double gamma = 0.1;
};

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kSgd;
  double lr = 0.02;
  double momentum = 0.9;  // sgd
  bool nesterov = false;  // sgd
  double weight_decay = 0.0;
  double beta1 = 0.9;  // adam/adamw
  double beta2 = 0.999;
  double eps = 1e-8;
  // Global L2 norm the gradient is scaled down to before the update when it
  // is larger (PyTorch's clip_grad_norm_); 0 = off. Every backend and family.
  double grad_clip = 0.0;
  LrSchedule schedule;

  core::Status validate() const;
  // Floats of optimizer state for a model of `params` parameters.
  size_t state_count(size_t params) const;
  // Learning rate to use for the update that makes optimizer step `step`
  // (0-based count of updates already done).
  double lr_at(int64_t step) const;
};

}  // namespace gossip::train
