// Simulation sampling: every sim.sample_every_s seconds, a copy of every live
// replica (taken by each peer between two of its steps), the observer's
// evaluation of each and of their mean, the consensus distance, the swarm's
// counters and views; one "sample" record per look and a progress line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

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

}  // namespace

void Simulation::sample() {
  std::vector<std::optional<Replica>> replicas(peers_.size());
  for (auto& p : peers_) {
    if (p->running()) p->request_sample();
  }
  for (size_t i = 0; i < peers_.size(); ++i) {
    if (peers_[i]->running()) replicas[i] = peers_[i]->collect_sample(milliseconds(2000));
  }
  json record = measure(replicas, /*final_eval=*/false);
  record["type"] = "sample";
  record["t_s"] = now_s();
  write_record(record);
  samples_.push_back({{"t_s", record["t_s"]},
                      {"averaged_model_accuracy", record["averaged_model_accuracy"]},
                      {"consensus_distance", record["consensus_distance"]},
                      {"exchange_pairs", record["exchange_pairs"]}});
  last_sample_ = record;
  if (options_.progress) print_progress(record);
}

json Simulation::measure(std::vector<std::optional<Replica>>& replicas, bool final_eval) {
  const bool evaluate = !sim_.average_only;
  json rows = json::array();
  std::vector<std::span<const float>> spans;
  std::vector<double> accuracies, test_losses, train_losses;
  int64_t step_max = 0, members_min = -1, members_max = 0, stale_views = 0;
  const std::set<std::string> gone(gone_ids_.begin(), gone_ids_.end());

  for (size_t i = 0; i < peers_.size(); ++i) {
    const SimPeer& p = *peers_[i];
    json row = {{"index", p.index()}, {"state", peer_state_name(p.state())}};
    const auto& r = replicas[i];
    row["alive"] = r.has_value();
    if (!r) {
      for (const char* k :
           {"step", "test_accuracy", "test_loss", "train_loss", "exchanges_ok", "members"}) {
        row[k] = nullptr;
      }
      rows.push_back(row);
      continue;
    }
    // This peer's mean exchange time since the previous look: a slow link
    // shows here (each exchange is several one-way trips).
    auto& seen = counters_[p.index()];
    const int64_t new_ok = r->counters.exchanges_ok - seen.network.exchanges_ok;
    row["exchange_ms"] = nullptr;
    if (new_ok > 0) {
      row["exchange_ms"] = 1000.0 * (r->counters.exchange_s_total - seen.network.exchange_s_total) /
                           static_cast<double>(new_ok);
    }
    seen = {r->counters, r->links_refused, r->blobs_dropped};
    spans.emplace_back(r->params);
    step_max = std::max(step_max, r->step);
    const auto members = static_cast<int64_t>(r->members.size()) + 1;
    members_min = members_min < 0 ? members : std::min(members_min, members);
    members_max = std::max(members_max, members);
    for (const auto& id : r->members) stale_views += gone.count(id) ? 1 : 0;
    row["step"] = r->step;
    row["train_loss"] = opt(r->train_loss);
    if (r->train_loss) train_losses.push_back(*r->train_loss);
    row["exchanges_ok"] = r->counters.exchanges_ok;
    row["members"] = members;
    row["test_accuracy"] = nullptr;
    row["test_loss"] = nullptr;
    if (evaluate) {
      const auto e = observer_->evaluate(r->params, final_eval);
      row["test_accuracy"] = opt(e.accuracy);
      row["test_loss"] = e.loss;
      test_losses.push_back(e.loss);
      if (e.accuracy) accuracies.push_back(*e.accuracy);
    }
    rows.push_back(row);
  }

  json out;
  out["step_max"] = step_max;
  out["alive"] = spans.size();
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
  if (!spans.empty()) {
    const auto c = consensus(spans);
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
      out["theory_distance"] = *d0_ * std::pow(theory_factor(static_cast<int>(spans.size())),
                                               static_cast<double>(pairs - pairs0_));
    }
  }

  // Peers started by events: how their first state compares with the swarm.
  for (auto& p : peers_) {
    auto params = p->take_ready_params();
    if (!params || !joiners_.count(p->index()) || !evaluate) continue;
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

void Simulation::print_progress(const json& r) const {
  auto pct = [](const json& v) { return v.is_number() ? 100.0 * v.get<double>() : NAN; };
  char line[320];
  int len =
      std::snprintf(line, sizeof line, "sim %6.1fs  step %6lld  alive %lld/%zu",
                    r["t_s"].get<double>(), static_cast<long long>(r["step_max"].get<int64_t>()),
                    static_cast<long long>(r["alive"].get<int64_t>()), peers_.size());
  auto add = [&](const char* fmt, auto... args) {
    if (len >= 0 && static_cast<size_t>(len) < sizeof line) {
      len += std::snprintf(line + len, sizeof line - static_cast<size_t>(len), fmt, args...);
    }
  };
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
