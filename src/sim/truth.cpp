// Observer and consensus: the simulation's measurements of the whole swarm.
#include "truth.hpp"

#include "gossip/peer/trainer.hpp"

namespace gossip::sim {

Observer::Observer(std::unique_ptr<peer::Trainer> periodic, std::unique_ptr<peer::Trainer> full,
                   bool classification)
    : periodic_(std::move(periodic)), full_(std::move(full)), classification_(classification) {}

Observer::~Observer() = default;

core::Result<std::unique_ptr<Observer>> Observer::create(const config::Config& config,
                                                         const data::DatasetPair& datasets,
                                                         int64_t eval_rows) {
  if (!datasets.test) {
    return core::invalid_argument(
        "the simulation evaluates every replica on a test set, and this dataset has none "
        "(data.dataset: give csv a test_csv or a test_fraction)");
  }
  auto make = [&](int64_t rows) {
    config::Config c = config;
    c.peer.network = false;
    c.training.eval.max_rows = rows;
    c.data.shard.num_shards = 1;
    c.data.shard.index = 0;
    return peer::Trainer::create(c, datasets.train, datasets.test);
  };
  auto periodic = make(eval_rows);
  if (!periodic) return periodic.status().with_context("observer");
  auto full = make(0);
  if (!full) return full.status().with_context("observer");
  return std::unique_ptr<Observer>(
      new Observer(std::move(*periodic), std::move(*full), !config.data.regression()));
}

Evaluation Observer::evaluate(std::span<const float> params, bool full) {
  peer::Trainer& t = full ? *full_ : *periodic_;
  t.backend().write_parameters(params);
  const auto stats = t.evaluate();
  Evaluation e;
  e.loss = stats.mean_loss();
  if (classification_) e.accuracy = stats.accuracy();
  return e;
}

Consensus consensus(const std::vector<std::span<const float>>& replicas) {
  Consensus c;
  if (replicas.empty()) return c;
  const size_t n = replicas.front().size();
  std::vector<double> sum(n, 0.0);
  for (const auto& r : replicas) {
    for (size_t k = 0; k < n; ++k) sum[k] += r[k];
  }
  const double inv = 1.0 / static_cast<double>(replicas.size());
  c.mean.resize(n);
  double mean_sq = 0.0;
  for (size_t k = 0; k < n; ++k) {
    sum[k] *= inv;
    c.mean[k] = static_cast<float>(sum[k]);
    mean_sq += sum[k] * sum[k];
  }
  double spread = 0.0;
  for (const auto& r : replicas) {
    for (size_t k = 0; k < n; ++k) {
      const double d = r[k] - sum[k];
      spread += d * d;
    }
  }
  spread *= inv;
  c.distance = mean_sq > 0.0 ? spread / mean_sq : 0.0;
  return c;
}

}  // namespace gossip::sim
