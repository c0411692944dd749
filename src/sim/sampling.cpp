// Simulation sampling: every sim.sample_every_s seconds, a copy of every live
// replica (taken by each peer between two of its steps), the observer's
// evaluation of each and of their mean, the consensus distance, the swarm's
// counters and views; one "sample" record per look and a progress line.
#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

#include "gossip/averaging/codec.hpp"
#include "gossip/core/log.hpp"
#include "gossip/train/generate.hpp"
#include "simulation_impl.hpp"

namespace gossip::sim {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

constexpr int kTextSampleBytes = 300;

json opt(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

// CPU time the calling thread has used, in seconds: set against a look's
// wall time, it tells work from waiting for a core (or for a lock).
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

// How long a look waits for the replicas, against one deadline for all:
// half the sampling period, between 0.1 s and 2 s, so that asking, waiting
// and evaluating fit in one period. A peer that has not answered by then is
// late (it is slow, or still downloading its state), not dead.
milliseconds Simulation::answer_timeout() const {
  const double s = std::clamp(0.5 * sample_period_s(), 0.1, 2.0);
  return milliseconds(static_cast<int64_t>(1000.0 * s));
}

// Asks for one look, due at `due_s` on the sampling schedule: every live
// replica at once. The record's t_s is this moment (each replica is copied at
// its peer's next between-steps point after it, taken_s).
LookJob Simulation::ask_look(double due_s) {
  LookJob job;
  job.look = ++looks_;
  job.due_s = due_s;
  job.requested_s = now_s();
  job.peers.reserve(peers_.size());
  for (auto& p : peers_) {
    job.peers.push_back(p.get());
    job.alive.push_back(p->alive());
    if (job.alive.back()) p->request_sample(job.look);
  }
  job.deadline = Clock::now() + answer_timeout();
  job.gone = std::set<std::string>(gone_ids_.begin(), gone_ids_.end());
  job.joiners = joiners_;
  return job;
}

void Simulation::start_look_worker() {
  looker_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sim-look");  // told apart in perf and /proc
    look_worker();
  });
}

bool Simulation::post_look(LookJob job) {
  std::lock_guard lock(look_mu_);
  if (look_busy_) return false;
  look_busy_ = true;
  look_job_ = std::move(job);
  look_cv_.notify_all();
  return true;
}

void Simulation::stop_look_worker() {
  if (!looker_.joinable()) return;
  {
    std::lock_guard lock(look_mu_);
    look_stop_ = true;
    look_cv_.notify_all();
  }
  looker_.join();
}

void Simulation::look_worker() {
  std::unique_lock lock(look_mu_);
  for (;;) {
    look_cv_.wait(lock, [&] { return look_job_.has_value() || look_stop_; });
    if (!look_job_) return;  // stopping, nothing handed over
    LookJob job = std::move(*look_job_);
    look_job_.reset();
    lock.unlock();
    complete_look(job);
    lock.lock();
    look_busy_ = false;
  }
}

double Simulation::sample_period_s() const {
  std::lock_guard lock(look_mu_);
  return sample_period_s_;
}

// Completes a look (on the look worker, or at the end on the clock thread
// once the worker has stopped): collects the answers against one deadline,
// reads the view of each alive peer that did not answer (a replica carries
// its own), evaluates the replicas one at a time and writes the record;
// completed_s is when it was done.
void Simulation::complete_look(LookJob& job) {
  std::vector<PeerLook> looks(job.peers.size());
  for (size_t i = 0; i < job.peers.size(); ++i) {
    looks[i].alive = job.alive[i];
    if (looks[i].alive) looks[i].replica = job.peers[i]->collect_sample(job.look, job.deadline);
  }
  const double answered_s = now_s();
  const double cpu0 = thread_cpu_s();
  for (size_t i = 0; i < job.peers.size(); ++i) {
    if (!looks[i].alive) continue;
    // A replica carries the view its peer read from its membership when it
    // copied it; only a late peer's is read here. Reading every view from
    // this thread took each peer's membership lock, and under a heavy load
    // waiting for those locks' holders to be scheduled cost a 256-peer look
    // 9 s (perf, sched_switch).
    if (!looks[i].replica) looks[i].view = job.peers[i]->view();
    looks[i].step = looks[i].replica ? looks[i].replica->step : job.peers[i]->step();
  }
  json record = measure(looks, job.peers, job.gone, job.joiners, /*final_eval=*/false);
  const double completed_s = now_s();
  const double look_cpu_s = thread_cpu_s() - cpu0;
  record["type"] = "sample";
  record["t_s"] = job.requested_s;
  record["due_s"] = job.due_s;
  record["answered_s"] = answered_s;
  record["completed_s"] = completed_s;
  record["look_cpu_s"] = look_cpu_s;
  record["sample_every_s"] = sample_period_s();
  record["on_time"] = job.requested_s - job.due_s <= 0.25 * sample_period_s();
  write_record(record);
  samples_.push_back({{"t_s", record["t_s"]},
                      {"averaged_model_accuracy", record["averaged_model_accuracy"]},
                      {"consensus_distance", record["consensus_distance"]},
                      {"exchange_pairs", record["exchange_pairs"]},
                      {"on_time", record["on_time"]}});
  last_sample_ = record;
  if (options_.progress) print_progress(record, job.peers.size());
  keep_up(completed_s - job.requested_s, job.peers.size());
}

// A look that took longer than the period (evaluating the replicas cannot
// keep up): sample less often, at a multiple of sim.sample_every_s 1.5x
// the look's length, and say so once in the log; the summary's
// sampling_slowed says what was decided. Never a silent drift.
void Simulation::keep_up(double took_s, size_t replicas) {
  slowest_look_s_ = std::max(slowest_look_s_, took_s);
  if (!sampling_slowed_.is_null()) sampling_slowed_["slowest_look_s"] = slowest_look_s_;
  std::unique_lock lock(look_mu_);
  if (took_s <= sample_period_s_) return;
  const double every = sim_.sample_every_s;
  sample_period_s_ = std::max(sample_period_s_, std::ceil(1.5 * took_s / every) * every);
  const double period = sample_period_s_;
  lock.unlock();
  if (sampling_slowed_.is_null()) {
    char line[240];
    std::snprintf(line, sizeof line,
                  "a look at the swarm took %.2f s, longer than sim.sample_every_s = %g s "
                  "(asking and evaluating %zu replicas cannot keep up): sampling every %g s "
                  "instead",
                  took_s, every, replicas, period);
    core::log_warn("sim", line);
  }
  sampling_slowed_ = {
      {"sample_every_s", every},
      {"used_every_s", period},
      {"slowest_look_s", slowest_look_s_},
      {"first_at_s", sampling_slowed_.is_null() ? json(now_s()) : sampling_slowed_["first_at_s"]}};
}

json Simulation::measure(std::vector<PeerLook>& looks, const std::vector<SimPeer*>& peers,
                         const std::set<std::string>& gone, const std::set<int>& joiners,
                         bool final_eval) {
  const bool evaluate = !sim_.average_only;
  json rows = json::array();
  ConsensusStream stream;
  std::vector<double> accuracies, test_losses, train_losses;
  int64_t step_max = 0, step_min = -1, members_min = -1, members_max = 0, stale_views = 0;
  int64_t steps_alive = 0;  // summed over the live peers
  int64_t alive = 0, late = 0;

  for (size_t i = 0; i < peers.size(); ++i) {
    const SimPeer& p = *peers[i];
    PeerLook& look = looks[i];
    json row = {{"index", p.index()}, {"state", peer_state_name(p.state())}};
    row["alive"] = look.alive;
    row["late"] = look.alive && !look.replica;
    for (const char* k : {"step", "taken_s", "test_accuracy", "test_loss", "train_loss",
                          "exchanges_ok", "exchange_ms", "members"}) {
      row[k] = nullptr;
    }
    if (!look.alive) {
      rows.push_back(row);
      continue;
    }
    ++alive;
    row["step"] = look.step;
    steps_alive += look.step;
    step_max = std::max(step_max, look.step);
    step_min = step_min < 0 ? look.step : std::min(step_min, look.step);
    // Views from the peer's membership: the one its replica carries, else
    // (late) read at the look, whether or not it answered in time.
    const auto* view = look.view ? &*look.view : look.replica ? &look.replica->members : nullptr;
    if (view) {
      const auto members = static_cast<int64_t>(view->size()) + 1;
      members_min = members_min < 0 ? members : std::min(members_min, members);
      members_max = std::max(members_max, members);
      for (const auto& id : *view) stale_views += gone.count(id) ? 1 : 0;
      row["members"] = members;
    }
    const auto& r = look.replica;
    if (!r) {
      ++late;
      rows.push_back(row);
      continue;
    }
    row["taken_s"] = std::chrono::duration<double>(r->taken - start_).count();
    // This peer's mean exchange time since the previous look: a slow link
    // shows here (each exchange is several one-way trips).
    auto& seen = counters_[p.index()];
    const int64_t new_ok = r->counters.exchanges_ok - seen.network.exchanges_ok;
    if (new_ok > 0) {
      row["exchange_ms"] = 1000.0 * (r->counters.exchange_s_total - seen.network.exchange_s_total) /
                           static_cast<double>(new_ok);
    }
    seen = {r->counters, r->links_refused, r->blobs_dropped};
    stream.add(r->params);
    row["train_loss"] = opt(r->train_loss);
    if (r->train_loss) train_losses.push_back(*r->train_loss);
    row["exchanges_ok"] = r->counters.exchanges_ok;
    if (evaluate) {
      const auto e = observer_->evaluate(r->params, final_eval);
      row["test_accuracy"] = opt(e.accuracy);
      row["test_loss"] = e.loss;
      test_losses.push_back(e.loss);
      if (e.accuracy) accuracies.push_back(*e.accuracy);
    }
    look.replica.reset();  // one replica's copy at a time beyond the peers' own
    rows.push_back(row);
  }

  json out;
  out["step_max"] = step_max;
  out["step_min"] = std::max<int64_t>(step_min, 0);
  out["alive"] = alive;
  out["late"] = late;
  out["answered"] = stream.count();
  out["members_min"] = std::max<int64_t>(members_min, 0);
  out["members_max"] = members_max;
  out["killed_still_in_views"] = stale_views;
  auto mean = [](const std::vector<double>& v) -> json {
    if (v.empty()) return nullptr;
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  out["mean_test_accuracy"] = mean(accuracies);
  out["min_test_accuracy"] = accuracies.empty()
                                 ? json(nullptr)
                                 : json(*std::min_element(accuracies.begin(), accuracies.end()));
  out["mean_test_loss"] = mean(test_losses);
  out["mean_train_loss"] = mean(train_losses);
  out["consensus_distance"] = nullptr;
  out["averaged_model_accuracy"] = nullptr;
  out["averaged_model_loss"] = nullptr;
  if (stream.count() > 0) {
    const auto c = stream.result();
    out["consensus_distance"] = c.distance;
    if (evaluate) {
      // The averaged model is the headline figure: always every test row.
      const auto e = observer_->evaluate(c.mean, /*full=*/true);
      out["averaged_model_accuracy"] = opt(e.accuracy);
      out["averaged_model_loss"] = e.loss;
      const auto& model = options_.config.model;
      if (model.is_gpt() && (final_eval || samples_.empty())) {
        // What the averaged model writes, at the first look and at the end.
        train::SamplingOptions sampling;
        sampling.temperature = 0.8;
        sampling.top_k = 40;
        sampling.seed = options_.seed;
        auto text =
            train::generate_text(model.gpt_spec(), c.mean, "\n", kTextSampleBytes, sampling);
        out["text_sample"] = text ? json(train::to_valid_utf8(*text)) : json(nullptr);
      }
    }
  }

  peer::NetworkCounters total;
  uint64_t links_refused = 0, blobs_dropped = 0;
  for (const auto& [index, seen] : counters_) {
    const auto& c = seen.network;
    total.exchanges_ok += c.exchanges_ok;
    total.exchanges_busy += c.exchanges_busy;
    total.exchanges_failed += c.exchanges_failed;
    total.bytes_in += c.bytes_in;
    total.bytes_out += c.bytes_out;
    links_refused += seen.links_refused;
    blobs_dropped += seen.blobs_dropped;
  }
  out["exchanges_ok"] = total.exchanges_ok;
  out["exchanges_busy"] = total.exchanges_busy;
  out["exchanges_failed"] = total.exchanges_failed;
  out["bytes_total"] = total.bytes_in + total.bytes_out;
  // What the bytes bought: blob bytes (sent + received, all peers) per
  // training sample the live peers have taken (a GPT sample is one window).
  // Peers that left took their steps with them, so this is an upper bound.
  const int64_t samples_trained = steps_alive * options_.config.data.batch;
  out["samples_trained"] = samples_trained;
  out["bytes_per_sample"] = samples_trained > 0
                                ? json(static_cast<double>(total.bytes_in + total.bytes_out) /
                                       static_cast<double>(samples_trained))
                                : json(nullptr);
  out["codec"] = averaging::describe(options_.config.gossip.wire);
  out["links_refused"] = links_refused;
  out["blobs_dropped"] = blobs_dropped;
  const int64_t pairs = total.exchanges_ok / 2;
  out["exchange_pairs"] = pairs;
  if (sim_.average_only && out["consensus_distance"].is_number()) {
    const double d = out["consensus_distance"].get<double>();
    if (!d0_ && d > 0) {
      d0_ = d;
      pairs0_ = pairs;
    }
    if (d0_) {
      out["theory_distance"] = *d0_ * std::pow(theory_factor(static_cast<int>(stream.count())),
                                               static_cast<double>(pairs - pairs0_));
    }
  }

  // Peers started by events: how their first state compares with the swarm.
  for (SimPeer* p : peers) {
    auto params = p->take_ready_params();
    if (!params || !joiners.count(p->index()) || !evaluate) continue;
    const auto e = observer_->evaluate(*params, /*full=*/false);
    double others = 0;
    int n = 0;
    for (const auto& row : rows) {
      if (row["index"] != p->index() && row["test_accuracy"].is_number()) {
        others += row["test_accuracy"].get<double>();
        ++n;
      }
    }
    joiner_first_[p->index()] = {{"index", p->index()},
                                 {"t_s", now_s()},
                                 {"first_test_accuracy", opt(e.accuracy)},
                                 {"first_test_loss", e.loss},
                                 {"swarm_mean_accuracy", n ? json(others / n) : json(nullptr)}};
  }
  out["peers"] = rows;
  return out;
}

void Simulation::print_progress(const json& r, size_t peers) const {
  auto pct = [](const json& v) { return v.is_number() ? 100.0 * v.get<double>() : NAN; };
  char line[320];
  int len =
      std::snprintf(line, sizeof line, "sim %6.1fs  step %6lld  alive %lld/%zu",
                    r["t_s"].get<double>(), static_cast<long long>(r["step_max"].get<int64_t>()),
                    static_cast<long long>(r["alive"].get<int64_t>()), peers);
  auto add = [&](const char* fmt, auto... args) {
    if (len >= 0 && static_cast<size_t>(len) < sizeof line) {
      len += std::snprintf(line + len, sizeof line - static_cast<size_t>(len), fmt, args...);
    }
  };
  if (r.value("late", 0) > 0) add(" (%lld late)", static_cast<long long>(r["late"].get<int64_t>()));
  if (r["mean_test_accuracy"].is_number()) {
    add("  acc mean %.2f%% min %.2f%% averaged %.2f%%", pct(r["mean_test_accuracy"]),
        pct(r["min_test_accuracy"]), pct(r["averaged_model_accuracy"]));
  } else if (r["averaged_model_loss"].is_number()) {
    add("  test loss mean %.4g averaged %.4g", r["mean_test_loss"].get<double>(),
        r["averaged_model_loss"].get<double>());
  }
  if (r["consensus_distance"].is_number())
    add("  consensus %.2e", r["consensus_distance"].get<double>());
  if (r.contains("theory_distance")) add(" (theory %.2e)", r["theory_distance"].get<double>());
  add("  exchanges %lld ok %lld busy %lld failed  %.1f MB",
      static_cast<long long>(r["exchanges_ok"].get<int64_t>()),
      static_cast<long long>(r["exchanges_busy"].get<int64_t>()),
      static_cast<long long>(r["exchanges_failed"].get<int64_t>()),
      static_cast<double>(r["bytes_total"].get<int64_t>()) / 1e6);
  std::printf("%s\n", line);
  std::fflush(stdout);
}

}  // namespace gossip::sim
