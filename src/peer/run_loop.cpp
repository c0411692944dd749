// PeerRun's train phase (peer_run.hpp): the loop over steps (or, averaging
// only, over averaging work), and what it does on schedule: averaging between
// steps, metrics records, evaluations, the per-epoch line, checkpoints and
// the progress line. The loop stops between steps on a stop request, a kill,
// a spent budget, a non-finite loss or parameters (diverged_), or an
// exception from the backend (failed_).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "gossip/core/finite.hpp"
#include "gossip/core/log.hpp"
#include "peer_run.hpp"

namespace gossip::peer {
namespace {

// Why training stops when the loss (or, at a checkpoint, a parameter) is no
// longer a finite number: the run has diverged and every further step would
// train on garbage.
std::string diverged_message(const Trainer& trainer, const std::string& what) {
  char lr[32];
  std::snprintf(lr, sizeof lr, "%g", trainer.current_lr());
  return "training diverged at step " + std::to_string(trainer.progress().step) + " (" + what +
         "): lower optimizer.lr (" + lr +
         " at this step) and restart; no checkpoint of the "
         "diverged parameters was written";
}

}  // namespace

double PeerRun::seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void PeerRun::train() {
  (void)metrics_->write_start(trainer_->progress().step, trainer_->epoch(), resumed_from_);
  start_ = Clock::now();
  total_steps_ = config_.training.steps > 0 ? config_.training.steps
                                            : config_.training.epochs * trainer_->steps_per_epoch();
  progress_line_.emplace(config_.metrics.progress_every_s);
  try {
    host_.on_ready(*trainer_);
    if (host_.average_only()) {
      average_only_loop();
    } else {
      while (!stopping() && !trainer_->budget_spent() && step()) {
      }
    }
  } catch (const std::exception& e) {
    backend_failed(e);
  }
}

// No steps: the network's averaging work, as it comes, until stopped.
void PeerRun::average_only_loop() {
  while (!stopping()) {
    net_->wait_for_work(std::chrono::milliseconds(20));
    net_->between_steps(*trainer_);
    host_.between_steps(*trainer_, std::nanf(""));
  }
}

// One step and everything due after it.
bool PeerRun::step() {
  const auto t0 = Clock::now();
  const float loss = trainer_->step();
  const double dt = seconds_since(t0);
  const int64_t step = trainer_->progress().step;
  if (!std::isfinite(loss)) {  // before these parameters reach the swarm
    char what[64];
    std::snprintf(what, sizeof what, "loss %g", static_cast<double>(loss));
    diverged_ = diverged_message(*trainer_, what);
    return false;
  }
  if (net_) {
    net_->count_step(*trainer_, loss);
    net_->between_steps(*trainer_);
  }
  host_.between_steps(*trainer_, loss);
  train_s_ += dt;
  samples_ += trainer_->last_batch_rows();
  epoch_loss_sum_ += loss;
  ++epoch_steps_;
  run_loss_sum_ += loss;
  ++run_steps_;
  record_meter_.add(loss, trainer_->last_batch_rows(), dt);
  progress_meter_.add(loss, trainer_->last_batch_rows(), dt);

  if (config_.metrics.every_steps > 0 && step % config_.metrics.every_steps == 0) {
    write_train_record();
  }
  if (trainer_->at_epoch_end()) report_epoch(trainer_->epoch() + 1);
  const auto& eval = config_.training.eval;
  if (trainer_->has_test_set() && eval.every_steps > 0 && step % eval.every_steps == 0 &&
      last_eval_ != step) {
    evaluate();
  }
  if (config_.checkpoint.every_steps > 0 && step % config_.checkpoint.every_steps == 0) {
    if (auto st = save_checkpoint(); !st) {
      if (!diverged_.empty()) return false;
      core::log_rate_limited(core::LogLevel::kError, "checkpoint", "periodic",
                             "checkpoint not written (training goes on): " + st.message(),
                             std::chrono::seconds(60));
    }
  }
  if (progress_line_->due()) print_progress();
  return true;
}

void PeerRun::print_progress() {
  const auto r = progress_meter_.take();
  ProgressLine::print({trainer_->progress().step, total_steps_, trainer_->epoch() + 1,
                       config_.training.epochs, r.mean_loss, trainer_->current_lr(),
                       r.samples_per_s, last_accuracy_, last_test_loss_, last_saved_,
                       network_counters()});
}

// The per-epoch line, with the test set's loss and accuracy when an
// evaluation is due at this epoch.
void PeerRun::report_epoch(int64_t epoch_done) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "epoch %lld", static_cast<long long>(epoch_done));
  std::string line = buf;
  if (config_.training.epochs > 0) {
    std::snprintf(buf, sizeof buf, "/%lld", static_cast<long long>(config_.training.epochs));
    line += buf;
  }
  const double loss = epoch_steps_ ? epoch_loss_sum_ / static_cast<double>(epoch_steps_) : 0.0;
  std::snprintf(buf, sizeof buf, "  step %lld  loss %.4f  lr %.4g  %.0f samples/s",
                static_cast<long long>(trainer_->progress().step), loss, trainer_->current_lr(),
                train_s_ > 0 ? static_cast<double>(samples_) / train_s_ : 0.0);
  line += buf;
  const int64_t every = config_.training.eval.every_epochs;
  if (trainer_->has_test_set() && every > 0 && epoch_done % every == 0) {
    const auto stats = evaluate();
    std::snprintf(buf, sizeof buf, "  test loss %.4f", stats.mean_loss());
    line += buf;
    if (!config_.data.regression()) {
      std::snprintf(buf, sizeof buf, "  test acc %.2f%%", 100.0 * stats.accuracy());
      line += buf;
    }
  }
  core::log_info("peer", line);
  summary_.train_loss = loss;
  epoch_loss_sum_ = 0.0;
  epoch_steps_ = 0;
}

train::EvalStats PeerRun::evaluate() {
  const auto stats = trainer_->evaluate();
  if (!config_.data.regression()) summary_.test_accuracy = stats.accuracy();
  summary_.test_loss = stats.mean_loss();
  if (config_.model.is_gpt()) summary_.test_bits_per_byte = stats.mean_loss() / std::log(2.0);
  last_eval_ = trainer_->progress().step;
  if (net_) {
    net_->record_eval(stats.mean_loss(), config_.data.regression()
                                             ? std::nullopt
                                             : std::optional<double>(stats.accuracy()));
  }
  if (config_.data.regression()) {
    last_test_loss_ = stats.mean_loss();
  } else {
    last_accuracy_ = stats.accuracy();
  }
  if (config_.metrics.every_steps == 0) write_train_record();
  (void)metrics_->write(EvalRecord{trainer_->progress().step, trainer_->epoch(), stats.mean_loss(),
                                   stats.accuracy(), stats.rows});
  return stats;
}

void PeerRun::write_train_record() {
  const auto r = record_meter_.take();
  if (r.steps == 0) return;
  (void)metrics_->write(TrainRecord{trainer_->progress().step, trainer_->epoch(), r.mean_loss,
                                    trainer_->current_lr(), r.samples_per_s, network_counters()});
}

core::Status PeerRun::save_checkpoint() {
  CheckpointState state = trainer_->checkpoint_state(weight_);
  if (net_) state.outer = net_->outer_state();
  if (core::first_non_finite(state.params) < state.params.size()) {
    // The last step's loss was finite but its update was not.
    diverged_ = diverged_message(*trainer_, "its update made the parameters non-finite");
    return core::Status(core::Code::kInternal, diverged_);
  }
  auto file = store_->save(state);
  if (!file) return file.status();
  last_saved_ = trainer_->progress().step;
  summary_.checkpoint = file->string();
  core::log_debug("checkpoint", "wrote " + file->string());
  return core::Status::ok();
}

std::optional<NetworkCounters> PeerRun::network_counters() const {
  if (!net_) return std::nullopt;
  return net_->counters();
}

bool PeerRun::stopping() const {
  return stop_.load(std::memory_order_relaxed) || host_.killed();
}

// Why training stopped when the backend threw in the middle of the run (a
// CudaError from a lost device, a failed allocation): its state can no longer
// be trusted or even read, so nothing of it is sent or saved.
void PeerRun::backend_failed(const std::exception& e) {
  failed_ = "training failed at step " + std::to_string(trainer_->progress().step) + ": " +
            e.what() + "; no checkpoint of this state was written";
}

}  // namespace gossip::peer
