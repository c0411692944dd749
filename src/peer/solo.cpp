// run_solo: the single-peer training loop with per-epoch evaluation and a
// progress line a person can read at a glance.
#include "gossip/peer/solo.hpp"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "gossip/core/log.hpp"
#include "gossip/data/factory.hpp"
#include "gossip/peer/trainer.hpp"

namespace gossip::peer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

nlohmann::json to_json(const RunSummary& s) {
  return {{"test_accuracy", s.test_accuracy},
          {"test_loss", s.test_loss},
          {"train_loss", s.train_loss},
          {"epochs", s.epochs},
          {"steps", s.steps},
          {"wall_s", s.wall_s},
          {"samples_per_s", s.samples_per_s},
          {"device", s.device},
          {"model", s.model}};
}

core::Result<RunSummary> run_solo(const config::Config& config, const std::atomic<bool>& stop) {
  auto sets = data::make_datasets(config.data.dataset);
  if (!sets) return sets.status().with_context("data.dataset");
  core::log_info("peer", "data: " + std::to_string(sets->train->size()) + " training rows, " +
                             std::to_string(sets->test ? sets->test->size() : 0) + " test rows");

  auto trainer_or = Trainer::create(config, sets->train, sets->test);
  if (!trainer_or) return trainer_or.status();
  Trainer& trainer = **trainer_or;
  core::log_info("peer", "model " + config.model.describe() + " (" +
                             std::to_string(config.model.param_count()) + " parameters) on " +
                             trainer.backend().device_name() + ", shard of " +
                             std::to_string(trainer.shard_size()) + " rows");

  RunSummary summary;
  summary.device = trainer.backend().device_name();
  summary.model = config.model.describe();

  const auto start = Clock::now();
  double train_s = 0.0;
  int64_t samples = 0;
  double epoch_loss_sum = 0.0;
  int64_t epoch_steps = 0;
  auto last_progress = start;
  const auto& eval_cfg = config.training.eval;
  const double progress_every_s = config.metrics.progress_every_s;

  auto report_epoch = [&](int64_t epoch_done) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "epoch %lld", static_cast<long long>(epoch_done));
    std::string line = buf;
    if (config.training.epochs > 0) {
      std::snprintf(buf, sizeof buf, "/%lld", static_cast<long long>(config.training.epochs));
      line += buf;
    }
    const double loss = epoch_steps ? epoch_loss_sum / static_cast<double>(epoch_steps) : 0.0;
    std::snprintf(buf, sizeof buf, "  step %lld  loss %.4f  lr %.4g  %.0f samples/s",
                  static_cast<long long>(trainer.progress().step), loss, trainer.current_lr(),
                  train_s > 0 ? static_cast<double>(samples) / train_s : 0.0);
    line += buf;
    const bool eval_now = trainer.has_test_set() && eval_cfg.every_epochs > 0 &&
                          epoch_done % eval_cfg.every_epochs == 0;
    if (eval_now) {
      const auto stats = trainer.evaluate();
      summary.test_accuracy = stats.accuracy();
      summary.test_loss = stats.mean_loss();
      std::snprintf(buf, sizeof buf, "  test loss %.4f  test acc %.2f%%", stats.mean_loss(),
                    100.0 * stats.accuracy());
      line += buf;
    }
    core::log_info("peer", line);
    summary.train_loss = loss;
    summary.epochs = epoch_done;
    epoch_loss_sum = 0.0;
    epoch_steps = 0;
    return eval_now;
  };

  bool evaluated_last = false;
  while (!stop.load(std::memory_order_relaxed) && !trainer.budget_spent()) {
    const auto t0 = Clock::now();
    const float loss = trainer.step();
    train_s += seconds_since(t0);
    samples += trainer.last_batch_rows();
    epoch_loss_sum += loss;
    ++epoch_steps;
    evaluated_last = trainer.at_epoch_end() && report_epoch(trainer.epoch() + 1);
    if (progress_every_s > 0 && seconds_since(last_progress) >= progress_every_s) {
      last_progress = Clock::now();
      char buf[160];
      std::snprintf(buf, sizeof buf, "step %lld  epoch %lld  loss %.4f  %.0f samples/s",
                    static_cast<long long>(trainer.progress().step),
                    static_cast<long long>(trainer.epoch()), loss,
                    train_s > 0 ? static_cast<double>(samples) / train_s : 0.0);
      core::log_info("peer", buf);
    }
  }

  if (!evaluated_last && trainer.has_test_set()) {
    const auto stats = trainer.evaluate();
    summary.test_accuracy = stats.accuracy();
    summary.test_loss = stats.mean_loss();
  }
  summary.steps = trainer.progress().step;
  summary.wall_s = seconds_since(start);
  summary.samples_per_s = train_s > 0 ? static_cast<double>(samples) / train_s : 0.0;
  return summary;
}

}  // namespace gossip::peer
