// Checkpoints and metrics on real files: the format round-trips exactly;
// every flipped byte and every truncation is detected; the store resumes the
// newest valid file, sets bad ones aside, falls back, starts fresh with a
// message, prunes to `keep`, ignores temp leftovers and refuses another
// model's file naming both; a trainer resumed from a checkpoint continues
// bit for bit; metrics lines are valid JSON and survive a torn last line.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/data/factory.hpp"
#include "gossip/peer/checkpoint.hpp"
#include "gossip/peer/metrics.hpp"
#include "gossip/peer/trainer.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace gossip;
using peer::CheckpointExpect;
using peer::CheckpointState;
using peer::CheckpointStore;

namespace {

using gossip::test::TempDir;

// A small model's state: 3-4-2 MLP (26 parameters), SGD momentum state.
CheckpointState small_state(int64_t step) {
  CheckpointState s;
  s.step = step;
  s.data = {step / 10, step % 10};
  s.optimizer_steps = step;
  s.weight = 1234.5;
  s.fingerprint = 0x0123456789abcdefULL;
  s.model = "3-4-2 relu softmax_cross_entropy";
  for (int i = 0; i < 26; ++i) {
    s.params.push_back(0.25f * static_cast<float>(i) - 3.0f + static_cast<float>(step) * 1e-3f);
    s.optimizer_state.push_back(-0.5f * static_cast<float>(i) + 1e-7f);
  }
  return s;
}

CheckpointExpect small_expect() {
  return {0x0123456789abcdefULL, "3-4-2 relu softmax_cross_entropy", 26, 26};
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Runs `fn` with stderr redirected to a file; returns what was written.
std::string capture_stderr(const std::function<void()>& fn) {
  TempDir dir("gossip-ckpt");
  const fs::path file = dir.path() / "stderr.txt";
  std::fflush(stderr);
  const int saved = ::dup(2);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(fd, 2);
  ::close(fd);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), {}};
}

bool same_state(const CheckpointState& a, const CheckpointState& b) {
  return a.step == b.step && a.data == b.data && a.optimizer_steps == b.optimizer_steps &&
         a.weight == b.weight && a.fingerprint == b.fingerprint && a.model == b.model &&
         a.params == b.params && a.optimizer_state == b.optimizer_state;
}

}  // namespace

TEST_CASE("a checkpoint round-trips every field and value exactly") {
  CheckpointState s = small_state(1234);
  s.params[3] = -0.0f;
  s.params[4] = 1e-38f;  // near-denormal values survive too
  const auto bytes = peer::encode_checkpoint(s);
  CHECK(bytes.size() == 16 + bytes[12] + (bytes[13] << 8) + 4 * 52 + 4);
  CHECK(std::string(bytes.begin(), bytes.begin() + 8) == "GOSSIPCK");
  const auto expect = small_expect();
  auto back = peer::decode_checkpoint(bytes, &expect);
  REQUIRE(back.is_ok());
  CHECK(same_state(*back, s));
  CHECK(std::signbit(back->params[3]));
  // The header is plain JSON a person can read with `head -c 400`.
  const std::string header(bytes.begin() + 16, bytes.begin() + 16 + bytes[12]);
  const auto h = nlohmann::json::parse(header);
  CHECK(h.at("step") == 1234);
  CHECK(h.at("fingerprint") == "0x0123456789abcdef");
  CHECK(h.at("param_count") == 26);
}

TEST_CASE("a checkpoint holds the outer optimizer's phi and v (gossip.mode outer)") {
  TempDir dir("gossip-ckpt");
  CheckpointState s = small_state(400);
  for (int i = 0; i < 26; ++i) {
    s.outer.phi.push_back(0.125f * static_cast<float>(i) - 1.0f);
    s.outer.v.push_back(1e-3f * static_cast<float>(i - 13));
  }
  const auto bytes = peer::encode_checkpoint(s);
  CHECK(bytes.size() == 16 + bytes[12] + (bytes[13] << 8) + 4 * (52 + 52) + 4);
  const auto expect = small_expect();
  auto back = peer::decode_checkpoint(bytes, &expect);
  REQUIRE(back.is_ok());
  CHECK(same_state(*back, s));
  CHECK(back->outer.phi == s.outer.phi);
  CHECK(back->outer.v == s.outer.v);
  // Through the store, as a peer writes and resumes it.
  auto store = CheckpointStore::open(dir.path(), 2, expect);
  REQUIRE(store.is_ok());
  REQUIRE(store->save(s).is_ok());
  auto loaded = store->load_newest();
  REQUIRE(loaded.has_value());
  CHECK(loaded->state.outer.phi == s.outer.phi);
  CHECK(loaded->state.outer.v == s.outer.v);
  // A params-mode file has none.
  auto plain = peer::decode_checkpoint(peer::encode_checkpoint(small_state(1)), &expect);
  REQUIRE(plain.is_ok());
  CHECK(plain->outer.empty());
  // Sizes that do not fit the model, and non-finite values, are refused.
  CheckpointState odd = s;
  odd.outer.v.resize(20);
  auto r = peer::decode_checkpoint(peer::encode_checkpoint(odd), &expect);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == core::Code::kCorrupt);
  CHECK(r.status().message().find("outer_count 46") != std::string::npos);
  CheckpointState nan = s;
  nan.outer.v[5] = std::nanf("");
  r = peer::decode_checkpoint(peer::encode_checkpoint(nan), &expect);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("momentum has a non-finite value at element 5") !=
        std::string::npos);
}

TEST_CASE("every flipped byte and every truncation of a checkpoint is detected") {
  const CheckpointState s = small_state(77);
  const auto good = peer::encode_checkpoint(s);
  const auto expect = small_expect();
  REQUIRE(peer::decode_checkpoint(good, &expect).is_ok());
  int detected = 0, flips = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      auto bad = good;
      bad[i] ^= mask;
      ++flips;
      auto r = peer::decode_checkpoint(bad, &expect);
      if (!r.is_ok() && r.status().code() == core::Code::kCorrupt) ++detected;
    }
  }
  CHECK(detected == flips);
  MESSAGE(flips << " flips of a " << good.size() << "-byte checkpoint, all detected");

  for (size_t len = 0; len < good.size(); ++len) {
    const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<long>(len));
    auto r = peer::decode_checkpoint(cut, &expect);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == core::Code::kCorrupt);
  }
  // Cut inside the float data: the reason says so, with both sizes.
  const std::vector<uint8_t> cut(good.begin(), good.end() - 40);
  auto r = peer::decode_checkpoint(cut, &expect);
  CHECK(r.status().message() == "truncated: " + std::to_string(good.size() - 40) + " of " +
                                    std::to_string(good.size()) + " bytes");
  auto wrong_magic = good;
  wrong_magic[0] = 'X';
  CHECK(peer::decode_checkpoint(wrong_magic).status().message().find("wrong magic") !=
        std::string::npos);
  auto flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  CHECK(peer::decode_checkpoint(flipped).status().message().find("checksum mismatch") !=
        std::string::npos);
}

TEST_CASE("a checkpoint of another model is refused, naming both models") {
  const auto bytes = peer::encode_checkpoint(small_state(10));
  const CheckpointExpect other{0xfedcba9876543210ULL, "3-8-2 relu softmax_cross_entropy", 50, 50};
  auto r = peer::decode_checkpoint(bytes, &other);
  REQUIRE_FALSE(r.is_ok());
  const std::string& m = r.status().message();
  CHECK(m.find("3-4-2 relu softmax_cross_entropy") != std::string::npos);
  CHECK(m.find("0x0123456789abcdef") != std::string::npos);
  CHECK(m.find("3-8-2 relu softmax_cross_entropy") != std::string::npos);
  CHECK(m.find("0xfedcba9876543210") != std::string::npos);
  // Same architecture, different optimizer (state size): refused too.
  CheckpointExpect adam = small_expect();
  adam.state_count = 52;
  CHECK(peer::decode_checkpoint(bytes, &adam).status().message().find("optimizer-state") !=
        std::string::npos);
}

TEST_CASE("the store saves atomically, keeps the newest K and ignores temp leftovers") {
  TempDir dir("gossip-ckpt");
  {
    auto store = CheckpointStore::open(dir.path(), 3, small_expect());
    REQUIRE(store.is_ok());
    for (int64_t step : {100, 200, 300, 400, 500}) {
      auto file = store->save(small_state(step));
      REQUIRE(file.is_ok());
      CHECK(file->filename() == peer::checkpoint_file_name(step));
    }
    const auto files = store->list();
    REQUIRE(files.size() == 3);
    CHECK(files[0].filename() == "ckpt-000000500.bin");
    CHECK(files[2].filename() == "ckpt-000000300.bin");
    // A second process (or store) cannot use the same folder meanwhile.
    auto second = CheckpointStore::open(dir.path(), 3, small_expect());
    REQUIRE_FALSE(second.is_ok());
    CHECK(second.status().code() == core::Code::kUnavailable);
    CHECK(second.status().message().find("in use") != std::string::npos);
  }
  // A crash in the middle of writing step 600 left a partial temp file.
  const auto full = peer::encode_checkpoint(small_state(600));
  write_bytes(dir.path() / "ckpt-000000600.bin.tmp",
              std::vector<uint8_t>(full.begin(), full.begin() + 100));
  auto store = CheckpointStore::open(dir.path(), 3, small_expect());
  REQUIRE(store.is_ok());
  CHECK_FALSE(fs::exists(dir.path() / "ckpt-000000600.bin.tmp"));
  auto loaded = store->load_newest();
  REQUIRE(loaded.has_value());
  CHECK(loaded->state.step == 500);
  CHECK(same_state(loaded->state, small_state(500)));
  CHECK(store->rejected().empty());
  CHECK(peer::checkpoint_step_from_name("ckpt-000000600.bin.tmp") == std::nullopt);
  CHECK(peer::checkpoint_step_from_name("ckpt-1234567890.bin") == 1234567890);
}

TEST_CASE("a corrupt newest checkpoint is reported and the previous one is used") {
  TempDir dir("gossip-ckpt");
  {
    auto store = CheckpointStore::open(dir.path(), 3, small_expect());
    REQUIRE(store.is_ok());
    for (int64_t step : {100, 200, 300}) REQUIRE(store->save(small_state(step)).is_ok());
  }
  const fs::path newest = dir.path() / "ckpt-000000300.bin";
  const fs::path middle = dir.path() / "ckpt-000000200.bin";

  SUBCASE("bit-flipped newest") {
    auto b = read_bytes(newest);
    b[b.size() - 30] ^= 0x04;
    write_bytes(newest, b);
    auto store = CheckpointStore::open(dir.path(), 3, small_expect());
    REQUIRE(store.is_ok());
    std::optional<peer::LoadedCheckpoint> loaded;
    const std::string err = capture_stderr([&] { loaded = store->load_newest(); });
    REQUIRE(loaded.has_value());
    CHECK(loaded->state.step == 200);
    CHECK(loaded->file == middle);
    REQUIRE(store->rejected().size() == 1);
    CHECK(store->rejected()[0].find(newest.string()) != std::string::npos);
    CHECK(store->rejected()[0].find("checksum mismatch") != std::string::npos);
    CHECK(err.find("ckpt-000000300.bin") != std::string::npos);
    CHECK(err.find("checksum mismatch") != std::string::npos);
    // Set aside, not deleted, and out of rotation: the next save and
    // pruning count only good checkpoints.
    CHECK(fs::exists(dir.path() / "ckpt-000000300.bin.rejected"));
    REQUIRE(store->save(small_state(210)).is_ok());
    REQUIRE(store->save(small_state(220)).is_ok());
    const auto files = store->list();
    REQUIRE(files.size() == 3);
    CHECK(files[0].filename() == "ckpt-000000220.bin");
  }
  SUBCASE("truncated newest and wrong magic in the middle: back to the oldest") {
    fs::resize_file(newest, fs::file_size(newest) - 7);
    auto b = read_bytes(middle);
    b[1] = 'x';
    write_bytes(middle, b);
    auto store = CheckpointStore::open(dir.path(), 3, small_expect());
    REQUIRE(store.is_ok());
    auto loaded = store->load_newest();
    REQUIRE(loaded.has_value());
    CHECK(loaded->state.step == 100);
    REQUIRE(store->rejected().size() == 2);
    CHECK(store->rejected()[0].find("truncated") != std::string::npos);
    CHECK(store->rejected()[1].find("wrong magic") != std::string::npos);
  }
  SUBCASE("none valid: the peer says so and starts fresh") {
    for (const auto& f : {newest, middle, dir.path() / "ckpt-000000100.bin"}) {
      fs::resize_file(f, 20);
    }
    auto store = CheckpointStore::open(dir.path(), 3, small_expect());
    REQUIRE(store.is_ok());
    std::optional<peer::LoadedCheckpoint> loaded;
    const std::string err = capture_stderr([&] { loaded = store->load_newest(); });
    CHECK_FALSE(loaded.has_value());
    CHECK(store->rejected().size() == 3);
    CHECK(err.find("no valid checkpoint") != std::string::npos);
    CHECK(err.find("starting fresh") != std::string::npos);
    CHECK(store->list().empty());
  }
  SUBCASE("another model's checkpoints are refused, naming both") {
    CheckpointExpect other{0x1111111111111111ULL, "3-5-2 relu softmax_cross_entropy", 37, 37};
    auto store = CheckpointStore::open(dir.path(), 3, other);
    REQUIRE(store.is_ok());
    CHECK_FALSE(store->load_newest().has_value());
    REQUIRE(store->rejected().size() == 3);
    CHECK(store->rejected()[0].find("3-4-2 relu") != std::string::npos);
    CHECK(store->rejected()[0].find("3-5-2 relu") != std::string::npos);
  }
  SUBCASE("an empty folder: fresh start, no warning") {
    TempDir empty;
    auto store = CheckpointStore::open(empty.path() / "sub" / "dir", 2, small_expect());
    REQUIRE(store.is_ok());
    std::optional<peer::LoadedCheckpoint> loaded;
    const std::string err = capture_stderr([&] { loaded = store->load_newest(); });
    CHECK_FALSE(loaded.has_value());
    CHECK(store->rejected().empty());
  }
}

TEST_CASE("a trainer resumed from a checkpoint continues bit for bit") {
  auto cfg = config::parse_config(R"({
    "peer": {"network": false},
    "model": {"layers": [10, 16, 1], "loss": "mse", "activation": "tanh"},
    "optimizer": {"type": "adam", "lr": 0.01},
    "data": {"dataset": {"type": "synthetic_regression", "train_samples": 1000,
                         "test_samples": 100}, "batch": 64},
    "training": {"device": "cpu", "steps": 100}
  })",
                                  fs::temp_directory_path());
  REQUIRE(cfg.is_ok());
  auto sets = data::make_datasets(cfg->data.dataset);
  REQUIRE(sets.is_ok());
  auto a = peer::Trainer::create(*cfg, sets->train, sets->test);
  auto b = peer::Trainer::create(*cfg, sets->train, sets->test);
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  for (int i = 0; i < 37; ++i) (*a)->step();  // crosses an epoch (16 batches each)

  TempDir dir("gossip-ckpt");
  auto store = CheckpointStore::open(dir.path(), 2, (*a)->checkpoint_expect());
  REQUIRE(store.is_ok());
  REQUIRE(store->save((*a)->checkpoint_state(42.0)).is_ok());
  auto loaded = store->load_newest();
  REQUIRE(loaded.has_value());
  CHECK(loaded->state.weight == 42.0);
  CHECK(loaded->state.optimizer_steps == 37);
  REQUIRE((*b)->resume(loaded->state).is_ok());
  CHECK((*b)->progress().step == 37);
  CHECK((*b)->epoch() == (*a)->epoch());
  CHECK((*b)->backend().optimizer_steps() == 37);
  for (int i = 0; i < 30; ++i) CHECK((*a)->step() == (*b)->step());
  std::vector<float> pa((*a)->backend().param_count()), pb(pa.size());
  (*a)->backend().read_parameters(pa);
  (*b)->backend().read_parameters(pb);
  CHECK(pa == pb);
}

TEST_CASE("metrics lines are JSON, appended, and a torn last line is cut off") {
  TempDir dir("gossip-ckpt");
  const fs::path file = dir.path() / "m" / "metrics.jsonl";
  {
    auto log = peer::MetricsLog::open(file);
    REQUIRE(log.is_ok());
    REQUIRE(log->write_start(0, 0, std::nullopt).is_ok());
    peer::LossMeter meter;
    meter.add(1.0, 64, 0.5);
    meter.add(3.0, 64, 0.5);
    const auto r = meter.take();
    CHECK(r.mean_loss == 2.0);
    CHECK(r.samples_per_s == 128.0);
    CHECK(meter.steps() == 0);
    REQUIRE(log->write(peer::TrainRecord{100, 1, r.mean_loss, 0.01, r.samples_per_s, std::nullopt})
                .is_ok());
    peer::NetworkCounters net;
    net.exchanges_ok = 5;
    net.members_alive = 3;
    REQUIRE(log->write(peer::TrainRecord{200, 2, std::nan(""), 0.01, 1.0, net}).is_ok());
    REQUIRE(log->write(peer::EvalRecord{200, 2, 0.4, 0.85, 2000}).is_ok());
  }
  // A crash in the middle of a line:
  { std::ofstream(file, std::ios::app) << R"({"type":"train","st)"; }
  std::string err = capture_stderr([&] {
    auto log = peer::MetricsLog::open(file);
    REQUIRE(log.is_ok());
    REQUIRE(log->write_start(200, 2, fs::path("/x/ckpt-000000200.bin")).is_ok());
  });
  CHECK(err.find("partial last line") != std::string::npos);
  std::ifstream in(file);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].at("type") == "start");
  CHECK(lines[0].at("resumed_from").is_null());
  CHECK(lines[1].at("type") == "train");
  CHECK(lines[1].at("loss") == 2.0);
  CHECK(lines[1].at("step") == 100);
  CHECK_FALSE(lines[1].contains("exchanges_ok"));
  CHECK(lines[2].at("loss").is_null());  // NaN written as null, the line stays JSON
  CHECK(lines[2].at("exchanges_ok") == 5);
  CHECK(lines[2].at("members_alive") == 3);
  CHECK_FALSE(lines[2].contains("last_delta_norm"));
  CHECK(lines[3].at("type") == "eval");
  CHECK(lines[3].at("test_accuracy") == 0.85);
  CHECK(lines[4].at("resumed_from") == "/x/ckpt-000000200.bin");
  CHECK(lines[4].at("time").get<double>() > 1.6e9);
}

TEST_CASE("the progress line reads at a glance") {
  peer::ProgressInfo p;
  p.step = 1200;
  p.total_steps = 9380;
  p.epoch = 2;
  p.total_epochs = 10;
  p.loss = 0.43214;
  p.lr = 0.0195;
  p.samples_per_s = 5400.4;
  p.test_accuracy = 0.841;
  p.checkpoint_step = 1000;
  CHECK(peer::format_progress(p) ==
        "step 1200/9380 (13%)  epoch 2/10  loss 0.4321  lr 0.0195  5400 samples/s  "
        "test acc 84.10%  ckpt @1000");
  p.network = peer::NetworkCounters{120, 3, 0, 12'300'000, 12'100'000, 4, 0.5, 0.0};
  CHECK(peer::format_progress(p).ends_with(
      "members 4  exchanges 120 ok / 3 busy / 0 failed  in 12.3 MB  out 12.1 MB"));
  peer::ProgressLine never(0);
  CHECK_FALSE(never.due());
}
