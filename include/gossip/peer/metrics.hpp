// Metrics: what a peer reports about itself, as JSON lines on disk and as a
// progress line on stderr that a person can read at a glance.
//
// MetricsLog appends one JSON object per line to metrics.file (one write(2)
// per line, so every line is on its way to disk when write() returns and a
// crash cannot interleave two records). Record types:
//   {"type":"start", "time", "step", "epoch", "resumed_from" (file or null)}
//   {"type":"train", "time", "step", "epoch", "loss" (mean since the last
//    train record), "lr", "samples_per_s" [, "exchanges_ok", "exchanges_busy",
//    "exchanges_failed", "bytes_in", "bytes_out", "members_alive",
//    "last_delta_norm"]}      (network fields only when a NetworkCounters is given)
//   {"type":"eval", "time", "step", "epoch", "test_loss", "test_accuracy", "rows"}
// `time` is Unix seconds. A resumed run appends; its "start" record says from
// which step, so a reader sees where the steps after a crash were redone.
// LossMeter sums what happens between two records; ProgressLine formats and
// paces the stderr line. Nothing here knows about the training loop: the solo
// run and the networked peer both use these from their trainer thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "gossip/core/status.hpp"

namespace gossip::peer {

// Gossip activity, filled by the networked peer (absent in the solo run).
// Counters are totals since the process started.
struct NetworkCounters {
  int64_t exchanges_ok = 0;
  int64_t exchanges_busy = 0;    // the partner was in another exchange
  int64_t exchanges_failed = 0;  // timeout, dropped connection, bad blob
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  int64_t members_alive = 0;              // this peer included
  std::optional<double> last_delta_norm;  // ||x_after - x_before|| of the last exchange
  double exchange_s_total = 0;            // summed OFFER-to-validated time of the ok exchanges
};

struct TrainRecord {
  int64_t step = 0;
  int64_t epoch = 0;  // 0-based epoch of the last batch
  double loss = 0.0;  // mean batch loss since the previous train record
  double lr = 0.0;
  double samples_per_s = 0.0;  // training samples over training time since then
  std::optional<NetworkCounters> network;
};

struct EvalRecord {
  int64_t step = 0;
  int64_t epoch = 0;
  double test_loss = 0.0;
  double test_accuracy = 0.0;  // fraction in [0,1]; 0 for regression
  int64_t rows = 0;            // test rows evaluated
};

// Mean loss and throughput over an interval; take() reads and restarts it.
class LossMeter {
 public:
  struct Reading {
    int64_t steps = 0;
    double mean_loss = 0.0;
    double samples_per_s = 0.0;
  };
  // One step: its mean batch loss, its rows, and the seconds it took.
  void add(double loss, int64_t rows, double seconds) {
    loss_sum_ += loss;
    ++steps_;
    rows_ += rows;
    seconds_ += seconds;
  }
  int64_t steps() const { return steps_; }
  Reading take();

 private:
  double loss_sum_ = 0.0;
  int64_t steps_ = 0;
  int64_t rows_ = 0;
  double seconds_ = 0.0;
};

// JSON objects for the records (the line MetricsLog writes, minus "time").
nlohmann::json to_json(const TrainRecord& r);
nlohmann::json to_json(const EvalRecord& r);

class MetricsLog {
 public:
  // Opens `file` for appending, creating it and its folder. A partial last
  // line (a crash in the middle of a write) is cut off with a warning so the
  // file stays valid JSON lines. kIo naming the file on failure.
  static core::Result<MetricsLog> open(const std::filesystem::path& file);

  MetricsLog(MetricsLog&& other) noexcept;
  MetricsLog& operator=(MetricsLog&& other) noexcept;
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();

  // Each appends one line with "type" and "time" added. A failed write is
  // returned (and logged once per minute); callers keep training.
  core::Status write_start(int64_t step, int64_t epoch,
                           const std::optional<std::filesystem::path>& resumed_from);
  core::Status write(const TrainRecord& r);
  core::Status write(const EvalRecord& r);
  // Any JSON object, for record types added later ("type" must be set).
  core::Status write_json(nlohmann::json record);

  const std::filesystem::path& file() const { return file_; }

 private:
  MetricsLog(std::filesystem::path file, int fd) : file_(std::move(file)), fd_(fd) {}

  std::filesystem::path file_;
  int fd_ = -1;
};

// What the progress line shows; zero / absent fields are left out.
struct ProgressInfo {
  int64_t step = 0;
  int64_t total_steps = 0;  // 0: unknown (run until stopped)
  int64_t epoch = 0;        // 1-based epoch in progress
  int64_t total_epochs = 0;
  double loss = 0.0;  // mean since the previous line
  double lr = 0.0;
  double samples_per_s = 0.0;
  std::optional<double> test_accuracy;  // last evaluation (classification)
  std::optional<double> test_loss;      // last evaluation (regression)
  int64_t checkpoint_step = -1;         // last checkpoint written or resumed; -1 none
  std::optional<NetworkCounters> network;
};

// "step 1200/9380 (13%)  epoch 2/10  loss 0.4321  lr 0.0195  5400 samples/s
//  test acc 84.10%  ckpt @1000" followed, for networked peers, by
// "  members 4  exchanges 120 ok / 3 busy / 0 failed  in 12.3 MB  out 12.1 MB".
std::string format_progress(const ProgressInfo& info);

// Paces the stderr progress line: due() is true once every `every_s` seconds
// (never when every_s <= 0), starting every_s after construction.
class ProgressLine {
 public:
  explicit ProgressLine(double every_s);
  bool due();
  // Logs format_progress(info) at info level under "peer".
  static void print(const ProgressInfo& info);

 private:
  using Clock = std::chrono::steady_clock;
  double every_s_;
  Clock::time_point last_;
};

}  // namespace gossip::peer
