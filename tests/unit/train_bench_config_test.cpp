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
