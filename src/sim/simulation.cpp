// Simulation: start-up (keys, shared data, observer, the first peers), the
// clock that fires events and samples, and the end (every peer stopped, the
// final measurement, summary.json and report.html).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "gossip/core/log.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/sim/report.hpp"
#include "simulation_impl.hpp"

namespace gossip::sim {

using std::chrono::milliseconds;

double theory_factor(int n) {
  return n < 2 ? 0.0 : 1.0 - 1.0 / static_cast<double>(n - 1);
}

Simulation::Simulation(const SimOptions& options)
    : options_(options), sim_(options_.config.sim), rng_(options.seed) {}

double Simulation::now_s() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

Simulation::~Simulation() {
  stop_look_worker();  // a run that returned early (an error) may have one running
}

// Clock thread and look worker.
void Simulation::write_record(const nlohmann::json& record) {
  const std::string line = record.dump();
  std::lock_guard lock(record_mu_);
  metrics_ << line << '\n';
  metrics_.flush();  // a crash loses at most the line being written
}

// One peer's config: the shared config with its own folder, keys, shard and
// a free loopback port; no per-epoch evaluation (the observer measures) and
// no progress lines of its own.
config::Config Simulation::peer_config(int index) const {
  config::Config c = options_.config;
  const auto dir = options_.out / ("peer-" + std::to_string(index));
  c.peer.network = true;
  c.peer.listen = core::Endpoint{"127.0.0.1", 0};
  c.peer.advertise = core::Endpoint{};
  c.peer.data_dir = dir;
  c.peer.identity_key = dir / "identity.key";
  c.peer.swarm_key = options_.out / "swarm.key";
  c.checkpoint.dir = dir;
  c.metrics.file = dir / "metrics.jsonl";
  c.metrics.progress_every_s = 0;
  c.training.eval.every_epochs = 0;
  c.training.eval.every_steps = 0;
  c.model.seed = options_.seed + (sim_.average_only ? static_cast<uint64_t>(index) : 0);
  c.data.seed = options_.seed;
  c.data.dataset.seed = options_.seed;
  if (options_.config.data.shard.num_shards <= 1) c.data.shard.num_shards = sim_.peers;
  c.data.shard.index = index % c.data.shard.num_shards;
  return c;
}

core::Status check_options(const SimOptions& options) {
  namespace fs = std::filesystem;
  const config::Config& cfg = options.config;
  const std::string file =
      options.config_file.empty() ? "the config" : options.config_file.string();
  if (!cfg.sim.present) {
    return core::invalid_argument(
        file +
        ": has no \"sim\" section, so it is not a simulation (add one, see "
        "configs/sim-fashion-mnist.json; a peer config runs with gossip-peer --config " +
        (options.config_file.empty() ? std::string("FILE") : file) + ")");
  }
  if (auto st = check_sim_script(cfg.sim); !st) return st.with_context(file);
  if (cfg.sim.average_only && cfg.gossip.interval_ms <= 0) {
    return core::invalid_argument(file +
                                  ": gossip.interval_ms: averaging only (sim.average_only) needs "
                                  "a time-based schedule, interval_ms > 0");
  }
  const fs::path& out = options.out;
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) {
    return core::invalid_argument("--out " + out.string() + ": exists and is not a folder");
  }
  if (fs::exists(out / "metrics.jsonl", ec)) {
    return core::invalid_argument("--out " + out.string() +
                                  ": holds an earlier run (metrics.jsonl); choose a new folder");
  }
  fs::create_directories(out, ec);
  if (ec) {
    return core::invalid_argument("--out " + out.string() +
                                  ": cannot create the folder: " + ec.message());
  }
  return core::Status::ok();
}

core::Status Simulation::prepare() {
  const auto& cfg = options_.config;
  GOSSIP_RETURN_IF_ERROR(check_options(options_));
  GOSSIP_RETURN_IF_ERROR(
      crypto::write_swarm_key_file(options_.out / "swarm.key", crypto::SwarmKey::generate()));

  auto sets = data::make_datasets(cfg.data.dataset);
  if (!sets) return sets.status().with_context("data.dataset");
  datasets_ = *sets;
  auto observer = Observer::create(cfg, datasets_, sim_.eval_rows);
  if (!observer) return observer.status();
  observer_ = std::move(*observer);

  if (!sim_.average_only) {
    // A turn lasts 5 ms of steps: long against a context switch, short
    // against an exchange's patience (a waiting peer still answers).
    const auto cores = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
    const int slots = static_cast<int>(sim_.step_slots > 0 ? sim_.step_slots : cores);
    turns_ = std::make_unique<StepTurns>(slots, std::chrono::microseconds(5000));
  }
  metrics_.open(options_.out / "metrics.jsonl");
  if (!metrics_)
    return core::io_error((options_.out / "metrics.jsonl").string() + ": cannot write");
  return core::Status::ok();
}

core::Result<SimPeer*> Simulation::start_peer(std::vector<core::Endpoint> bootstrap, bool hold) {
  const int index = static_cast<int>(peers_.size());
  auto config = peer_config(index);
  std::error_code ec;
  std::filesystem::create_directories(config.peer.data_dir, ec);
  if (ec) return core::io_error(config.peer.data_dir.string() + ": " + ec.message());
  GOSSIP_RETURN_IF_ERROR(
      crypto::write_identity_file(config.peer.identity_key, crypto::StaticKeypair::generate()));
  peers_.push_back(
      std::make_unique<SimPeer>(index, std::move(config), datasets_, sim_.average_only));
  SimPeer* p = peers_.back().get();
  if (auto d = options_.answer_delay.find(index); d != options_.answer_delay.end()) {
    p->set_answer_delay(d->second);
  }
  p->set_turns(turns_.get());
  if (metrics_http_) metrics_http_->add(p);
  p->start(std::move(bootstrap), hold);
  auto address = p->wait_listening(milliseconds(30000));
  if (!address) return address.status();
  apply_faults_to(*p);
  if (all_links_shape_) shape_every_link_of(*p, *all_links_shape_);
  return p;
}

// The training budget is the swarm's: every peer follows the same schedule
// (joiners adopt the swarm's step), so the run ends when the first peer has
// spent it, and the others leave then. Left to finish on their own, peers
// that the OS scheduled less would train their last steps alone, which on
// skewed shards drags the swarm's average away from where it had converged.
bool Simulation::finished() const {
  if (sim_.duration_s > 0 && now_s() >= sim_.duration_s) return true;
  if (sim_.average_only) return false;
  return std::none_of(peers_.begin(), peers_.end(), [](const auto& p) { return p->running(); }) ||
         std::any_of(peers_.begin(), peers_.end(),
                     [](const auto& p) { return p->state() == PeerState::kFinished; });
}

// The first peer founds the swarm, the others join through it and download
// its state; all wait until the last is ready, then train together from
// t = 0.
core::Status Simulation::start_cohort() {
  const auto t0 = Clock::now();
  auto first = start_peer({}, /*hold=*/true);
  if (!first) return first.status().with_context("peer 0");
  const auto seed_address = core::parse_endpoint((*first)->address());
  const auto deadline = t0 + std::chrono::seconds(120);
  for (int i = 1; i < sim_.peers; ++i) {
    std::vector<core::Endpoint> bootstrap;
    if (seed_address) bootstrap.push_back(*seed_address);
    auto p = start_peer(bootstrap, /*hold=*/true);
    if (!p) {
      core::log_error("sim", "peer " + std::to_string(i) + ": " + p.status().message());
      continue;
    }
    // One joiner at a time: a peer still downloading its state cannot serve
    // one (its trainer thread is busy), so two joiners that picked each other
    // as donors each waited out the 30 s state timeout. Every member a joiner
    // can pick is then held and serving.
    while ((*p)->state() == PeerState::kStarting && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  for (auto& p : peers_) {
    while (p->state() == PeerState::kStarting && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (p->state() == PeerState::kStarting) {
      core::log_error("sim", "peer " + std::to_string(p->index()) +
                                 " was not ready after 120 s; the others start without it");
    }
  }
  wait_for_views();
  for (auto& p : peers_) p->release();
  startup_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
  return core::Status::ok();
}

// Held peers still run their membership: wait (at most kViewWait) until each
// ready peer sees every other ready one, so that the swarm trains together
// from t = 0 and the first look's views are the whole cohort, not the few
// members a joiner had heard of when it got its state. Said once if not.
void Simulation::wait_for_views() {
  constexpr auto kViewWait = std::chrono::seconds(30);
  const auto t0 = Clock::now();
  size_t ready = 0, least = 0;
  for (;;) {
    ready = 0;
    least = SIZE_MAX;
    for (const auto& p : peers_) {
      if (p->state() != PeerState::kRunning) continue;
      ++ready;
      const auto view = p->view();
      least = std::min(least, view ? view->size() + 1 : 0);
    }
    if (ready == 0 || least >= ready || Clock::now() - t0 >= kViewWait) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  if (ready > 0 && least < ready) {
    core::log_warn(
        "sim",
        "released the cohort after waiting " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t0).count()) +
            " s: the smallest view holds " + std::to_string(least) + " of its " +
            std::to_string(ready) + " ready peers");
  }
}

core::Result<nlohmann::json> Simulation::run(const std::atomic<bool>& stop) {
  GOSSIP_RETURN_IF_ERROR(prepare());
  if (sim_.metrics_http.enabled()) {
    auto served = SwarmMetrics::start(sim_.metrics_http);
    if (!served) return served.status();
    metrics_http_ = std::move(served).value();
  }
  const int n = sim_.peers;
  const auto& model = options_.config.model;
  GOSSIP_RETURN_IF_ERROR(start_cohort());
  start_ = Clock::now();
  write_record({{"type", "start"},
                {"t_s", 0.0},
                {"peers", n},
                {"mode", sim_.average_only ? "average_only" : "train"},
                {"model", model.describe()},
                {"param_count", model.param_count()},
                {"task", options_.config.model.is_gpt() ? "language_model"
                         : observer_->classification()  ? "classification"
                                                        : "regression"},
                {"theory_factor", theory_factor(n)},
                {"name", options_.name},
                {"startup_s", startup_s_}});
  next_sample_s_ = 0.0;  // the first look is at the start, before much training
  sample_period_s_ = sim_.sample_every_s;
  start_look_worker();

  while (!stop.load() && !finished()) {
    while (next_event_ < sim_.events.size() && event_due(sim_.events[next_event_])) {
      const size_t i = next_event_++;
      if (auto st = apply_event(i, sim_.events[i]); !st) {
        core::log_error("sim", "sim.events[" + std::to_string(i) + "]: " + st.message());
      }
    }
    if (now_s() >= next_sample_s_) {
      // On a fixed schedule from the start, so looks do not drift by their
      // own length; one asked late (an event that took long) is flagged. A
      // look due while the worker still completes the previous one is not
      // asked: that look took longer than the period, so keep_up has slowed
      // the schedule (said once, and in the summary).
      const double due = next_sample_s_;
      bool free = false;
      {
        std::lock_guard lock(look_mu_);
        free = !look_busy_;
      }
      if (free) post_look(ask_look(due));
      next_sample_s_ = due + sample_period_s();
    }
    // Events at a step are polled; a look due sooner is not overslept.
    const double to_next_s = std::max(0.0, next_sample_s_ - now_s());
    std::this_thread::sleep_for(
        std::min(milliseconds(50), milliseconds(static_cast<int64_t>(1000.0 * to_next_s))));
  }
  return finish();
}

nlohmann::json Simulation::finish() {
  // One last look at everyone still running, then they leave gracefully and
  // hand over the replica they ended with.
  stop_look_worker();  // its look, if any, completes first
  if (std::any_of(peers_.begin(), peers_.end(), [](const auto& p) { return p->running(); })) {
    LookJob last = ask_look(now_s());
    complete_look(last);
  }
  for (auto& p : peers_) {
    if (p->running()) p->stop_at_end();
  }
  for (auto& p : peers_) p->join();

  std::vector<PeerLook> finals(peers_.size());
  for (size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i]->state() != PeerState::kFinished) continue;
    finals[i].replica = peers_[i]->final_replica();
    finals[i].alive = finals[i].replica.has_value();
    if (finals[i].replica) finals[i].step = finals[i].replica->step;
  }
  std::vector<SimPeer*> all;
  for (auto& p : peers_) all.push_back(p.get());
  nlohmann::json summary =
      measure(finals, all, std::set<std::string>(gone_ids_.begin(), gone_ids_.end()), joiners_,
              /*final_eval=*/true);
  summary["type"] = "final";
  summary["t_s"] = now_s();
  summary["wall_s"] = now_s();
  summary["startup_s"] = startup_s_;
  summary["final_peers"] = summary["peers"];  // each peer's final evaluation
  summary["peers"] = peers_.size();
  summary["mode"] = sim_.average_only ? "average_only" : "train";
  nlohmann::json tta = nlohmann::json::object();
  for (double target : {0.85, 0.88}) {
    nlohmann::json t = nullptr;
    for (const auto& s : samples_) {
      const auto& acc = s["averaged_model_accuracy"];
      if (acc.is_number() && acc.get<double>() >= target) {
        t = s["t_s"];
        break;
      }
    }
    char key[16];
    std::snprintf(key, sizeof key, "%.2f", target);
    tta[key] = t;
  }
  summary["time_to_accuracy_s"] = tta;
  summary["sample_every_s"] = sim_.sample_every_s;
  summary["sampling_slowed"] = sampling_slowed_;
  int64_t looks_late = 0;
  for (const auto& s : samples_) looks_late += s.value("on_time", true) ? 0 : 1;
  summary["samples"] = samples_.size();
  summary["samples_late"] = looks_late;
  if (sim_.average_only) add_decay(summary);
  nlohmann::json joiners = nlohmann::json::array();
  for (const auto& [index, first] : joiner_first_) joiners.push_back(first);
  summary["joiners"] = joiners;
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& p : peers_) {
    if (p->state() == PeerState::kFailed) {
      failed.push_back({{"index", p->index()}, {"error", p->failure().message()}});
    }
  }
  summary["failed_peers"] = failed;
  summary["error"] = run_error(failed);
  // Events the run ended before (an at_step the swarm never reached, an at_s
  // past the end): a script that did not happen must not pass unnoticed.
  nlohmann::json not_fired = nlohmann::json::array();
  for (size_t i = next_event_; i < sim_.events.size(); ++i) {
    const auto& e = sim_.events[i];
    char at_s[32];
    std::snprintf(at_s, sizeof at_s, "%g s", e.at_s);
    const std::string at = e.at_step >= 0 ? "step " + std::to_string(e.at_step) : std::string(at_s);
    core::log_warn("sim", "sim.events[" + std::to_string(i) + "] (" + sim_event_name(e.kind) +
                              " at " + at + ") never happened: the run ended first");
    not_fired.push_back(
        {{"index", i},
         {"event", sim_event_name(e.kind)},
         {"at_s", e.at_s >= 0 ? nlohmann::json(e.at_s) : nlohmann::json()},
         {"at_step", e.at_step >= 0 ? nlohmann::json(e.at_step) : nlohmann::json()}});
  }
  summary["events_not_fired"] = not_fired;
  // Views as the last look saw them: the final replicas are taken after
  // each peer's LEAVE, when its view is already emptying.
  for (const char* k : {"killed_still_in_views", "members_min", "members_max"}) {
    summary[k] = last_sample_.value(k, nlohmann::json(0));
  }
  summary["out"] = options_.out.string();
  summary["metrics"] = (options_.out / "metrics.jsonl").string();
  summary["report"] = (options_.out / "report.html").string();
  write_record(summary);
  metrics_.close();
  if (std::ofstream f(options_.out / "summary.json"); f) f << summary.dump(2) << '\n';
  auto st = write_report(options_.out / "metrics.jsonl", options_.out / "report.html",
                         "gossip-sim: " + options_.name);
  if (!st) {
    core::log_error("sim", "report not written: " + st.message());
    summary["report"] = nullptr;
  }
  return summary;
}

// Why the run as a whole failed (gossip-sim then exits 1), or null: no peer
// finished (each was killed or failed, so there is no final model to
// measure), or some peer's run failed (failed_peers names each). Peers a
// script killed are not failures: the swarm is meant to survive them.
nlohmann::json Simulation::run_error(const nlohmann::json& failed_peers) const {
  const auto finished = std::count_if(peers_.begin(), peers_.end(), [](const auto& p) {
    return p->state() == PeerState::kFinished || p->state() == PeerState::kLeft;
  });
  std::string why;
  if (finished == 0) why = "no peer finished";
  if (!failed_peers.empty()) {
    why += (why.empty() ? "" : ": ") + std::to_string(failed_peers.size()) + " of " +
           std::to_string(peers_.size()) + " peers failed (first, peer " +
           std::to_string(failed_peers[0]["index"].get<int>()) + ": " +
           failed_peers[0]["error"].get<std::string>() + ")";
  } else if (finished == 0) {
    why += ": every peer was killed";
  }
  return why.empty() ? nlohmann::json() : nlohmann::json(why);
}

// Averaging only: the measured per-exchange decay factor of the consensus
// distance, fitted by least squares through the origin to ln(D(K)/D(0))
// over every sample after the first with D > 0 (D reaches exactly 0 once the
// replicas agree to the last bit), so that one sample caught between the two
// halves of an exchange does not decide it. decay_vs_theory is
// ln(theory) / ln(measured): how many times slower than the theory the
// distance decays (<= 1.1: "no slower than 1.1x the theory").
void Simulation::add_decay(nlohmann::json& summary) const {
  const double theory = theory_factor(sim_.peers);
  summary["theory_factor"] = theory;
  if (!d0_ || *d0_ <= 0) return;
  double sum_kl = 0.0, sum_kk = 0.0, k_last = 0.0;
  for (const auto& s : samples_) {
    if (!s["consensus_distance"].is_number()) continue;
    const double d = s["consensus_distance"].get<double>();
    const auto k = static_cast<double>(s["exchange_pairs"].get<int64_t>() - pairs0_);
    if (k <= 0 || d <= 0) continue;
    sum_kl += k * std::log(d / *d0_);
    sum_kk += k * k;
    k_last = k;
  }
  if (sum_kk <= 0) return;
  const double measured = std::exp(sum_kl / sum_kk);
  summary["measured_factor"] = measured;
  summary["decay_exchanges"] = k_last;
  if (measured < 1.0 && theory > 0)
    summary["decay_vs_theory"] = std::log(theory) / std::log(measured);
}

core::Result<nlohmann::json> run_simulation(const SimOptions& options,
                                            const std::atomic<bool>& stop) {
  Simulation sim(options);
  return sim.run(stop);
}

}  // namespace gossip::sim
