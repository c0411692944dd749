// gossip-sim trains a GPT swarm (configs/sim-gpt.json, shortened), and a
// swarm of one trains the byte-level GPT on the demo corpus (Debian's
// fortunes, installed by tools/bootstrap) through the real gossip-peer, and
// within a CI-sized run its validation loss beats the best bigram model's,
// counted on the same training bytes and scored on the same held-out
// positions.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "gossip/data/text.hpp"
#include "peer_process.hpp"

using namespace gossip::test;

namespace {

const std::vector<std::string> kCorpus = {"/usr/share/games/fortunes/computers",
                                          "/usr/share/games/fortunes/science"};
constexpr int kBlock = 64;
constexpr int kEvalWindows = 200;

// Mean nats per byte of an add-alpha bigram model counted on the training
// part, over the targets of the first `windows` validation windows.
double bigram_validation_loss(double alpha) {
  auto bytes = gossip::data::read_text_corpus(kCorpus);
  REQUIRE(bytes.is_ok());
  const size_t held = static_cast<size_t>(std::floor(double(bytes->size()) * 0.1));
  const size_t head = bytes->size() - held;
  std::vector<std::array<double, 256>> pair(256);
  std::array<double, 256> from{};
  for (auto& row : pair) row.fill(0.0);
  for (size_t i = 0; i + 1 < head; ++i) {
    pair[(*bytes)[i]][(*bytes)[i + 1]] += 1;
    from[(*bytes)[i]] += 1;
  }
  double loss = 0;
  int64_t n = 0;
  for (int w = 0; w < kEvalWindows; ++w) {
    for (int j = 1; j <= kBlock; ++j) {
      const size_t at = head + size_t(w) * kBlock + size_t(j);
      const uint8_t prev = (*bytes)[at - 1], next = (*bytes)[at];
      loss -= std::log((pair[prev][next] + alpha) / (from[prev] + 256 * alpha));
      ++n;
    }
  }
  return loss / double(n);
}

}  // namespace

TEST_CASE("a GPT trained for 300 steps on fortunes beats the bigram model's validation loss") {
  REQUIRE_MESSAGE(fs::exists(kCorpus[0]),
                  "the fortunes package is missing: run tools/bootstrap (it installs it)");
  const fs::path dir = temp_dir("gpt", "bigram");
  const Json config = {
      {"peer", {{"network", false}, {"data_dir", (dir / "run").string()}}},
      {"model",
       {{"type", "gpt"},
        {"block", kBlock},
        {"layers", 2},
        {"heads", 4},
        {"embd", 64},
        {"seed", 1}}},
      {"optimizer",
       {{"type", "adamw"},
        {"lr", 3e-3},
        {"beta2", 0.95},
        {"weight_decay", 0.1},
        {"grad_clip", 1.0}}},
      {"data", {{"dataset", {{"type", "text"}, {"path", kCorpus}}}, {"batch", 16}}},
      {"training", {{"device", "cpu"}, {"steps", 300}, {"eval", {{"max_rows", kEvalWindows}}}}},
      {"checkpoint", {{"every_steps", 0}}}};
  std::ofstream(dir / "gpt.json") << config.dump(2);
  Proc p = spawn(dir / "gpt.json", dir, "peer");
  Reaper reaper{{&p}};
  REQUIRE(wait_exit(p, 300) == 0);
  p.pid = -1;
  const Json s = summary_of(p);
  INFO(read_text(p.err));
  const double gpt = s.at("test_loss").get<double>();
  double bigram = 1e9;
  for (double alpha : {0.01, 0.1, 1.0}) bigram = std::min(bigram, bigram_validation_loss(alpha));
  MESSAGE("validation loss: gpt " << gpt << " nats/byte ("
                                  << s.at("test_bits_per_byte").get<double>()
                                  << " bits/byte), best bigram " << bigram);
  CHECK(s.at("steps") == 300);
  CHECK(s.at("model") == "gpt vocab 256 block 64 layers 2 heads 4 embd 64");
  CHECK(s.at("test_bits_per_byte").get<double>() == doctest::Approx(gpt / std::log(2.0)));
  CHECK(gpt < bigram);
  // A resumed run loads the checkpoint of the same model.
  CHECK(has_checkpoint(dir / "run"));
  fs::remove_all(dir);
}

TEST_CASE("gossip-sim trains a GPT swarm: the averaged model learns and the replicas agree") {
  const fs::path dir = temp_dir("gpt", "sim");
  const char* root = std::getenv("GOSSIP_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "GOSSIP_SOURCE_ROOT is set by meson test");
  Json config = Json::parse(read_text(fs::path(root) / "configs/sim-gpt.json"), nullptr, true,
                            /*ignore_comments=*/true);
  config["sim"]["peers"] = 3;
  // The bounds below were measured at batch 16 (the shipped config trains at
  // batch 4, whose noisier steps leave the replicas further apart after 80).
  config["data"]["batch"] = 16;
  config["training"]["steps"] = 80;
  std::ofstream(dir / "sim.json") << config.dump(2);
  const ProgramRun r = run_program(
      "tools/gossip-sim",
      "--config " + (dir / "sim.json").string() + " --out " + (dir / "run").string(), dir, "sim");
  INFO(r.err);
  REQUIRE(r.status == 0);
  const Json s = summary_of(r.files);
  MESSAGE("averaged model " << s.at("averaged_model_loss").get<double>() << " nats/byte, consensus "
                            << s.at("consensus_distance").get<double>() << ", exchanges "
                            << s.at("exchanges_ok").get<int64_t>());
  CHECK(s.at("error").is_null());
  CHECK(s.at("alive") == 3);
  CHECK(s.at("exchanges_ok").get<int64_t>() >= 6);
  // A fresh model scores ln 256 = 5.55 nats per byte.
  CHECK(s.at("averaged_model_loss").get<double>() < 3.2);
  CHECK(s.at("consensus_distance").get<double>() < 0.01);
  // The report shows text from the averaged model at the first look and at
  // the end; the summary carries the last one (valid UTF-8, as JSON needs).
  REQUIRE(s.at("text_sample").is_string());
  CHECK(s.at("text_sample").get<std::string>().size() >= 300);
  const std::string html = read_text(dir / "run" / "report.html");
  CHECK(metrics_of(dir / "run" / "metrics.jsonl").front().at("task") == "language_model");
  CHECK(html.find("<pre class=\"sample\" id=\"text-first\">") != std::string::npos);
  CHECK(html.find("<pre class=\"sample\" id=\"text-last\">") != std::string::npos);
  CHECK(html.find("id=\"chart-bits-per-byte\"") != std::string::npos);
  for (const auto& p : s.at("final_peers")) {
    CHECK(p.at("state") == "finished");
    CHECK(p.at("test_loss").get<double>() < 3.2);
  }
  fs::remove_all(dir);
}
