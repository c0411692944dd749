// The byte-level GPT as a swarm of real gossip-peer processes on loopback,
// with real keys from gossip-keygen and the demo corpus (Debian's fortunes):
// peer A founds the swarm; B joins by A's address, downloads A's state
// (starting at the step A served, from A's trained parameters rather than its
// own initialisation) and both average; both stop with a summary whose
// validation loss is finite and below a uniform guess's ln 256 nats per byte;
// B restarted with the same config resumes from its checkpoint; a third peer
// whose GPT differs in one shape key (embd) is refused by the swarm and stops
// naming both models. A tiny GPT (1 layer, embd 32, block 32) keeps it to a
// few seconds; waits poll for conditions, so a loaded machine only makes it
// slower.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

#include "gossip/config/config.hpp"
#include "peer_process.hpp"

using namespace gossip::test;

namespace {

const std::vector<std::string> kCorpus = {"/usr/share/games/fortunes/computers",
                                          "/usr/share/games/fortunes/science"};
const double kUniformLoss = std::log(256.0);  // nats per byte of a uniform guess

// One peer of the test swarm: a networked tiny GPT on shard `index` of 2,
// evaluated once at the end on the first 64 validation windows; the final
// checkpoint only; a metrics line every step. `steps` 0: runs until stopped.
struct GptPeer {
  fs::path dir;
  std::string tag;
  int index = 0;
  int embd = 32;
  int64_t steps = 0;

  fs::path data_dir() const { return dir / tag; }
  fs::path metrics() const { return data_dir() / "metrics.jsonl"; }

  fs::path write_config(int port) const {
    const fs::path p = dir / (tag + ".json");
    Json training = {{"device", "cpu"}, {"eval", {{"every_epochs", 0}, {"max_rows", 64}}}};
    if (steps > 0) training["steps"] = steps;
    std::ofstream(p) << Json{{"peer",
                              {{"listen", "127.0.0.1:" + std::to_string(port)},
                               {"identity_key", (dir / (tag + ".key")).string()},
                               {"swarm_key", (dir / "swarm.key").string()},
                               {"data_dir", data_dir().string()}}},
                             {"model",
                              {{"type", "gpt"},
                               {"vocab", 256},
                               {"block", 32},
                               {"layers", 1},
                               {"heads", 2},
                               {"embd", embd},
                               {"seed", 1}}},
                             {"optimizer",
                              {{"type", "adamw"},
                               {"lr", 3e-3},
                               {"beta2", 0.95},
                               {"weight_decay", 0.1},
                               {"grad_clip", 1.0}}},
                             {"data",
                              {{"dataset", {{"type", "text"}, {"path", kCorpus}}},
                               {"shard", {{"type", "random"}, {"num_shards", 2}, {"index", index}}},
                               {"batch", 8},
                               {"seed", 1}}},
                             {"training", training},
                             {"gossip", {{"interval_steps", 5}}},
                             {"checkpoint", {{"every_steps", 0}, {"keep", 2}}},
                             {"metrics", {{"every_steps", 1}, {"progress_every_s", 0}}}}
                            .dump(2);
    return p;
  }
};

// Starts `peer` listening on a free port; returns the process and its config
// file.
std::pair<Proc, fs::path> start(const GptPeer& peer, const std::vector<std::string>& extra = {}) {
  fs::path cfg;
  Proc p = start_listening(
      [&](int port) {
        cfg = peer.write_config(port);
        return cfg;
      },
      peer.dir, peer.tag, extra);
  return {p, cfg};
}

// The train records of the run that started `run`-th (1: the first start).
std::vector<Json> train_records(const fs::path& metrics, int run = 1) {
  std::vector<Json> out;
  int starts = 0;
  for (auto& l : metrics_of(metrics, /*complete_only=*/true)) {
    if (l.at("type") == "start") ++starts;
    if (starts == run && l.at("type") == "train") out.push_back(std::move(l));
  }
  return out;
}

// The step in the first log line of `err` that starts with `prefix` and
// goes on with "(step N)"; -1 when there is none.
int64_t logged_step(const std::string& err, const std::string& prefix) {
  const std::regex re(prefix + R"( \(step ([0-9]+)\))");
  std::smatch m;
  return std::regex_search(err, m, re) ? std::stoll(m[1].str()) : -1;
}

}  // namespace

TEST_CASE("GPT peers as processes: join with A's state, average, resume, refuse another GPT") {
  REQUIRE_MESSAGE(fs::exists(kCorpus[0]),
                  "the fortunes package is missing: run tools/bootstrap (it installs it)");
  constexpr int64_t kFounderSteps = 40;  // A's progress before B joins
  constexpr int64_t kJoinerSteps = 40;   // B's own steps before it is stopped
  const fs::path dir = temp_dir("gpt", "swarm");
  const std::string keygen = build_root() + "/tools/gossip-keygen";
  shell(keygen + " swarm --out " + (dir / "swarm.key").string() + " >/dev/null");
  for (const char* tag : {"a", "b", "c"}) {
    shell(keygen + " identity --out " + (dir / (std::string(tag) + ".key")).string() +
          " >/dev/null");
  }
  GptPeer peer_a{dir, "a", 0}, peer_b{dir, "b", 1}, peer_c{dir, "c", 1, 48};
  Proc a, b, b_again, c;
  Reaper reaper{{&a, &b, &b_again, &c}};
  fs::path cfg_a, cfg_b, cfg_c;
  std::tie(a, cfg_a) = start(peer_a);
  const std::string first = Json::parse(read_text(cfg_a))["peer"]["listen"];
  wait_for(
      {&a}, [&] { return train_records(peer_a.metrics()).size() >= kFounderSteps; },
      "A's first steps", 60, std::chrono::milliseconds(5));

  // B joins by A's address, downloads A's state and trains on from there.
  std::tie(b, cfg_b) = start(peer_b, {"--join", first});
  auto exchanged = [](const std::vector<Json>& records) {
    return !records.empty() && records.back().value("exchanges_ok", 0) > 0;
  };
  wait_for(
      {&a, &b},
      [&] {
        const auto rb = train_records(peer_b.metrics());
        return rb.size() >= kJoinerSteps && exchanged(rb) &&
               exchanged(train_records(peer_a.metrics()));
      },
      "B to train and both to average", 60);
  ::kill(b.pid, SIGTERM);
  REQUIRE(wait_exit(b, 30) == 0);
  const std::string err_b = read_text(b.err);
  const Json sb = summary_of(b);
  const int64_t served = logged_step(read_text(a.err), "served training state");
  const int64_t downloaded = logged_step(err_b, "downloaded the swarm's state");
  MESSAGE("A served its state at step " << served << "; B stopped at step " << sb.at("steps"));
  const int64_t b_stop = sb.at("steps");
  // B's first step ran on A's parameters: its loss is about A's loss just
  // before it served them, not a fresh model's ln 256.
  const auto rb = train_records(peer_b.metrics());
  REQUIRE(!rb.empty());
  double a_loss = 0;
  int a_n = 0;
  for (const auto& r : train_records(peer_a.metrics())) {
    const int64_t s = r.at("step");
    if (s > served - 10 && s <= served) a_loss += r.at("loss").get<double>(), ++a_n;
  }
  REQUIRE(a_n > 0);
  a_loss /= a_n;
  const double b_first = rb.front().at("loss");
  MESSAGE("loss: A over its last 10 steps before serving "
          << a_loss << ", B's first step " << b_first << ", uniform " << kUniformLoss);
  {
    INFO("b: " << err_b);
    CHECK(served >= kFounderSteps);
    CHECK(downloaded == served);
    CHECK(sb.at("from_swarm_state") == true);
    CHECK(sb.at("start_step") == served);
    const auto metrics_b = metrics_of(peer_b.metrics());
    REQUIRE(!metrics_b.empty());
    CHECK(metrics_b.front().at("type") == "start");
    CHECK(metrics_b.front().at("step") == served);
    CHECK(rb.front().at("step") == served + 1);
    CHECK(a_loss < kUniformLoss - 1.0);
    CHECK(b_first < (a_loss + kUniformLoss) / 2);
    CHECK(sb.at("exchanges_ok").get<int64_t>() > 0);
    CHECK(sb.at("stopped") == true);
    CHECK(sb.at("model") == "gpt vocab 256 block 32 layers 1 heads 2 embd 32");
    for (const char* key : {"test_loss", "test_bits_per_byte"}) {
      CAPTURE(key);
      REQUIRE(sb.at(key).is_number());
      CHECK(std::isfinite(sb.at(key).get<double>()));
    }
    CHECK(sb.at("test_loss").get<double>() < kUniformLoss);
    CHECK(sb.at("test_bits_per_byte").get<double>() ==
          doctest::Approx(sb.at("test_loss").get<double>() / std::log(2.0)));
    REQUIRE(fs::exists(sb.at("checkpoint").get<std::string>()));
  }

  // B restarted with the same config resumes from its own checkpoint (no
  // download) and continues from the step it stopped at.
  peer_b.steps = b_stop + 20;
  std::tie(b_again, cfg_b) = start(peer_b, {"--join", first});
  REQUIRE(wait_exit(b_again, 60) == 0);
  {
    const std::string err = read_text(b_again.err);
    INFO("b restarted: " << err);
    const Json s = summary_of(b_again);
    CHECK(contains(err, "resuming from " + sb.at("checkpoint").get<std::string>()));
    CHECK_FALSE(contains(err, "downloaded the swarm's state"));
    CHECK(s.at("start_step") == b_stop);
    CHECK(s.at("from_swarm_state") == false);
    CHECK(s.at("steps") == b_stop + 20);
    CHECK(s.at("stopped") == false);
    const auto r2 = train_records(peer_b.metrics(), 2);
    REQUIRE(!r2.empty());
    CHECK(r2.front().at("step") == b_stop + 1);
    CHECK(std::isfinite(s.at("test_loss").get<double>()));
    CHECK(s.at("test_loss").get<double>() < kUniformLoss);
  }

  // C's GPT has embd 48: every member refuses its state request, and C stops
  // (exit 2) naming its model and both fingerprints.
  peer_c.steps = 1000;
  std::tie(c, cfg_c) = start(peer_c, {"--join", first});
  const int rc_c = wait_exit(c, 60);
  const std::string err_c = read_text(c.err);
  {
    INFO("c: " << err_c);
    const std::string fp_a = fingerprint_hex(cfg_a), fp_c = fingerprint_hex(cfg_c);
    REQUIRE(fp_a != fp_c);
    CHECK(rc_c == 2);
    CHECK(contains(err_c,
                   "gossip-peer: model mismatch: this config's model gpt vocab 256 "
                   "block 32 layers 1 heads 2 embd 48 (fingerprint " +
                       fp_c + ") is not the swarm's: "));
    CHECK(contains(err_c, "every member refused this peer's model"));
    CHECK(contains(err_c, " has " + fp_a));
    CHECK_FALSE(has_checkpoint(peer_c.data_dir()));
    CHECK(contains(read_text(a.err), "refused STATE_REQ: model mismatch"));
  }

  REQUIRE(!exited(a));
  ::kill(a.pid, SIGTERM);
  REQUIRE(wait_exit(a, 30) == 0);
  {
    const Json sa = summary_of(a);
    INFO("a: " << read_text(a.err));
    CHECK(sa.at("exchanges_ok").get<int64_t>() > 0);
    CHECK(sa.at("from_swarm_state") == false);
    CHECK(sa.at("start_step") == 0);
    CHECK(std::isfinite(sa.at("test_loss").get<double>()));
    CHECK(sa.at("test_loss").get<double>() < kUniformLoss);
    CHECK(std::isfinite(sa.at("test_bits_per_byte").get<double>()));
    MESSAGE("A: " << sa.at("steps") << " steps, test loss " << sa.at("test_loss")
                  << " nats/byte; B: test loss " << sb.at("test_loss"));
  }
  fs::remove_all(dir);
}
