// SimPeer: a real peer on its own trainer thread, hosted (peer::Host) so that
// the simulation can start, crash, stop and look at it.
#include "sim_peer.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <thread>

#include "gossip/core/log.hpp"
#include "gossip/peer/network.hpp"
#include "gossip/peer/trainer.hpp"

namespace gossip::sim {

namespace {

// Every thread of a simulated peer (its trainer thread, and the io threads it
// starts, which inherit it) runs at this nice value, below the simulator's
// own threads (the clock and the look worker, at the process's). The peers'
// weights relative to one another do not change; what changes is that
// hundreds of runnable peer threads no longer starve a look (measured: 256
// regression peers, a look's 0.3 s of CPU took 1.2-4 s of wall time) or the
// clock. With autogroup scheduling it does not change the simulator's share
// of the host against other processes.
constexpr int kPeerNice = 10;

}  // namespace

const char* peer_state_name(PeerState state) {
  switch (state) {
    case PeerState::kStarting:
      return "starting";
    case PeerState::kRunning:
      return "running";
    case PeerState::kKilled:
      return "killed";
    case PeerState::kLeft:
      return "left";
    case PeerState::kFinished:
      return "finished";
    case PeerState::kFailed:
      return "failed";
  }
  return "?";
}

SimPeer::SimPeer(int index, config::Config config, data::DatasetPair datasets, bool average_only)
    : index_(index),
      config_(std::move(config)),
      datasets_(std::move(datasets)),
      average_only_(average_only) {}

SimPeer::~SimPeer() {
  kill();
  join();
}

void SimPeer::start(std::vector<core::Endpoint> bootstrap, bool hold) {
  hold_.store(hold);
  thread_ = std::thread([this, b = std::move(bootstrap)]() mutable {
    pthread_setname_np(pthread_self(), "sim-peer");  // its io thread inherits the name
    // Best effort: a failure leaves the thread at the process's priority.
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kPeerNice);
    run(std::move(b));
  });
}

void SimPeer::run(std::vector<core::Endpoint> bootstrap) {
  config::Config config = config_;
  config.peer.bootstrap = std::move(bootstrap);

  auto result = peer::run_peer(config, stop_, *this);
  if (has_turn_) {  // a crash or a failure ends the run holding it
    turns_->release();
    has_turn_ = false;
  }
  std::lock_guard lock(mu_);
  net_ = nullptr;
  if (!result) {
    failure_ = result.status();
    state_.store(PeerState::kFailed);
    core::log_error("sim", "peer " + std::to_string(index_) + " failed: " + failure_.message());
  } else if (!result->error.empty()) {  // e.g. diverged: it ran, but did not finish well
    summary_ = *result;
    failure_ = core::Status(core::Code::kInternal, result->error);
    state_.store(PeerState::kFailed);
    core::log_error("sim", "peer " + std::to_string(index_) + " failed: " + result->error);
  } else {
    summary_ = *result;
    state_.store(result->killed ? PeerState::kKilled
                 : leaving_     ? PeerState::kLeft
                                : PeerState::kFinished);
  }
  ended_.store(true);
  cv_.notify_all();
}

void SimPeer::on_network(peer::PeerNetwork& net) {
  net_ = &net;
  std::lock_guard lock(mu_);
  id_ = net.peer_id();
  address_ = net.listen_address();
  filter_ = net.link_filter();
  network_ = &net;
  listening_ = true;
  cv_.notify_all();
}

void SimPeer::on_network_closing(peer::PeerNetwork&) {
  std::lock_guard lock(mu_);
  filter_.reset();
  network_ = nullptr;
}

std::optional<peer::PeerObservation> SimPeer::observe() const {
  std::lock_guard lock(mu_);
  if (network_ == nullptr) return std::nullopt;
  return network_->observe();
}

// Hands over the starting parameters, then (held) keeps serving the network
// until the cohort is released.
void SimPeer::on_ready(peer::Trainer& trainer) {
  std::vector<float> params(trainer.backend().model().param_count());
  trainer.backend().read_parameters(params);
  step_.store(trainer.progress().step);
  {
    std::lock_guard lock(mu_);
    ready_params_ = std::move(params);
    state_.store(PeerState::kRunning);
  }
  // Held: serve partners and joiners, but start no exchange before t = 0,
  // so that an averaging-only swarm starts from its peers' own states.
  const bool held = hold_.load() && net_ != nullptr;
  if (held) net_->set_initiating(false);
  while (hold_.load() && !kill_.load() && !stop_.load()) {
    net_->wait_for_work(std::chrono::milliseconds(20));
    net_->between_steps(trainer);
  }
  if (held) net_->set_initiating(true);
  if (turns_ && !average_only_) take_turn(trainer);
}

void SimPeer::take_turn(peer::Trainer& trainer) {
  const auto serve = [&] {
    if (net_) net_->between_steps(trainer);
    answer_look(trainer);
  };
  const auto give_up = [&] { return kill_.load() || stop_.load(); };
  has_turn_ = turns_->acquire(waiter_, std::chrono::milliseconds(50), serve, give_up);
  turn_since_ = std::chrono::steady_clock::now();
}

void SimPeer::between_steps(peer::Trainer& trainer, float loss) {
  step_.store(trainer.progress().step, std::memory_order_relaxed);
  if (!std::isnan(loss)) {
    loss_sum_ += loss;
    ++loss_steps_;
  }
  answer_look(trainer);
  // Its budget spent, the peer leaves after this step: from now on it is on
  // its way out of the others' views, so the simulation no longer counts it
  // alive.
  if (trainer.budget_spent()) done_.store(true);
  if (!has_turn_) return;
  if (kill_.load() || stop_.load() || trainer.budget_spent()) {
    // The loop ends after this step: its final exchange must not keep a
    // turn its partners need to answer it.
    turns_->release();
    has_turn_ = false;
  } else if (std::chrono::steady_clock::now() - turn_since_ >= turns_->quantum() &&
             turns_->wanted()) {
    turns_->release();
    has_turn_ = false;
    take_turn(trainer);
  }
}

void SimPeer::answer_look(peer::Trainer& trainer) {
  const uint64_t look = want_look_.load(std::memory_order_relaxed);
  if (look == 0) return;
  if (answer_delay_.count() > 0) std::this_thread::sleep_for(answer_delay_);
  Replica r = make_replica(trainer, net_);
  std::lock_guard lock(mu_);
  // A newer look may have been asked for while this one was being taken:
  // answer only the look this copy was started for, and leave the newer
  // request open.
  if (want_look_.load() == look) {
    sample_ = std::move(r);
    sample_look_ = look;
    want_look_.store(0);
    cv_.notify_all();
  }
}

void SimPeer::on_exit(peer::Trainer& trainer, peer::PeerNetwork* net) {
  Replica r = make_replica(trainer, net);
  std::lock_guard lock(mu_);
  final_ = std::move(r);
}

Replica SimPeer::make_replica(peer::Trainer& trainer, peer::PeerNetwork* net) {
  Replica r;
  r.taken = std::chrono::steady_clock::now();
  r.step = trainer.progress().step;
  r.params.resize(trainer.backend().model().param_count());
  trainer.backend().read_parameters(r.params);
  if (loss_steps_ > 0) r.train_loss = loss_sum_ / static_cast<double>(loss_steps_);
  loss_sum_ = 0.0;
  loss_steps_ = 0;
  if (net) {
    r.counters = net->counters();
    r.members = net->live_member_ids();
    if (const auto filter = net->link_filter()) {
      r.links_refused = filter->refused();
      r.blobs_dropped = filter->dropped();
    }
  }
  return r;
}

core::Result<std::string> SimPeer::wait_listening(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return listening_ || ended_.load(); });
  if (listening_) return address_;
  if (!failure_) return failure_;
  return core::timeout_error("peer " + std::to_string(index_) + " did not start listening in time");
}

void SimPeer::release() {
  hold_.store(false);
}

void SimPeer::kill() {
  kill_.store(true);
}

void SimPeer::leave() {
  {
    std::lock_guard lock(mu_);
    leaving_ = true;
  }
  stop_.store(true);
}

void SimPeer::stop_at_end() {
  stop_.store(true);
}

void SimPeer::join() {
  if (thread_.joinable()) thread_.join();
}

bool SimPeer::running() const {
  return thread_.joinable() && !ended_.load();
}

bool SimPeer::alive() const {
  if (!running() || kill_.load() || done_.load()) return false;
  std::lock_guard lock(mu_);
  return !leaving_;
}

std::optional<std::vector<std::string>> SimPeer::view() const {
  std::lock_guard lock(mu_);
  if (network_ == nullptr) return std::nullopt;
  return network_->live_member_ids();
}

core::Status SimPeer::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void SimPeer::request_sample(uint64_t look) {
  std::lock_guard lock(mu_);
  sample_.reset();
  want_look_.store(look);
}

std::optional<Replica> SimPeer::collect_sample(uint64_t look,
                                               std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  const auto answered = [&] { return sample_.has_value() && sample_look_ == look; };
  cv_.wait_until(lock, deadline, [&] { return answered() || ended_.load(); });
  if (!answered()) return std::nullopt;
  auto out = std::move(sample_);
  sample_.reset();
  return out;
}

std::optional<std::vector<float>> SimPeer::take_ready_params() {
  std::lock_guard lock(mu_);
  auto out = std::move(ready_params_);
  ready_params_.reset();
  return out;
}

std::optional<Replica> SimPeer::final_replica() const {
  std::lock_guard lock(mu_);
  return final_;
}

std::optional<peer::RunSummary> SimPeer::summary() const {
  std::lock_guard lock(mu_);
  return summary_;
}

}  // namespace gossip::sim
