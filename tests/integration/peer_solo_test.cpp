// gossip-peer as a user runs it: a swarm of one on real Fashion-MNIST, the
// summary line, --print-config and the exit status for bad configs.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

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

bool have_fashion_mnist() {
  return fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

}  // namespace

TEST_CASE("a swarm of one trains Fashion-MNIST and ends with a JSON summary") {
  if (!have_fashion_mnist()) {
    MESSAGE("skipped: dataset-fashion-mnist is not installed (tools/bootstrap installs it)");
    return;
  }
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
  CHECK(summary.at("device") == "cpu");
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
  SUBCASE("missing config file and unknown option") {
    CHECK(run_peer("--config " + (dir / "nope.json").string(), dir).status == 2);
    CHECK(run_peer("--frobnicate", dir).status == 2);
    CHECK(run_peer("", dir).status == 2);
  }
  fs::remove_all(dir);
}
