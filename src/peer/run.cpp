// run_peer: the training loop of one peer. It resumes from the newest valid
// checkpoint (or, when networked and without one, from the swarm's state),
// evaluates per epoch (and per eval.every_steps), averages with the swarm
// between steps, writes checkpoints and metrics records on schedule, prints
// the per-epoch line and the periodic progress line, and ends with a final
// checkpoint (after a graceful leave when networked). A non-finite loss or an
// exception from the backend stops training: no checkpoint of that state is
// written, the peer leaves without a final exchange, and the summary carries
// the error. So does a final checkpoint that cannot be written.
#include "gossip/peer/run.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "gossip/averaging/engine.hpp"
#include "gossip/averaging/protocol.hpp"
#include "gossip/core/finite.hpp"
#include "gossip/core/log.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/data/factory.hpp"
#include "gossip/peer/checkpoint.hpp"
#include "gossip/peer/metrics.hpp"
#include "gossip/peer/network.hpp"
#include "gossip/peer/trainer.hpp"

namespace gossip::peer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The averaging weight this peer starts with (gossip.weight, as the averaging
// engine reads it); checkpoints keep it, so a resumed peer rejoins with the
// weight it had.
double initial_weight(const config::Config& config, const Trainer& trainer) {
  return averaging::options_from(config.gossip, trainer.shard_size()).weight;
}

// Key files are part of the config: reject a missing, unreadable, too open,
// damaged or wrong-kind one before the data is loaded (invalid argument,
// so every key problem exits 2), naming the key and, for a missing file,
// the command that creates it.
core::Status check_key_files(const config::PeerConfig& peer) {
  const struct {
    const char* key;
    const std::filesystem::path& file;
    const char* kind;
  } keys[] = {{"identity_key", peer.identity_key, "identity"},
              {"swarm_key", peer.swarm_key, "swarm"}};
  for (const auto& k : keys) {
    std::error_code ec;
    if (!std::filesystem::exists(k.file, ec)) {
      return core::invalid_argument(std::string("peer.") + k.key + ": " + k.file.string() +
                                    ": no such file (create it with: gossip-keygen " + k.kind +
                                    " --out " + k.file.string() + ")");
    }
  }
  if (auto id = crypto::load_identity_file(peer.identity_key); !id) {
    return core::invalid_argument("peer.identity_key: " + id.status().message());
  }
  if (auto swarm = crypto::load_swarm_key_file(peer.swarm_key); !swarm) {
    return core::invalid_argument("peer.swarm_key: " + swarm.status().message());
  }
  return core::Status::ok();
}

// Why training stops when the loss (or, at a checkpoint, a parameter) is no
// longer a finite number: the run has diverged and every further step would
// train on garbage.
std::string diverged_message(const Trainer& trainer, const std::string& what) {
  char lr[32];
  std::snprintf(lr, sizeof lr, "%g", trainer.current_lr());
  return "training diverged at step " + std::to_string(trainer.progress().step) + " (" + what +
         "): lower optimizer.lr (" + lr + " at this step) and restart; no checkpoint of the "
         "diverged parameters was written";
}

// The error that ends a joiner whose model every member refused (fetch_state
// says so with kInvalidArgument): it could never average with the swarm, so
// training alone would be a silent misconfiguration.
core::Status model_refusal(const train::ModelSpec& model, const core::Status& fetch_error) {
  return core::invalid_argument(
      "model mismatch: this config's model " + model.describe() + " (fingerprint " +
      averaging::fingerprint_hex(model.fingerprint()) + ") is not the swarm's: " + fetch_error.message() +
      "; give this peer the swarm's model.layers, model.activation and model.loss");
}

// Why training stopped when the backend threw in the middle of the run (a
// CudaError from a lost device, a failed allocation): its state can no longer
// be trusted or even read, so nothing of it is sent or saved.
std::string backend_failure(const Trainer& trainer, const std::exception& e) {
  return "training failed at step " + std::to_string(trainer.progress().step) + ": " + e.what() +
         "; no checkpoint of this state was written";
}

nlohmann::json optional_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

core::Result<RunSummary> run(const config::Config& config, const std::atomic<bool>& stop,
                             const RunHooks& hooks);

}  // namespace

nlohmann::json to_json(const RunSummary& s) {
  return {{"test_accuracy", optional_json(s.test_accuracy)},
          {"test_loss", optional_json(s.test_loss)},
          {"test_bits_per_byte", optional_json(s.test_bits_per_byte)},
          {"train_loss", optional_json(s.train_loss)},
          {"epochs", s.epochs},
          {"steps", s.steps},
          {"wall_s", s.wall_s},
          {"samples_per_s", s.samples_per_s},
          {"device", s.device},
          {"model", s.model},
          {"start_step", s.start_step},
          {"stopped", s.stopped},
          {"killed", s.killed},
          {"checkpoint", s.checkpoint},
          {"peer_id", s.peer_id},
          {"listen", s.listen},
          {"from_swarm_state", s.from_swarm_state},
          {"exchanges_ok", s.exchanges_ok},
          {"exchanges_failed", s.exchanges_failed},
          {"error", s.error.empty() ? nlohmann::json() : nlohmann::json(s.error)}};
}

core::Result<RunSummary> run_peer(const config::Config& config, const std::atomic<bool>& stop) {
  return run_peer(config, stop, RunHooks{});
}

RunSummary failed_run(const config::Config& config, const core::Status& why) {
  RunSummary summary;
  summary.model = config.model.describe();
  summary.error = why.message();
  return summary;
}

core::Result<RunSummary> run_peer(const config::Config& config, const std::atomic<bool>& stop,
                                  const RunHooks& hooks) {
  try {
    return run(config, stop, hooks);
  } catch (const std::exception& e) {
    // Thrown before training began (e.g. by the backend while resuming or
    // applying the swarm's state); later ones are caught around the loop.
    return core::internal_error(std::string("the backend failed before training: ") + e.what());
  }
}

namespace {

core::Result<RunSummary> run(const config::Config& config, const std::atomic<bool>& stop,
                             const RunHooks& hooks) {
  if (config.peer.network) GOSSIP_RETURN_IF_ERROR(check_key_files(config.peer));
  if (hooks.average_only && (!config.peer.network || config.gossip.interval_ms <= 0)) {
    return core::invalid_argument(
        "averaging only needs peer.network true and gossip.interval_ms > 0 (there are no "
        "steps to count)");
  }
  auto killed = [&] { return hooks.kill && hooks.kill->load(std::memory_order_relaxed); };
  auto sets = hooks.datasets.train ? core::Result<data::DatasetPair>(hooks.datasets)
                                   : data::make_datasets(config.data.dataset);
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

  auto store = CheckpointStore::open(config.checkpoint.dir, config.checkpoint.keep,
                                     trainer.checkpoint_expect());
  if (!store) return store.status();
  RunSummary summary;
  summary.device = trainer.backend().device_name();
  summary.model = config.model.describe();
  double weight = initial_weight(config, trainer);
  std::optional<std::filesystem::path> resumed_from;
  if (auto loaded = store->load_newest()) {
    GOSSIP_RETURN_IF_ERROR(trainer.resume(loaded->state).with_context(loaded->file.string()));
    weight = loaded->state.weight;
    resumed_from = loaded->file;
    summary.start_step = loaded->state.step;
    summary.checkpoint = loaded->file.string();
  }
  // Opened before the network starts: a metrics file that cannot be written
  // fails the run before this peer joins anyone.
  auto metrics = MetricsLog::open(config.metrics.file);
  if (!metrics) return metrics.status().with_context("metrics.file");
  std::unique_ptr<PeerNetwork> net;
  // Declared after `net`, so it runs first on every way out.
  struct NetworkClosing {
    const RunHooks& hooks;
    std::unique_ptr<PeerNetwork>& net;
    ~NetworkClosing() {
      if (net && hooks.on_network_closing) hooks.on_network_closing(*net);
    }
  } closing{hooks, net};
  if (config.peer.network) {
    auto started = PeerNetwork::start(config, trainer, weight, hooks.link_filter);
    if (!started) return started.status();
    net = std::move(*started);
    summary.peer_id = net->peer_id();
    summary.listen = net->listen_address();
    if (hooks.on_network) hooks.on_network(*net);
    if (auto joined = net->join(&stop); !joined) {
      // A stop request while joining ends the run like any other stop
      // (final checkpoint as usual); there is nobody to download from or
      // to make a final exchange with.
      if (!stop.load(std::memory_order_relaxed)) return joined;
      core::log_info("peer", "stopped before joining the swarm");
    }
    if (!resumed_from && !hooks.average_only) {
      auto fetched = net->fetch_swarm_state(trainer);
      if (!fetched) {
        if (fetched.status().code() == core::Code::kInvalidArgument) {
          net->leave(trainer, false);  // the others see it go rather than time it out
          return model_refusal(config.model, fetched.status());
        }
        core::log_warn("peer", fetched.status().message() + "; starting from this peer's own "
                               "initialisation");
      } else {
        summary.from_swarm_state = *fetched;
        summary.start_step = trainer.progress().step;
      }
    }
  }
  auto network_counters = [&]() -> std::optional<NetworkCounters> {
    if (!net) return std::nullopt;
    return net->counters();
  };

  (void)metrics->write_start(trainer.progress().step, trainer.epoch(), resumed_from);

  const auto start = Clock::now();
  double train_s = 0.0;
  int64_t samples = 0;
  double epoch_loss_sum = 0.0;
  int64_t epoch_steps = 0;
  double run_loss_sum = 0.0;  // every step of this run, for a run without a whole epoch
  int64_t run_steps = 0;
  std::string diverged;  // why training stopped on a non-finite loss or parameters
  std::string failed;    // why training stopped on an exception from the backend
  int64_t last_saved = resumed_from ? summary.start_step : -1;
  int64_t last_eval = -1;
  std::optional<double> last_accuracy, last_test_loss;
  LossMeter record_meter, progress_meter;
  ProgressLine progress_line(config.metrics.progress_every_s);
  const auto& eval_cfg = config.training.eval;
  const int64_t total_steps = config.training.steps > 0
                                  ? config.training.steps
                                  : config.training.epochs * trainer.steps_per_epoch();

  auto write_train_record = [&] {
    const auto r = record_meter.take();
    if (r.steps == 0) return;
    (void)metrics->write(TrainRecord{trainer.progress().step, trainer.epoch(), r.mean_loss,
                                     trainer.current_lr(), r.samples_per_s, network_counters()});
  };
  auto evaluate = [&] {
    const auto stats = trainer.evaluate();
    if (!config.data.regression()) summary.test_accuracy = stats.accuracy();
    summary.test_loss = stats.mean_loss();
    if (config.model.is_gpt()) summary.test_bits_per_byte = stats.mean_loss() / std::log(2.0);
    last_eval = trainer.progress().step;
    if (config.data.regression()) {
      last_test_loss = stats.mean_loss();
    } else {
      last_accuracy = stats.accuracy();
    }
    if (config.metrics.every_steps == 0) write_train_record();
    (void)metrics->write(EvalRecord{trainer.progress().step, trainer.epoch(), stats.mean_loss(),
                                    stats.accuracy(), stats.rows});
    return stats;
  };
  auto save_checkpoint = [&]() -> core::Status {
    const CheckpointState state = trainer.checkpoint_state(weight);
    if (core::first_non_finite(state.params) < state.params.size()) {
      // The last step's loss was finite but its update was not.
      diverged = diverged_message(trainer, "its update made the parameters non-finite");
      return core::Status(core::Code::kInternal, diverged);
    }
    auto file = store->save(state);
    if (!file) return file.status();
    last_saved = trainer.progress().step;
    summary.checkpoint = file->string();
    core::log_debug("checkpoint", "wrote " + file->string());
    return core::Status::ok();
  };

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
    if (trainer.has_test_set() && eval_cfg.every_epochs > 0 &&
        epoch_done % eval_cfg.every_epochs == 0) {
      const auto stats = evaluate();
      std::snprintf(buf, sizeof buf, "  test loss %.4f", stats.mean_loss());
      line += buf;
      if (!config.data.regression()) {
        std::snprintf(buf, sizeof buf, "  test acc %.2f%%", 100.0 * stats.accuracy());
        line += buf;
      }
    }
    core::log_info("peer", line);
    summary.train_loss = loss;
    epoch_loss_sum = 0.0;
    epoch_steps = 0;
  };

  try {
    if (hooks.on_ready) hooks.on_ready(trainer);
    while (!stop.load(std::memory_order_relaxed) && !killed() && hooks.average_only) {
      net->wait_for_work(std::chrono::milliseconds(20));
      net->between_steps(trainer);
      if (hooks.between_steps) hooks.between_steps(trainer, std::nanf(""));
    }
    while (!stop.load(std::memory_order_relaxed) && !killed() && !hooks.average_only &&
           !trainer.budget_spent()) {
      const auto t0 = Clock::now();
      const float loss = trainer.step();
      const double dt = seconds_since(t0);
      const int64_t step = trainer.progress().step;
      if (!std::isfinite(loss)) {  // before these parameters reach the swarm
        char what[64];
        std::snprintf(what, sizeof what, "loss %g", static_cast<double>(loss));
        diverged = diverged_message(trainer, what);
        break;
      }
      if (net) net->between_steps(trainer);
      if (hooks.between_steps) hooks.between_steps(trainer, loss);
      train_s += dt;
      samples += trainer.last_batch_rows();
      epoch_loss_sum += loss;
      ++epoch_steps;
      run_loss_sum += loss;
      ++run_steps;
      record_meter.add(loss, trainer.last_batch_rows(), dt);
      progress_meter.add(loss, trainer.last_batch_rows(), dt);

      if (config.metrics.every_steps > 0 && step % config.metrics.every_steps == 0) {
        write_train_record();
      }
      if (trainer.at_epoch_end()) report_epoch(trainer.epoch() + 1);
      if (trainer.has_test_set() && eval_cfg.every_steps > 0 && step % eval_cfg.every_steps == 0 &&
          last_eval != step) {
        evaluate();
      }
      if (config.checkpoint.every_steps > 0 && step % config.checkpoint.every_steps == 0) {
        if (auto st = save_checkpoint(); !st) {
          if (!diverged.empty()) break;
          core::log_rate_limited(core::LogLevel::kError, "checkpoint", "periodic",
                                 "checkpoint not written (training goes on): " + st.message(),
                                 std::chrono::seconds(60));
        }
      }
      if (progress_line.due()) {
        const auto r = progress_meter.take();
        ProgressLine::print({step, total_steps, trainer.epoch() + 1, config.training.epochs,
                             r.mean_loss, trainer.current_lr(), r.samples_per_s, last_accuracy,
                             last_test_loss, last_saved, network_counters()});
      }
    }
  } catch (const std::exception& e) {
    failed = backend_failure(trainer, e);
  }

  summary.steps = trainer.progress().step;
  if (killed()) {
    // A crash: the sockets close as the process would close them, and
    // nothing else happens.
    summary.killed = true;
    if (net && hooks.on_network_closing) hooks.on_network_closing(*net);
    net.reset();
    summary.wall_s = seconds_since(start);
    return summary;
  }
  // A diverged or failed replica is neither sent, evaluated nor saved: the
  // newest checkpoint stays the last good one.
  const bool healthy = diverged.empty() && failed.empty();
  summary.stopped = healthy && !trainer.budget_spent();
  if (summary.stopped && !hooks.average_only) {
    core::log_info("peer", "stopping at step " + std::to_string(trainer.progress().step) +
                               ": writing the final checkpoint");
  }
  std::string unsaved;  // why the final checkpoint was not written
  try {
    if (net) net->leave(trainer, healthy);  // nobody should average with a broken replica
    if (healthy && hooks.on_exit) hooks.on_exit(trainer, net.get());
    write_train_record();
    if (healthy && trainer.has_test_set() && !hooks.average_only &&
        last_eval != trainer.progress().step) {
      evaluate();
    }
    if (healthy && last_saved != trainer.progress().step) {
      if (auto st = save_checkpoint(); st) {
        core::log_info("checkpoint", "final checkpoint " + summary.checkpoint);
      } else if (diverged.empty()) {
        unsaved = "final checkpoint not written: " + st.message();
      }
    }
  } catch (const std::exception& e) {
    failed = backend_failure(trainer, e);
  }
  if (net) {
    const auto c = net->counters();
    summary.exchanges_ok = c.exchanges_ok;
    summary.exchanges_failed = c.exchanges_failed;
  }
  summary.error = !diverged.empty() ? diverged : !failed.empty() ? failed : unsaved;
  if (!summary.error.empty()) {
    // Logged here too for hosts of many peers (the simulator), which show
    // the log rather than the summary.
    core::log_error(
        "peer", summary.error + (summary.checkpoint.empty() || !unsaved.empty()
                                     ? std::string()
                                     : " (the last good checkpoint: " + summary.checkpoint + ")"));
  }
  if (!summary.train_loss && run_steps > 0) {
    summary.train_loss = run_loss_sum / static_cast<double>(run_steps);
  }
  summary.steps = trainer.progress().step;
  summary.epochs = trainer.epochs_done();
  summary.wall_s = seconds_since(start);
  summary.samples_per_s = train_s > 0 ? static_cast<double>(samples) / train_s : 0.0;
  return summary;
}

}  // namespace
}  // namespace gossip::peer
