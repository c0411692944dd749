// Observer and consensus: the simulation's measurements of the whole swarm.
#include "truth.hpp"

#include "gossip/peer/trainer.hpp"

namespace gossip::sim {

Observer::Observer(Evaluator periodic, Evaluator full, bool classification)
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
  auto make = [&](int64_t rows) -> core::Result<Evaluator> {
    config::Config c = config;
    c.peer.network = false;
    c.training.eval.max_rows = rows;
    c.data.shard.num_shards = 1;
    c.data.shard.index = 0;
    auto trainer = peer::Trainer::create(c, datasets.train, datasets.test);
    if (!trainer) return trainer.status();
    return Evaluator{std::move(*trainer),
                     std::make_unique<data::EvalBatches>(*datasets.test, c.training.eval.batch,
                                                         rows > 0 ? rows : -1)};
  };
  auto periodic = make(eval_rows);
  if (!periodic) return periodic.status().with_context("observer");
  auto full = make(0);
  if (!full) return full.status().with_context("observer");
  return std::unique_ptr<Observer>(
      new Observer(std::move(*periodic), std::move(*full), !config.data.regression()));
}

Evaluation Observer::evaluate(std::span<const float> params, bool full) {
  Evaluator& ev = full ? full_ : periodic_;
  train::Backend& backend = ev.trainer->backend();
  backend.write_parameters(params);
  // The same walk as Trainer::evaluate, on buffers kept from call to call.
  train::EvalStats stats;
  ev.batches->reset();
  while (auto batch = ev.batches->next()) stats += backend.evaluate(*batch);
  Evaluation e;
  e.loss = stats.mean_loss();
  if (classification_) e.accuracy = stats.accuracy();
  return e;
}

void ConsensusStream::add(std::span<const float> replica) {
  if (count_ == 0) {
    mean_.assign(replica.size(), 0.0);
    m2_.assign(replica.size(), 0.0);
  }
  ++count_;
  const double inv = 1.0 / static_cast<double>(count_);
  for (size_t k = 0; k < mean_.size(); ++k) {
    const double d = replica[k] - mean_[k];
    mean_[k] += d * inv;
    m2_[k] += d * (replica[k] - mean_[k]);
  }
}

Consensus ConsensusStream::result() const {
  Consensus c;
  c.mean.resize(mean_.size());
  double mean_sq = 0.0, spread = 0.0;
  for (size_t k = 0; k < mean_.size(); ++k) {
    c.mean[k] = static_cast<float>(mean_[k]);
    mean_sq += mean_[k] * mean_[k];
    spread += m2_[k];
  }
  spread /= static_cast<double>(count_);
  c.distance = mean_sq > 0.0 ? spread / mean_sq : 0.0;
  return c;
}

}  // namespace gossip::sim
