// gossip-peer as a user runs it: a swarm of one on real Fashion-MNIST, the
// summary line, --print-config and the exit status for bad configs.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/train/backend.hpp"
#include "preconditions.hpp"

namespace fs = std::filesystem;

namespace {

struct Run {
  int status = -1;
  std::string out;  // stdout and stderr together
  std::string last_line;
};

std::string peer_binary() {
  const char* root = std::getenv("GOSSIP_BUILD_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "GOSSIP_BUILD_ROOT is set by meson test");
  return std::string(root) + "/peers/gossip-peer";
}

// Runs gossip-peer with `args`; stderr is captured into a file so the last
// stdout line can be told apart.
Run run_peer(const std::string& args, const fs::path& dir) {
  const fs::path err = dir / "stderr.txt";
  const std::string cmd = "GOSSIP_LOG=info " + peer_binary() + " " + args + " 2>" + err.string();
  Run r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  std::string stdout_text;
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) stdout_text += buf;
  const int rc = ::pclose(pipe);
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream e(err);
  r.out = stdout_text + std::string(std::istreambuf_iterator<char>(e), {});
  auto end = stdout_text.find_last_not_of('\n');
  if (end != std::string::npos) {
    auto start = stdout_text.rfind('\n', end);
    r.last_line = stdout_text.substr(start == std::string::npos ? 0 : start + 1,
                                     end + 1 - (start == std::string::npos ? 0 : start + 1));
  }
  return r;
}

fs::path temp_dir(const std::string& name) {
  fs::path d =
      fs::temp_directory_path() / ("gossip-peer-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

fs::path write_config(const fs::path& dir, const std::string& text) {
  fs::path p = dir / "config.json";
  std::ofstream(p) << text;
  return p;
}

}  // namespace

TEST_CASE("a swarm of one trains Fashion-MNIST and ends with a JSON summary") {
  gossip::test::require_fashion_mnist();
  const fs::path dir = temp_dir("solo");
  const fs::path cfg = write_config(dir, R"({
    "peer": {"network": false, "data_dir": "run"},
    "model": {"layers": [784, 128, 10]},
    "optimizer": {"type": "sgd", "lr": 0.02, "momentum": 0.9},
    "data": {"dataset": {"type": "fashion_mnist"}, "batch": 64},
    "training": {"device": "auto", "epochs": 1, "eval": {"max_rows": 2000}}
  })");
  const Run r = run_peer("--config " + cfg.string(), dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  const auto summary = nlohmann::json::parse(r.last_line);
  CHECK(summary.at("epochs") == 1);
  CHECK(summary.at("steps") == 938);  // ceil(60000 / 64)
  // device auto: the GPU when one is usable, else the CPU.
  if (gossip::train::cuda_device_present()) {
    CHECK(summary.at("device").get<std::string>().rfind("cuda:", 0) == 0);
  } else {
    CHECK(summary.at("device") == "cpu");
  }
  CHECK(summary.at("samples_per_s").get<double>() > 0);
  CHECK(summary.at("wall_s").get<double>() > 0);
  // One epoch of this MLP reaches ~84%; far above chance (10%).
  CHECK(summary.at("test_accuracy").get<double>() > 0.78);
  // The per-epoch progress line names epoch, step, loss, rate and accuracy.
  CHECK(r.out.find("epoch 1/1") != std::string::npos);
  CHECK(r.out.find("samples/s") != std::string::npos);
  CHECK(r.out.find("test acc") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("--print-config shows the effective config with defaults") {
  const fs::path dir = temp_dir("print");
  const fs::path cfg = write_config(dir, R"({
    "peer": {"network": false},
    "model": {"layers": [10, 20, 1], "loss": "mse", "activation": "tanh"},
    "data": {"dataset": {"type": "synthetic_regression"}}
  })");
  const Run r = run_peer("--config " + cfg.string() + " --print-config", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out.substr(0, r.out.rfind('}') + 1));
  CHECK(j.at("optimizer").at("type") == "sgd");
  CHECK(j.at("data").at("batch") == 64);
  CHECK(j.at("training").at("cpu_threads") == 1);
  fs::remove_all(dir);
}

TEST_CASE("bad usage and bad configs exit 2 with a one-line reason naming the problem") {
  const fs::path dir = temp_dir("bad");
  SUBCASE("unknown key") {
    const fs::path cfg = write_config(dir, R"({"model": {"layers": [10, 1], "loss": "mse"},
      "data": {"dataset": {"type": "synthetic_regression"}}, "optimizer": {"momentun": 0.9}})");
    const Run r = run_peer("--config " + cfg.string(), dir);
    CHECK(r.status == 2);
    CHECK(r.out.find("optimizer.momentun") != std::string::npos);
  }
  SUBCASE("negative batch") {
    const fs::path cfg = write_config(dir, R"({"model": {"layers": [10, 1], "loss": "mse"},
      "data": {"dataset": {"type": "synthetic_regression"}, "batch": -4}})");
    const Run r = run_peer("--config " + cfg.string(), dir);
    CHECK(r.status == 2);
    CHECK(r.out.find("data.batch") != std::string::npos);
  }
  SUBCASE("layers that do not fit the data") {
    const fs::path cfg = write_config(dir, R"({"peer": {"network": false},
      "model": {"layers": [12, 8, 1], "loss": "mse"},
      "data": {"dataset": {"type": "synthetic_regression"}}, "training": {"steps": 5}})");
    const Run r = run_peer("--config " + cfg.string(), dir);
    CHECK(r.status == 2);
    CHECK(r.out.find("model.layers") != std::string::npos);
  }
  SUBCASE("--data-dir that is empty or a file") {
    const fs::path cfg = write_config(dir, R"({"peer": {"network": false},
      "model": {"layers": [10, 1], "loss": "mse"},
      "data": {"dataset": {"type": "synthetic_regression"}}, "training": {"steps": 5}})");
    Run r = run_peer("--config " + cfg.string() + " --data-dir ''", dir);
    CHECK(r.status == 2);
    CHECK(r.out.find("--data-dir needs a folder") != std::string::npos);
    r = run_peer("--config " + cfg.string() + " --data-dir " + cfg.string(), dir);
    CHECK(r.status == 2);
    CHECK(r.out.find("--data-dir " + cfg.string() + ": exists and is not a folder") !=
          std::string::npos);
  }
  SUBCASE("missing config file and unknown option") {
    CHECK(run_peer("--config " + (dir / "nope.json").string(), dir).status == 2);
    CHECK(run_peer("--frobnicate", dir).status == 2);
    CHECK(run_peer("", dir).status == 2);
  }
  fs::remove_all(dir);
}

namespace {

// A swarm of one on the synthetic regression task, `steps` steps at `lr`,
// checkpoints every `every` steps (0: only the final one) in <dir>/run.
fs::path regression_config(const fs::path& dir, const std::string& name, double lr, int64_t steps,
                           int64_t every) {
  const fs::path p = dir / (name + ".json");
  std::ofstream(p) << nlohmann::json{
      {"peer", {{"network", false}, {"data_dir", (dir / "run").string()}}},
      {"model", {{"layers", {10, 20, 1}}, {"loss", "mse"}, {"activation", "tanh"}}},
      {"optimizer", {{"type", "sgd"}, {"lr", lr}}},
      {"data", {{"dataset", {{"type", "synthetic_regression"}}}, {"batch", 32}}},
      {"training", {{"device", "cpu"}, {"steps", steps}}},
      {"checkpoint",
       {{"every_steps",
         every}}}}.dump(2);
  return p;
}

}  // namespace

TEST_CASE("a diverged run stops with an error, keeps the last good checkpoint and exits 1") {
  const fs::path dir = temp_dir("diverge");
  // 40 good steps leave a checkpoint at step 40.
  const fs::path good_cfg = regression_config(dir, "good", 0.05, 40, 0);
  const Run good = run_peer("--config " + good_cfg.string(), dir);
  INFO(good.out);
  REQUIRE(good.status == 0);
  const std::string good_ckpt = nlohmann::json::parse(good.last_line).at("checkpoint");
  REQUIRE(fs::exists(good_ckpt));

  // Resumed with an absurd learning rate and a checkpoint every step: the
  // loss overflows within a few steps.
  const Run bad = run_peer("--config " + regression_config(dir, "bad", 1e30, 400, 1).string(), dir);
  INFO(bad.out);
  CHECK(bad.status == 1);
  CHECK(bad.out.find("training diverged at step ") != std::string::npos);
  CHECK(bad.out.find("lower optimizer.lr") != std::string::npos);
  CHECK(bad.out.find("gossip-peer: training diverged at step ") != std::string::npos);
  const auto summary = nlohmann::json::parse(bad.last_line);
  const int64_t steps = summary.at("steps");
  CHECK(steps > 40);
  CHECK(steps < 400);
  CHECK(summary.at("stopped") == false);
  CHECK(summary.at("error").get<std::string>().find("training diverged at step " +
                                                    std::to_string(steps)) == 0);
  // No evaluation ran on the diverged parameters: nothing to report.
  CHECK(summary.at("test_loss").is_null());
  CHECK(summary.at("test_accuracy").is_null());
  // train_loss is the finite mean of the steps before the divergence.
  REQUIRE(summary.at("train_loss").is_number());
  CHECK(std::isfinite(summary.at("train_loss").get<double>()));
  // The summary names the last good checkpoint, written before the divergence.
  const std::string last_good = summary.at("checkpoint");
  REQUIRE(fs::exists(last_good));

  // Every checkpoint left is loadable: the next start resumes from one.
  const Run again = run_peer("--config " + good_cfg.string(), dir);
  INFO(again.out);
  CHECK(again.status == 0);
  CHECK(again.out.find("non-finite") == std::string::npos);
  CHECK(again.out.find(last_good) != std::string::npos);
  CHECK(nlohmann::json::parse(again.last_line).at("start_step") ==
        nlohmann::json::parse(bad.last_line).at("steps").get<int64_t>() - 1);
  for (const auto& e : fs::directory_iterator(dir / "run")) {
    CHECK(e.path().extension() != ".rejected");
  }
  fs::remove_all(dir);
}

TEST_CASE("train_loss is the mean of the steps done without a whole epoch, null without steps") {
  const fs::path dir = temp_dir("trainloss");
  const fs::path cfg = regression_config(dir, "short", 0.05, 5, 0);
  const Run first = run_peer("--config " + cfg.string(), dir);
  INFO(first.out);
  REQUIRE(first.status == 0);
  const auto s1 = nlohmann::json::parse(first.last_line);
  CHECK(s1.at("epochs") == 0);
  CHECK(s1.at("steps") == 5);
  REQUIRE(s1.at("train_loss").is_number());
  // Targets have unit variance: an untrained model's MSE is near 1, not 0.
  CHECK(s1.at("train_loss").get<double>() > 0.1);
  CHECK(s1.at("error").is_null());

  // Resumed with the budget already spent: no step, so no training loss.
  const Run second = run_peer("--config " + cfg.string(), dir);
  INFO(second.out);
  REQUIRE(second.status == 0);
  const auto s2 = nlohmann::json::parse(second.last_line);
  CHECK(s2.at("start_step") == 5);
  CHECK(s2.at("train_loss").is_null());
  fs::remove_all(dir);
}

TEST_CASE("--join and --listen need peer.network true") {
  const fs::path dir = temp_dir("nonet");
  const fs::path cfg = regression_config(dir, "solo", 0.05, 5, 0);
  for (const std::string opt : {"--join 127.0.0.1:7400", "--listen 127.0.0.1:0"}) {
    INFO(opt);
    const Run r = run_peer("--config " + cfg.string() + " " + opt, dir);
    CHECK(r.status == 2);
    CHECK(r.out.find(opt.substr(0, opt.find(' ')) + " needs a network") != std::string::npos);
    CHECK(r.out.find("peer.network false") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "run"));  // rejected before anything started
  }
  fs::remove_all(dir);
}

TEST_CASE("a folder given as --config is named as a folder, with exit status 2") {
  const fs::path dir = temp_dir("cfgdir");
  const Run r = run_peer("--config " + dir.string(), dir);
  CHECK(r.status == 2);
  CHECK(r.out.find(dir.string() + " is a directory, not a config file") != std::string::npos);
  CHECK(r.out.find("invalid JSON") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("errors from the backend and the shard name their config key once") {
  const fs::path dir = temp_dir("prefix");
  SUBCASE("training.device cuda") {
    const fs::path cfg = write_config(dir, R"({"peer": {"network": false},
      "model": {"layers": [10, 20, 1], "loss": "mse"},
      "data": {"dataset": {"type": "synthetic_regression"}},
      "training": {"device": "cuda", "steps": 1}})");
    const Run r = run_peer("--config " + cfg.string(), dir);
    INFO(r.out);
    if (gossip::train::cuda_device_present()) {
      // With a device the run must succeed on it, not fall back to the CPU.
      REQUIRE(r.status == 0);
      CHECK(nlohmann::json::parse(r.last_line).at("device").get<std::string>().rfind("cuda:", 0) ==
            0);
    } else {
      CHECK(r.status == 1);
      CHECK(r.out.find("gossip-peer: training.device: cuda requested") != std::string::npos);
      CHECK(r.out.find("training.device: training.device") == std::string::npos);
    }
  }
  SUBCASE("more shards than rows") {
    const fs::path cfg = write_config(dir, R"({"peer": {"network": false},
      "model": {"layers": [10, 20, 1], "loss": "mse"},
      "data": {"dataset": {"type": "synthetic_regression"}, "shard": {"num_shards": 9000}},
      "training": {"device": "cpu", "steps": 1}})");
    const Run r = run_peer("--config " + cfg.string(), dir);
    INFO(r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find("gossip-peer: data.shard: 9000 shards but synthetic_regression/train has "
                     "only 8192 samples") != std::string::npos);
  }
  fs::remove_all(dir);
}
