// configs/bench-mlp.json loads and `gossip-bench train` ends with its JSON
// summary line (a few steps only: this checks the plumbing, never speed); a
// bad flag exits 2 with a message.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

// Runs `cmd`, returns stdout and sets `rc`.
std::string run(const std::string& cmd, int& rc) {
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  rc = pclose(pipe);
  return out;
}

std::string last_line(const std::string& out) {
  std::stringstream ss(out);
  std::string last;
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

TEST_CASE("gossip-bench train runs configs/bench-mlp.json and prints its JSON summary") {
  const std::string src = env_or("GOSSIP_SOURCE_ROOT", ".");
  const std::string build = env_or("GOSSIP_BUILD_ROOT", ".");
  const std::string bench = build + "/tools/gossip-bench";
  REQUIRE_MESSAGE(std::filesystem::exists(bench),
                  bench << " is not built (meson test builds it; or meson compile -C build)");
  int rc = 0;
  const std::string out = run("'" + bench + "' train --config '" + src +
                                  "/configs/bench-mlp.json' --steps 3 --warmup 1 --rounds 1 "
                                  "--device cpu --no-torch 2>/dev/null",
                              rc);
  REQUIRE(rc == 0);
  const auto j = nlohmann::json::parse(last_line(out));
  CHECK(j.at("samples_per_s").get<double>() > 0);
  CHECK(j.at("device").get<std::string>() == "cpu");
  CHECK(j.at("batch").get<int>() == 64);
  CHECK(j.at("layers") == nlohmann::json::array({784, 256, 128, 10}));
  CHECK(j.at("torch_note").get<std::string>().find("--no-torch") != std::string::npos);
  CHECK(out.find("sgd lr 0.02 momentum 0.9") != std::string::npos);

  // A bad flag is refused with the usage exit status and a message naming
  // it, not a crash.
  const std::string err = run("'" + bench + "' train --batch 0 --no-torch 2>&1 >/dev/null", rc);
  REQUIRE(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 2);
  CHECK(err.find("gossip-bench train: --batch must be > 0") != std::string::npos);
}

TEST_CASE("gossip-bench train runs configs/bench-gpt.json: the GPT next to PyTorch, profiled") {
  const std::string src = env_or("GOSSIP_SOURCE_ROOT", ".");
  const std::string build = env_or("GOSSIP_BUILD_ROOT", ".");
  const std::string bench = build + "/tools/gossip-bench";
  REQUIRE(std::filesystem::exists(bench));
  // PyTorch runs when Debian's python3-torch is there; the bench says why
  // not otherwise, and this test then checks the C++ side alone.
  const bool torch = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  int rc = 0;
  const std::string out =
      run("cd '" + src + "' && '" + std::filesystem::absolute(bench).string() +
              "' train --config configs/bench-gpt.json --steps 1 --warmup 1 --rounds 1 "
              "--device cpu --profile" +
              (torch ? "" : " --no-torch") + " 2>/dev/null",
          rc);
  REQUIRE(rc == 0);
  const auto j = nlohmann::json::parse(last_line(out));
  CHECK(j.at("tokens_per_s").get<double>() > 0);
  CHECK(j.at("device").get<std::string>() == "cpu");
  CHECK(j.at("model").get<std::string>() == "gpt vocab 256 block 128 layers 4 heads 4 embd 128");
  CHECK(j.at("params").get<int64_t>() == 842496);
  CHECK(j.at("batch").get<int>() == 16);
  CHECK(j.at("threads").get<int>() == 1);
  // The profile names every kind of operation of a step, each with a time.
  const auto& prof = j.at("cpu_profile_ms_per_step");
  for (const char* op : {"layernorm_forward", "matmul_forward (blocks)", "attention_forward",
                         "gelu_forward", "crossentropy_forward_backward", "attention_backward",
                         "matmul_backward (blocks)", "optimizer update"}) {
    CHECK_MESSAGE(prof.contains(op), op);
    if (prof.contains(op)) CHECK(prof.at(op).get<double>() >= 0);
  }
  CHECK(out.find("adamw lr 0.003 wd 0.1 clip 1") != std::string::npos);
  if (torch) {
    // Same initial parameters, same first batch: the same loss on both
    // sides, the check that the baseline trains the same model.
    REQUIRE(j.contains("torch_tokens_per_s"));
    CHECK(j.at("torch_tokens_per_s").get<double>() > 0);
    CHECK(j.at("cpu_vs_torch").get<double>() > 0);
    CHECK(j.at("torch_first_loss").get<double>() ==
          doctest::Approx(j.at("cpu_first_loss").get<double>()).epsilon(1e-5));
    CHECK(out.find("pytorch profile") != std::string::npos);
  } else {
    CHECK(j.at("torch_note").get<std::string>().find("--no-torch") != std::string::npos);
  }

  // A config that is not a valid peer config is refused naming the problem.
  const std::string err = run("'" + bench + "' train --config '" + src +
                                  "/configs/bench-gpt.json' --batch 0 2>&1 >/dev/null",
                              rc);
  REQUIRE(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 2);
  CHECK(err.find("--batch must be > 0") != std::string::npos);
}
