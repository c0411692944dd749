// run_peer and its phases (PeerRun, peer_run.hpp): load, resume, join,
// sync_state, train (run_loop.cpp) and finish. A non-finite loss or an
// exception from the backend stops training: no checkpoint of that state is
// written, the peer leaves without a final exchange, and the summary carries
// the error. So does a final checkpoint that cannot be written.
#include "gossip/peer/run.hpp"

#include <chrono>
#include <cmath>
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
#include "peer_run.hpp"

namespace gossip::peer {
namespace {

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
core::Status check_key_files(const PeerConfig& peer) {
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

// The error that ends a joiner whose model every member refused (fetch_state
// says so with kInvalidArgument): it could never average with the swarm, so
// training alone would be a silent misconfiguration.
core::Status model_refusal(const train::ModelSpec& model, const core::Status& fetch_error) {
  if (fetch_error.message().find(averaging::kModeMismatch) != std::string::npos) {
    return core::invalid_argument(
        std::string(averaging::kModeMismatch) + " this peer's gossip.mode is not the swarm's: " +
        fetch_error.message() + "; give this peer the swarm's gossip.mode");
  }
  return core::invalid_argument("model mismatch: this config's model " + model.describe() +
                                " (fingerprint " + averaging::fingerprint_hex(model.fingerprint()) +
                                ") is not the swarm's: " + fetch_error.message() +
                                "; give this peer the swarm's " +
                                (model.is_gpt() ? "model.type, vocab, block, layers, heads and embd"
                                                : "model.type, layers, activation and loss"));
}

nlohmann::json optional_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

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

RunSummary failed_run(const config::Config& config, const core::Status& why) {
  RunSummary summary;
  summary.model = config.model.describe();
  summary.error = why.message();
  return summary;
}

core::Result<RunSummary> run_peer(const config::Config& config, const std::atomic<bool>& stop) {
  Host gossip_peer;  // every default
  return run_peer(config, stop, gossip_peer);
}

core::Result<RunSummary> run_peer(const config::Config& config, const std::atomic<bool>& stop,
                                  Host& host) {
  try {
    return PeerRun(config, stop, host).run();
  } catch (const std::exception& e) {
    // Thrown before training began (e.g. by the backend while resuming or
    // applying the swarm's state); later ones are caught around the loop.
    return core::internal_error(std::string("the backend failed before training: ") + e.what());
  }
}

PeerRun::PeerRun(const config::Config& config, const std::atomic<bool>& stop, Host& host)
    : config_(config), stop_(stop), host_(host) {}

PeerRun::~PeerRun() {
  close_network();
}

core::Result<RunSummary> PeerRun::run() {
  GOSSIP_RETURN_IF_ERROR(load());
  GOSSIP_RETURN_IF_ERROR(resume());
  GOSSIP_RETURN_IF_ERROR(join());
  GOSSIP_RETURN_IF_ERROR(sync_state());
  train();
  return finish();
}

// Key files first (a missing key should not wait for the data to load),
// then the data, the trainer and the checkpoint folder (its lock: a folder
// another peer holds fails here).
core::Status PeerRun::load() {
  if (config_.peer.network) GOSSIP_RETURN_IF_ERROR(check_key_files(config_.peer));
  if (host_.average_only() && !config_.peer.network) {
    return core::internal_error("Host::average_only needs peer.network true");
  }
  datasets_ = host_.shared_datasets();
  if (!datasets_.train) {
    auto sets = data::make_datasets(config_.data.dataset);
    if (!sets) return sets.status().with_context("data.dataset");
    datasets_ = *sets;
  }
  core::log_info("peer", "data: " + std::to_string(datasets_.train->size()) + " training rows, " +
                             std::to_string(datasets_.test ? datasets_.test->size() : 0) +
                             " test rows");

  auto trainer = Trainer::create(config_, datasets_.train, datasets_.test);
  if (!trainer) return trainer.status();
  trainer_ = std::move(*trainer);
  core::log_info("peer", "model " + config_.model.describe() + " (" +
                             std::to_string(config_.model.param_count()) + " parameters) on " +
                             trainer_->backend().device_name() + ", shard of " +
                             std::to_string(trainer_->shard_size()) + " rows");
  auto store = CheckpointStore::open(config_.checkpoint.dir, config_.checkpoint.keep,
                                     trainer_->checkpoint_expect());
  if (!store) return store.status();
  store_.emplace(std::move(*store));
  summary_.device = trainer_->backend().device_name();
  summary_.model = config_.model.describe();
  weight_ = initial_weight(config_, *trainer_);
  return core::Status::ok();
}

// The newest valid checkpoint, when there is one (the store logs which, or
// why the peer starts fresh), and the metrics file: opened before the
// network starts, so a metrics file that cannot be written fails the run
// before this peer joins anyone.
core::Status PeerRun::resume() {
  if (auto loaded = store_->load_newest()) {
    GOSSIP_RETURN_IF_ERROR(trainer_->resume(loaded->state).with_context(loaded->file.string()));
    weight_ = loaded->state.weight;
    resumed_from_ = loaded->file;
    resumed_outer_ = std::move(loaded->state.outer);
    summary_.start_step = loaded->state.step;
    summary_.checkpoint = loaded->file.string();
    last_saved_ = summary_.start_step;
  }
  auto metrics = MetricsLog::open(config_.metrics.file);
  if (!metrics) return metrics.status().with_context("metrics.file");
  metrics_.emplace(std::move(*metrics));
  return core::Status::ok();
}

// Starts the network and joins the swarm. A stop request while joining ends
// the run like any other stop (final checkpoint as usual); there is then
// nobody to download from or to make a final exchange with.
core::Status PeerRun::join() {
  if (!config_.peer.network) return core::Status::ok();
  auto started = PeerNetwork::start(config_, *trainer_, weight_, host_.wants_link_filter(),
                                    host_.io_threads());
  if (!started) return started.status();
  net_ = std::move(*started);
  summary_.peer_id = net_->peer_id();
  summary_.listen = net_->listen_address();
  GOSSIP_RETURN_IF_ERROR(net_->resume_outer_state(std::move(resumed_outer_)));
  host_.on_network(*net_);
  if (auto joined = net_->join(&stop_); !joined) {
    if (!stop_.load(std::memory_order_relaxed)) return joined;
    core::log_info("peer", "stopped before joining the swarm");
  }
  return core::Status::ok();
}

// A peer without a checkpoint of its own starts where the swarm is. When
// every member refuses because the models differ, it leaves (the others see
// it go rather than time it out) and fails; when nobody answers, it starts
// from its own initialisation.
core::Status PeerRun::sync_state() {
  if (!net_ || resumed_from_ || host_.average_only()) return core::Status::ok();
  auto fetched = net_->fetch_swarm_state(*trainer_);
  if (!fetched) {
    if (fetched.status().code() == core::Code::kInvalidArgument) {
      net_->leave(*trainer_, false);
      return model_refusal(config_.model, fetched.status());
    }
    core::log_warn("peer", fetched.status().message() +
                               "; starting from this peer's own "
                               "initialisation");
    return core::Status::ok();
  }
  summary_.from_swarm_state = *fetched;
  summary_.start_step = trainer_->progress().step;
  return core::Status::ok();
}

RunSummary PeerRun::finish() {
  summary_.steps = trainer_->progress().step;
  if (host_.killed()) return crashed();
  const bool healthy = diverged_.empty() && failed_.empty();
  summary_.stopped = healthy && !trainer_->budget_spent();
  if (summary_.stopped && !host_.average_only()) {
    core::log_info("peer", "stopping at step " + std::to_string(trainer_->progress().step) +
                               ": writing the final checkpoint");
  }
  leave_and_save();
  summarize();
  return summary_;
}

// A crash: the sockets close as the process would close them, and nothing
// else happens.
RunSummary PeerRun::crashed() {
  summary_.killed = true;
  close_network();
  summary_.wall_s = seconds_since(start_);
  return summary_;
}

// The last exchange and LEAVE, then the final evaluation and checkpoint. A
// diverged or failed replica is neither sent, evaluated nor saved: the
// newest checkpoint stays the last good one.
void PeerRun::leave_and_save() {
  const bool healthy = diverged_.empty() && failed_.empty();
  try {
    if (net_) net_->leave(*trainer_, healthy);  // nobody should average with a broken replica
    if (healthy) host_.on_exit(*trainer_, net_.get());
    write_train_record();
    if (healthy && trainer_->has_test_set() && !host_.average_only() &&
        last_eval_ != trainer_->progress().step) {
      evaluate();
    }
    if (healthy && last_saved_ != trainer_->progress().step) {
      if (auto st = save_checkpoint(); st) {
        core::log_info("checkpoint", "final checkpoint " + summary_.checkpoint);
      } else if (diverged_.empty()) {
        unsaved_ = "final checkpoint not written: " + st.message();
      }
    }
  } catch (const std::exception& e) {
    backend_failed(e);
  }
}

void PeerRun::summarize() {
  if (net_) {
    const auto c = net_->counters();
    summary_.exchanges_ok = c.exchanges_ok;
    summary_.exchanges_failed = c.exchanges_failed;
  }
  summary_.error = !diverged_.empty() ? diverged_ : !failed_.empty() ? failed_ : unsaved_;
  if (!summary_.error.empty()) {
    // Logged here too for hosts of many peers (the simulator), which show
    // the log rather than the summary.
    core::log_error("peer", summary_.error +
                                (summary_.checkpoint.empty() || !unsaved_.empty()
                                     ? std::string()
                                     : " (the last good checkpoint: " + summary_.checkpoint + ")"));
  }
  if (!summary_.train_loss && run_steps_ > 0) {
    summary_.train_loss = run_loss_sum_ / static_cast<double>(run_steps_);
  }
  summary_.steps = trainer_->progress().step;
  summary_.epochs = trainer_->epochs_done();
  summary_.wall_s = seconds_since(start_);
  summary_.samples_per_s = train_s_ > 0 ? static_cast<double>(samples_) / train_s_ : 0.0;
}

void PeerRun::close_network() {
  if (!net_) return;
  host_.on_network_closing(*net_);
  net_.reset();
}

}  // namespace gossip::peer
