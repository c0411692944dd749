// Swarm-wide truth, private to the sim module: what only an observer that
// sees every replica can measure. Consensus distance over the replicas and
// their plain mean (the averaged model), and test-set evaluations of any
// parameter vector on a backend of the observer's own (so no peer's training
// is slowed or touched by being looked at).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/core/status.hpp"
#include "gossip/data/batcher.hpp"
#include "gossip/data/factory.hpp"

namespace gossip::peer {
class Trainer;
}

namespace gossip::sim {

struct Evaluation {
  std::optional<double> accuracy;  // null for regression tasks
  double loss = 0.0;
};

class Observer {
 public:
  // Builds the observer's backends for `config`'s model. `eval_rows` bounds
  // the rows of the periodic evaluations (0: all); final ones use all rows.
  // Needs a test set (kInvalidArgument otherwise).
  static core::Result<std::unique_ptr<Observer>> create(const config::Config& config,
                                                        const data::DatasetPair& datasets,
                                                        int64_t eval_rows);
  ~Observer();

  // Evaluates `params` (param_count floats) on the test set: the first
  // eval_rows rows, or every row when `full`. Allocates nothing: a look
  // evaluates hundreds of replicas on a thread that shares malloc's arenas
  // with every peer's threads. Calling thread only.
  Evaluation evaluate(std::span<const float> params, bool full);
  bool classification() const { return classification_; }

 private:
  // The backends a look writes replicas into, with their test-set walkers,
  // built once and rewound before each evaluation.
  struct Evaluator {
    std::unique_ptr<peer::Trainer> trainer;
    std::unique_ptr<data::EvalBatches> batches;
  };
  Observer(Evaluator periodic, Evaluator full, bool classification);
  Evaluator periodic_;
  Evaluator full_;
  bool classification_;
};

// The plain mean of the replicas (all the same length, at least one) and the
// consensus distance  mean_i ||x_i - xbar||^2 / ||xbar||^2  (0 when xbar is 0).
struct Consensus {
  std::vector<float> mean;
  double distance = 0.0;
};

// Both, taking the replicas one at a time (Welford's update per coordinate,
// in double, which stays exact where the spread is 1e-12 of the mean), so
// that a look never needs every replica at once: memory is two doubles per
// parameter whatever the number of replicas. One thread at a time.
class ConsensusStream {
 public:
  // `replica` has the length of the first one added.
  void add(std::span<const float> replica);
  size_t count() const { return count_; }
  // Requires count() >= 1.
  Consensus result() const;

 private:
  size_t count_ = 0;
  std::vector<double> mean_, m2_;
};

}  // namespace gossip::sim
