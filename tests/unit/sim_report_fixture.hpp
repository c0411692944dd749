// Realistic gossip-sim metrics.jsonl records for the report tests (unit and
// browser): a start record, samples every 2 s for 8 peers with peers 1 and 2
// killed at t = 20 s and peers 8 and 9 started at t = 40 s, and a final
// summary with each peer's final evaluation; an averaging-only run with the
// theory curve (a partition at 20 s, healed at 40 s); a regression run; or a
// language model's run with its text samples. Numbers follow the
// sim schema (/tmp/sim_schema.md at the time of writing, docs/simulation.md).
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sim_report_fixture {

using nlohmann::json;

struct Options {
  int peers = 8;
  int samples = 30;
  bool average_only = false;
  bool regression = false;
  bool language_model = false;  // test loss in nats per byte, text samples
};

inline double peer_accuracy(int index, double t) {
  return 0.885 - 0.55 * std::exp(-t / 9.0) + 0.001 * (index % 5) - 0.002;
}

inline std::vector<json> make_records(const Options& o = {}) {
  std::vector<json> out;
  const double factor = 1.0 - 1.0 / (o.peers - 1);
  out.push_back(
      {{"type", "start"},
       {"t_s", 0},
       {"peers", o.peers},
       {"mode", o.average_only ? "average_only" : "train"},
       {"model", o.regression ? "10-20-1 tanh mse" : "784-256-128-10 relu softmax_cross_entropy"},
       {"param_count", o.regression ? 241 : 235146},
       {"task", o.regression       ? "regression"
                : o.language_model ? "language_model"
                                   : "classification"},
       {"theory_factor", factor}});
  const bool churn = !o.average_only;
  int64_t exchanges = 0;
  const double d0 = 2.0;
  for (int k = 1; k <= o.samples; ++k) {
    const double t = 2.0 * k;
    if (churn && k == 10) {
      out.push_back({{"type", "event"},
                     {"t_s", 20.0},
                     {"index", 0},
                     {"event", "kill"},
                     {"detail", "peers 1, 2"},
                     {"step_max", 3000}});
    }
    if (o.average_only && (k == 10 || k == 20)) {
      out.push_back({{"type", "event"},
                     {"t_s", 2.0 * k},
                     {"index", k / 10 - 1},
                     {"event", k == 10 ? "partition" : "heal"},
                     {"detail", k == 10 ? "[0, 1] | [2, 3]" : "every link restored"},
                     {"step_max", nullptr}});
    }
    if (churn && k == 20) {
      out.push_back({{"type", "event"},
                     {"t_s", 40.0},
                     {"index", 1},
                     {"event", "start"},
                     {"detail", "peers 8, 9"},
                     {"step_max", 6000}});
    }
    exchanges += 40;
    const int64_t pairs = exchanges / 2;
    json peers = json::array();
    int alive = 0;
    double sum_acc = 0, sum_loss = 0;
    const int total = churn && t >= 40 ? o.peers + 2 : o.peers;
    for (int i = 0; i < total; ++i) {
      const bool dead = churn && (i == 1 || i == 2) && t >= 20;
      if (dead) {
        peers.push_back({{"index", i},
                         {"alive", false},
                         {"step", nullptr},
                         {"test_accuracy", nullptr},
                         {"test_loss", nullptr},
                         {"train_loss", nullptr},
                         {"exchanges_ok", nullptr},
                         {"members", nullptr}});
        continue;
      }
      ++alive;
      const double acc = peer_accuracy(i, t);
      const double loss = 0.3 + 1.8 * std::exp(-t / 9.0) + 0.002 * i;
      sum_acc += acc;
      sum_loss += loss;
      json p = {{"index", i},
                {"alive", true},
                {"step", static_cast<int>(150 * t)},
                {"test_accuracy", acc},
                {"test_loss", loss},
                {"train_loss", loss - 0.02},
                {"exchanges_ok", exchanges / total},
                {"members", total - (churn && t >= 20 ? 2 : 0)}};
      if (o.average_only || o.regression) p["test_accuracy"] = nullptr;
      if (o.average_only) p["test_loss"] = nullptr, p["train_loss"] = nullptr;
      if (!o.average_only && i == 5 && k == 15)
        p["test_accuracy"] = nullptr, p["test_loss"] = nullptr;
      peers.push_back(p);
    }
    const double consensus =
        o.average_only ? d0 * std::pow(factor, pairs) * 0.97 : 0.04 * std::exp(-t / 12.0);
    json s = {{"type", "sample"},
              {"t_s", t},
              {"step_max", static_cast<int>(150 * t)},
              {"alive", alive},
              {"members_min", alive - (k % 3 == 0 ? 1 : 0)},
              {"members_max", alive},
              {"consensus_distance", consensus},
              {"averaged_model_accuracy", sum_acc / alive + 0.004},
              {"averaged_model_loss", sum_loss / alive - 0.01},
              {"mean_test_accuracy", sum_acc / alive},
              {"min_test_accuracy", sum_acc / alive - 0.003},
              {"mean_test_loss", sum_loss / alive},
              {"mean_train_loss", sum_loss / alive - 0.02},
              {"exchanges_ok", exchanges},
              {"exchanges_busy", exchanges / 20},
              {"exchanges_failed", k / 4},
              {"bytes_total", exchanges * 1881168},
              {"exchange_pairs", pairs},
              {"peers", peers}};
    if (o.average_only || o.regression) {
      for (const char* key : {"averaged_model_accuracy", "mean_test_accuracy", "min_test_accuracy"})
        s[key] = nullptr;
    }
    if (o.average_only) {
      for (const char* key : {"averaged_model_loss", "mean_test_loss", "mean_train_loss"})
        s[key] = nullptr;
      s["theory_distance"] = d0 * std::pow(factor, pairs);
    }
    if (o.language_model && k == 1) s["text_sample"] = "\nq#x<b>&";
    out.push_back(s);
  }
  json final = {
      {"type", "final"},
      {"peers", churn ? o.peers + 2 : o.peers},
      {"alive", o.peers},
      {"wall_s", 61.25},
      {"mode", o.average_only ? "average_only" : "train"},
      {"mean_test_accuracy", 0.8765},
      {"min_test_accuracy", 0.8731},
      {"averaged_model_accuracy", 0.8812},
      {"consensus_distance", 0.000321},
      {"exchanges_ok", exchanges},
      {"exchanges_busy", 61},
      {"exchanges_failed", 7},
      {"bytes_total", 987654321},
      {"mean_test_loss", 0.3412},
      {"averaged_model_loss", 0.3301},
      {"out", "runs/sim-test"},
      {"report", "runs/sim-test/report.html"},
      {"metrics", "runs/sim-test/metrics.jsonl"},
      {"time_to_accuracy_s", {{"0.85", 24.0}, {"0.88", nullptr}}},
      {"joiners",
       json::array(
           {{{"index", 8}, {"first_test_accuracy", 0.861}, {"swarm_mean_accuracy", 0.872}},
            {{"index", 9}, {"first_test_accuracy", 0.859}, {"swarm_mean_accuracy", 0.872}}})}};
  // Each peer's final evaluation: the last sample's peers, finished or killed.
  json final_peers = out.back()["peers"];
  for (auto& p : final_peers) p["state"] = p["alive"] == true ? "finished" : "killed";
  final["final_peers"] = final_peers;
  if (o.language_model) final["text_sample"] = "\nThe end <is> near & \"clear\"";
  if (o.average_only) {
    final["exchange_pairs"] = exchanges / 2;
    final["measured_factor"] = factor * 0.999;
    final["theory_factor"] = factor;
    final["decay_vs_theory"] = std::log(factor) / std::log(factor * 0.999);
  }
  out.push_back(final);
  return out;
}

// Writes one record per line; `tail` (if any) is appended as is, e.g. a torn line.
inline void write_jsonl(const std::filesystem::path& path, const std::vector<json>& records,
                        const std::string& tail = "") {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& r : records) out << r.dump() << '\n';
  out << tail;
}

}  // namespace sim_report_fixture
