// Runtime failures as a user meets them. Every way gossip-peer can fail once
// its config has loaded ends with the summary line on stdout, its "error"
// naming the cause, and exit status 1: a final checkpoint on a full disk
// (RLIMIT_FSIZE, also after SIGINT), a checkpoint folder another peer holds,
// a missing dataset, a bad CSV, a join no seed answers, a metrics file that
// cannot be opened. The backend throwing in the middle of a run (a lost CUDA
// device) is provoked in-process through a peer::Host, the way the
// simulator's own host reads the backend between steps. gossip-sim exits 1 when no peer
// finished, with the summary still printed.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>

#include "gossip/config/config.hpp"
#include "gossip/core/log.hpp"
#include "gossip/peer/run.hpp"
#include "peer_process.hpp"

using namespace gossip::test;

namespace {

// A swarm of one on the synthetic regression task (a few milliseconds a
// step) with `patch` merged over it; checkpoints and metrics in <dir>/run.
fs::path solo_config(const fs::path& dir, const Json& patch = Json::object()) {
  Json j = {{"peer", {{"network", false}, {"data_dir", (dir / "run").string()}}},
            {"model", {{"layers", {10, 20, 1}}, {"loss", "mse"}, {"activation", "tanh"}}},
            {"optimizer", {{"type", "sgd"}, {"lr", 0.05}}},
            {"data", {{"dataset", {{"type", "synthetic_regression"}}}, {"batch", 32}}},
            {"training", {{"device", "cpu"}, {"steps", 30}}},
            {"checkpoint", {{"every_steps", 0}}}};
  j.merge_patch(patch);
  const fs::path p = dir / "config.json";
  std::ofstream(p) << j.dump(2);
  return p;
}

// Runs gossip-peer to its end; returns its exit status and summary line,
// after checking that stderr repeats the summary's error.
std::pair<int, Json> run_to_end(const fs::path& config, const fs::path& dir,
                                rlim_t file_size_limit = 0) {
  Proc p = spawn(config, dir, "peer", {}, file_size_limit);
  Reaper reaper{{&p}};
  const int rc = wait_exit(p);
  p.pid = -1;
  const Json summary = summary_of(p);
  INFO(read_text(p.err));
  if (summary.at("error").is_string()) {
    CHECK(read_text(p.err).find("gossip-peer: " + summary.at("error").get<std::string>()) !=
          std::string::npos);
  }
  return {rc, summary};
}

bool starts_with(const Json& v, const std::string& prefix) {
  return v.is_string() && v.get<std::string>().rfind(prefix, 0) == 0;
}

bool contains(const Json& v, const std::string& part) {
  return v.is_string() && v.get<std::string>().find(part) != std::string::npos;
}

bool has_temp_checkpoint(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".tmp") return true;
  }
  return false;
}

// Large enough that one checkpoint (parameters and the momentum buffer, about
// 0.5 MB) cannot fit under a 64 KiB file size cap, while the metrics records
// and the log lines do.
const Json kBigModel = {{"model", {{"layers", {10, 256, 256, 1}}}},
                        {"optimizer", {{"momentum", 0.9}}}};
constexpr rlim_t kFullDisk = 64 * 1024;

}  // namespace

TEST_CASE("a final checkpoint that cannot be written: the summary says so, exit 1") {
  const fs::path dir = temp_dir("failures", "disk");
  const auto [rc, summary] = run_to_end(solo_config(dir, kBigModel), dir, kFullDisk);
  CHECK(rc == 1);
  CHECK(starts_with(summary.at("error"), "final checkpoint not written: "));
  CHECK(summary.at("steps") == 30);  // the run itself is described
  CHECK(summary.at("test_loss").is_number());
  CHECK(summary.at("stopped") == false);
  CHECK(summary.at("checkpoint") == "");
  CHECK_FALSE(has_checkpoint(dir / "run"));
  CHECK_FALSE(has_temp_checkpoint(dir / "run"));  // nothing half-written is left
  fs::remove_all(dir);
}

TEST_CASE("SIGINT, then a final checkpoint that cannot be written: summary with the error") {
  const fs::path dir = temp_dir("failures", "sigint");
  Json patch = kBigModel;
  patch["training"] = {{"steps", 100000000}};
  Proc p = spawn(solo_config(dir, patch), dir, "peer", {}, kFullDisk);
  Reaper reaper{{&p}};
  // Training has begun once the metrics file holds its start record.
  wait_for(
      {&p}, [&] { return !metrics_of(dir / "run" / "metrics.jsonl", true).empty(); },
      "the start record");
  REQUIRE(::kill(p.pid, SIGINT) == 0);
  const int rc = wait_exit(p);
  p.pid = -1;
  const Json summary = summary_of(p);
  INFO(read_text(p.err));
  CHECK(rc == 1);
  CHECK(summary.at("stopped") == true);
  CHECK(summary.at("steps").get<int64_t>() > 0);
  CHECK(starts_with(summary.at("error"), "final checkpoint not written: "));
  CHECK(read_text(p.err).find("gossip-peer: final checkpoint not written: ") != std::string::npos);
  CHECK_FALSE(has_checkpoint(dir / "run"));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint folder held by another peer: summary with the error, exit 1") {
  const fs::path dir = temp_dir("failures", "held");
  fs::create_directories(dir / "run");
  // The lock a running gossip-peer holds (CheckpointStore), taken by this
  // test so that the other peer is certainly running for the whole case.
  const int fd = ::open((dir / "run" / ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const auto [rc, summary] = run_to_end(solo_config(dir), dir);
  ::close(fd);
  CHECK(rc == 1);
  CHECK(contains(summary.at("error"), "is in use by another gossip-peer"));
  CHECK(summary.at("steps") == 0);
  CHECK(summary.at("test_loss").is_null());
  CHECK(summary.at("model").is_string());
  fs::remove_all(dir);
}

TEST_CASE("data that does not load: summary with the error naming the file, exit 1") {
  const fs::path dir = temp_dir("failures", "data");
  SUBCASE("a missing dataset") {
    const fs::path missing = dir / "nowhere" / "train-images.gz";
    const auto [rc, summary] = run_to_end(
        solo_config(dir, {{"model", {{"layers", {784, 10}}, {"loss", "softmax_cross_entropy"}}},
                          {"data",
                           {{"dataset",
                             {{"type", "idx"},
                              {"train_images", missing.string()},
                              {"train_labels", missing.string()}}}}}}),
        dir);
    CHECK(rc == 1);
    CHECK(starts_with(summary.at("error"), "data.dataset: "));
    CHECK(contains(summary.at("error"), missing.string() + ": no such file"));
  }
  SUBCASE("a CSV with a row that is not a number") {
    const fs::path csv = dir / "train.csv";
    std::ofstream(csv) << "x,y\n1,2\n3,4\nfive,6\n7,8\n";
    const auto [rc, summary] = run_to_end(
        solo_config(
            dir, {{"model", {{"layers", {1, 4, 1}}}},
                  {"data",
                   {{"dataset",
                     {{"type", "csv"}, {"train_csv", csv.string()}, {"target_columns", {"y"}}}}}}}),
        dir);
    CHECK(rc == 1);
    CHECK(starts_with(summary.at("error"), "data.dataset: "));
    CHECK(contains(summary.at("error"), csv.string()));
    CHECK(contains(summary.at("error"), "five"));
  }
  fs::remove_all(dir);
}

TEST_CASE("a metrics file that cannot be opened: summary with the error, exit 1") {
  const fs::path dir = temp_dir("failures", "metrics");
  std::ofstream(dir / "a-file") << "not a folder\n";
  const fs::path metrics = dir / "a-file" / "metrics.jsonl";
  const auto [rc, summary] =
      run_to_end(solo_config(dir, {{"metrics", {{"file", metrics.string()}}}}), dir);
  CHECK(rc == 1);
  CHECK(starts_with(summary.at("error"), "metrics.file: "));
  CHECK(contains(summary.at("error"), metrics.string()));
  CHECK(summary.at("steps") == 0);
  fs::remove_all(dir);
}

TEST_CASE("a join that no seed answers: summary naming the address, exit 1") {
  const fs::path dir = temp_dir("failures", "join");
  const std::string keygen = build_root() + "/tools/gossip-keygen";
  REQUIRE(std::system((keygen + " identity --out " + (dir / "identity.key").string() +
                       " >/dev/null && " + keygen + " swarm --out " + (dir / "swarm.key").string() +
                       " >/dev/null")
                          .c_str()) == 0);
  // A port that was free a moment ago: nothing answers there.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  const std::string seed = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const auto [rc, summary] =
      run_to_end(solo_config(dir, {{"peer",
                                    {{"network", true},
                                     {"listen", "127.0.0.1:0"},
                                     {"bootstrap", {seed}},
                                     {"identity_key", (dir / "identity.key").string()},
                                     {"swarm_key", (dir / "swarm.key").string()}}},
                                   {"membership", {{"join_timeout_ms", 1000}}}}),
                 dir);
  CHECK(rc == 1);
  CHECK(contains(summary.at("error"), seed));
  CHECK(summary.at("steps") == 0);
  fs::remove_all(dir);
}

TEST_CASE("the backend throwing mid-run: the run ends with the error, the last good checkpoint") {
  const fs::path dir = temp_dir("failures", "backend");
  gossip::core::set_log_level(gossip::core::LogLevel::kOff);
  auto config = gossip::config::load_config(
      solo_config(dir, {{"training", {{"steps", 100}}}, {"checkpoint", {{"every_steps", 5}}}}));
  REQUIRE(config.is_ok());
  const std::string cuda_error =
      "cuda: cudaMemcpyAsync(...) failed at cuda_backend.cu:120: unspecified launch failure";
  // Between steps the simulator reads the backend's parameters: where a lost
  // device first shows itself to a host.
  struct LostDevice : gossip::peer::Host {
    std::string error;
    int calls = 0;
    void between_steps(gossip::peer::Trainer&, float) override {
      if (++calls == 7) throw std::runtime_error(error);
    }
  } host;
  host.error = cuda_error;
  std::atomic<bool> stop{false};
  auto summary = gossip::peer::run_peer(*config, stop, host);
  REQUIRE(summary.is_ok());
  CHECK(summary->error ==
        "training failed at step 7: " + cuda_error + "; no checkpoint of this state was written");
  CHECK(summary->steps == 7);
  CHECK_FALSE(summary->stopped);
  CHECK_FALSE(summary->test_loss.has_value());  // not evaluated
  // The newest checkpoint is the last good one, from step 5; step 7 was not
  // saved at the end.
  CHECK(fs::path(summary->checkpoint).filename().string() ==
        fs::path(gossip::peer::checkpoint_file_name(5)).string());
  int64_t newest = -1;
  for (const auto& e : fs::directory_iterator(dir / "run")) {
    if (auto step = gossip::peer::checkpoint_step_from_name(e.path().filename().string())) {
      newest = std::max(newest, *step);
    }
  }
  CHECK(newest == 5);
  fs::remove_all(dir);
}

// Runs gossip-sim on `config` (3 peers of the regression task); returns its
// exit status and summary line.
std::pair<int, Json> run_sim(const fs::path& dir, const Json& patch) {
  Json config = {{"model", {{"layers", {10, 20, 1}}, {"activation", "tanh"}, {"loss", "mse"}}},
                 {"optimizer", {{"type", "sgd"}, {"lr", 0.05}}},
                 {"data", {{"dataset", {{"type", "synthetic_regression"}}}}},
                 {"training", {{"device", "cpu"}, {"steps", 100}}},
                 {"checkpoint", {{"every_steps", 0}}},
                 {"sim", {{"peers", 3}, {"eval_rows", 0}}}};
  config.merge_patch(patch);
  std::ofstream(dir / "sim.json") << config.dump(2);
  const ProgramRun r = run_program(
      "tools/gossip-sim",
      "--config " + (dir / "sim.json").string() + " --out " + (dir / "run").string(), dir, "sim");
  INFO(r.err);
  REQUIRE(r.status >= 0);
  return {r.status, summary_of(r.files)};
}

TEST_CASE("gossip-sim exits 1 when no peer finished, and still prints the summary") {
  const fs::path dir = temp_dir("failures", "sim");
  SUBCASE("every peer diverged") {
    const auto [rc, summary] = run_sim(dir, {{"optimizer", {{"lr", 1e30}}}});
    CHECK(rc == 1);
    CHECK(summary.at("type") == "final");
    CHECK(summary.at("alive") == 0);
    CHECK(summary.at("failed_peers").size() == 3);
    CHECK(starts_with(summary.at("error"), "no peer finished: 3 of 3 peers failed"));
    CHECK(contains(summary.at("error"), "training diverged at step"));
    CHECK(read_text(dir / "sim.err").find("gossip-sim: no peer finished: ") != std::string::npos);
    CHECK(fs::exists(dir / "run" / "summary.json"));
  }
  SUBCASE("a healthy run: exit 0, error null") {
    const auto [rc, summary] = run_sim(dir, Json::object());
    CHECK(rc == 0);
    CHECK(summary.at("error").is_null());
    CHECK(summary.at("failed_peers").empty());
  }
  fs::remove_all(dir);
}
