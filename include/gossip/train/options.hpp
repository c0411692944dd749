// The sections of a config file owned by the train module: "model" (the
// ModelSpec itself), "optimizer" (the OptimizerSpec with its schedule) and
// "training" (device, threads, budget, evaluation). config::Config holds
// them; the readers and writers below convert them from and to JSON
// (src/train/options.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "gossip/core/status.hpp"
#include "gossip/train/model.hpp"
#include "gossip/train/optimizer.hpp"

namespace gossip::options {
class Section;
}

namespace gossip::train {

struct EvalConfig {
  int64_t every_epochs = 1;  // 0: off
  int64_t every_steps = 0;   // 0: off
  int64_t max_rows = 0;      // 0: the whole test set
  int batch = 1000;          // rows per evaluation call
};

struct TrainingConfig {
  std::string device = "auto";  // "auto" | "cpu" | "cuda"
  int cpu_threads = 1;          // 0: all hardware threads; 1 by default since
                                // many peers often share one host
  bool allow_tf32 = false;
  int64_t epochs = 0;  // at most one of epochs/steps > 0;
  int64_t steps = 0;   // both 0: run until stopped
  EvalConfig eval;
};

// What the model section is checked against: the task of the config's data
// section (a gpt needs bytes, the loss must fit labels or targets).
struct Task {
  std::string dataset;      // data.dataset.type, as errors name it
  bool regression = false;  // regression targets rather than class labels
};

// Readers of the top-level object's "model" (required), "optimizer" and
// "training" sections into `out` (defaults already there); problems are
// recorded through `top` as "model.<key>: ...". cosine's total_steps may
// stay 0 ("the training budget", filled in by the peer).
void read_model(options::Section& top, const Task& task, ModelSpec& out);
void read_optimizer(options::Section& top, OptimizerSpec& out);
void read_training(options::Section& top, TrainingConfig& out);

// The sections as the readers read them: exactly the keys the chosen types
// accept, unset optional values as null.
nlohmann::json model_json(const ModelSpec& model);
nlohmann::json optimizer_json(const OptimizerSpec& optimizer);
nlohmann::json training_json(const TrainingConfig& training);

// A "model" section alone (as model_json writes it, e.g. from a checkpoint's
// header) back into the model it describes, with the same checks and
// messages as in a config.
core::Result<ModelSpec> parse_model(const nlohmann::json& model);

}  // namespace gossip::train
