// Trainer: builds a peer's backend and shard, runs steps on the schedule and
// evaluates on the test set.
#include "gossip/peer/trainer.hpp"

#include <string>
#include <utility>

#include "gossip/core/hash.hpp"
#include "gossip/data/shard.hpp"

namespace gossip::peer {
namespace {

// Each peer walks its shard in its own order: the batch seed is value
// shard_index + 1 of splitmix64 seeded with the swarm-wide data seed.
uint64_t batch_seed(uint64_t seed, int shard_index) {
  uint64_t state = seed + core::kSplitMix64Gamma * static_cast<uint64_t>(shard_index);
  return core::splitmix64(state);
}

}  // namespace

core::Result<std::unique_ptr<Trainer>> Trainer::create(
    const config::Config& config, std::shared_ptr<const data::Dataset> train_set,
    std::shared_ptr<const data::Dataset> test_set) {
  if (!train_set) return core::invalid_argument("trainer: no training set");
  const int outputs = train_set->task() == data::Task::kClassification ? train_set->classes()
                                                                       : train_set->target_cols();
  GOSSIP_RETURN_IF_ERROR(config::validate_against_dataset(config, train_set->features(), outputs));

  auto shard = data::make_shard(*train_set, config.data.shard.spec, config.data.shard.num_shards,
                                config.data.shard.index, config.data.seed);
  if (!shard) return core::Status(shard.status().code(), "data." + shard.status().message());
  if (shard->empty()) {
    return core::invalid_argument("data.shard: shard " + std::to_string(config.data.shard.index) +
                                  " of " + std::to_string(config.data.shard.num_shards) +
                                  " is empty");
  }

  // A cosine schedule with total_steps 0 spans the whole training budget.
  config::Config resolved = config;
  auto& schedule = resolved.optimizer.schedule;
  if (schedule.kind == train::ScheduleKind::kCosine && schedule.total_steps == 0) {
    const int64_t rows = static_cast<int64_t>(shard->size());
    const int64_t batch = config.data.batch;
    const int64_t per_epoch =
        config.data.drop_last && rows >= batch ? rows / batch : (rows + batch - 1) / batch;
    schedule.total_steps =
        config.training.steps > 0 ? config.training.steps : config.training.epochs * per_epoch;
  }

  auto backend =
      train::make_backend(resolved.model, resolved.optimizer, config::backend_options(resolved));
  // make_backend's errors already name their key (training.device,
  // optimizer.lr, ...).
  if (!backend) return backend.status();

  return std::unique_ptr<Trainer>(new Trainer(resolved, std::move(train_set), std::move(test_set),
                                              std::move(*shard), std::move(*backend)));
}

Trainer::Trainer(const config::Config& config, std::shared_ptr<const data::Dataset> train_set,
                 std::shared_ptr<const data::Dataset> test_set, std::vector<int64_t> shard,
                 std::unique_ptr<train::Backend> backend)
    : config_(config),
      train_set_(std::move(train_set)),
      test_set_(std::move(test_set)),
      backend_(std::move(backend)),
      batcher_(*train_set_, std::move(shard),
               data::BatcherOptions{config.data.batch, config.data.drop_last, true,
                                    batch_seed(config.data.seed, config.data.shard.index)}) {}

double Trainer::current_lr() const {
  return config_.optimizer.lr_at(progress_.step);
}

float Trainer::step() {
  const data::Batch batch = batcher_.next();
  last_batch_rows_ = batch.rows;
  const float loss = backend_->train_step(batch, static_cast<float>(current_lr()));
  ++progress_.step;
  progress_.data = batcher_.position();
  return loss;
}

train::EvalStats Trainer::evaluate() {
  train::EvalStats total;
  if (!test_set_) return total;
  const auto& eval = config_.training.eval;
  data::EvalBatches batches(*test_set_, eval.batch, eval.max_rows > 0 ? eval.max_rows : -1);
  while (auto batch = batches.next()) total += backend_->evaluate(*batch);
  return total;
}

bool Trainer::budget_spent() const {
  const auto& t = config_.training;
  if (t.steps > 0) return progress_.step >= t.steps;
  if (t.epochs > 0) {
    // The budget is spent once the last epoch has served its final batch.
    const auto pos = batcher_.position();
    return pos.epoch >= t.epochs || (pos.epoch == t.epochs - 1 && batcher_.at_epoch_end());
  }
  return false;
}

core::Status Trainer::restore(const TrainProgress& progress) {
  GOSSIP_RETURN_IF_ERROR(batcher_.restore(progress.data));
  progress_ = progress;
  return core::Status::ok();
}

CheckpointState Trainer::checkpoint_state(double weight) {
  CheckpointState s;
  s.step = progress_.step;
  s.data = batcher_.position();
  s.optimizer_steps = backend_->optimizer_steps();
  s.weight = weight;
  s.fingerprint = config_.model.fingerprint();
  s.model = config_.model.describe();
  s.model_spec = config::to_json(config_).at("model");
  s.params.resize(backend_->param_count());
  s.optimizer_state.resize(backend_->optimizer_state_count());
  backend_->read_parameters(s.params);
  backend_->read_optimizer_state(s.optimizer_state);
  return s;
}

CheckpointExpect Trainer::checkpoint_expect() const {
  return {config_.model.fingerprint(), config_.model.describe(), backend_->param_count(),
          backend_->optimizer_state_count()};
}

core::Status Trainer::resume(const CheckpointState& s) {
  const auto expect = checkpoint_expect();
  if (s.fingerprint != expect.fingerprint || s.params.size() != expect.param_count ||
      s.optimizer_state.size() != expect.state_count) {
    return core::invalid_argument("checkpoint of model " + s.model + " (" +
                                  std::to_string(s.params.size()) +
                                  " parameters) does not fit this model " + expect.model);
  }
  if (s.step < 0 || s.optimizer_steps < 0) {
    return core::corrupt("checkpoint: negative step count");
  }
  GOSSIP_RETURN_IF_ERROR(batcher_.restore(s.data).with_context("checkpoint data position"));
  backend_->write_parameters(s.params);
  backend_->write_optimizer_state(s.optimizer_state);
  backend_->set_optimizer_steps(s.optimizer_steps);
  progress_ = {s.step, s.data};
  return core::Status::ok();
}

core::Status Trainer::adopt_step(int64_t step) {
  if (step < 0) return core::invalid_argument("swarm state: negative step " + std::to_string(step));
  progress_.step = step;
  return core::Status::ok();
}

}  // namespace gossip::peer
