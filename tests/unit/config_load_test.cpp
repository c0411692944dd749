// Config loading: defaults, relative paths, the to_json round trip, loading
// from files (real files in a temp folder), the dataset check, and every
// example config shipped in configs/.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "gossip/config/config.hpp"
#include "temp_dir.hpp"

using namespace gossip::config;
using config_test::base;
using config_test::Json;
using config_test::parse_ok;
using gossip::averaging::WeightMode;
using gossip::averaging::WireFormat;
namespace fs = std::filesystem;

using gossip::test::TempDir;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

// to_json -> parse (from another folder) -> to_json gives the same JSON.
void check_round_trip(const Json& j) {
  const Config c = parse_ok(j);
  const Json once = to_json(c);
  const Json twice = to_json(parse_ok(once, "/elsewhere"));
  CHECK_MESSAGE(once == twice, (once.dump(2) + "\n---\n" + twice.dump(2)));
}

}  // namespace

TEST_CASE("absent sections and keys take the documented defaults") {
  const Config c = parse_ok(base());
  CHECK(c.peer.network);
  CHECK(c.peer.listen.to_string() == "127.0.0.1:7400");
  CHECK(c.peer.advertise.host.empty());
  CHECK(c.peer.bootstrap.empty());
  CHECK(c.peer.data_dir == "/srv/cfg/gossip-data");
  CHECK(c.peer.identity_key == "/srv/cfg/gossip-data/identity.key");
  CHECK(c.peer.swarm_key == "/srv/cfg/gossip-data/swarm.key");
  CHECK(c.model.activation == gossip::train::Activation::kRelu);
  CHECK(c.model.loss == gossip::train::LossKind::kSoftmaxCrossEntropy);
  CHECK(c.model.seed == 1);
  CHECK(c.optimizer.kind == gossip::train::OptimizerKind::kSgd);
  CHECK(c.optimizer.lr == 0.02);
  CHECK(c.optimizer.momentum == 0.9);
  CHECK(c.optimizer.schedule.kind == gossip::train::ScheduleKind::kConstant);
  CHECK(c.data.dataset.dir == "/usr/share/datasets/fashion-mnist");
  CHECK(c.data.dataset.normalize == "none");
  CHECK(c.data.shard.spec.type == "random");
  CHECK(c.data.shard.num_shards == 1);
  CHECK(c.data.shard.index == 0);
  CHECK(c.data.batch == 64);
  CHECK_FALSE(c.data.regression());
  CHECK(c.training.device == "auto");
  CHECK(c.training.epochs == 0);
  CHECK(c.training.steps == 0);
  CHECK(c.training.eval.every_epochs == 1);
  CHECK(c.gossip.interval_steps == 10);
  CHECK(c.gossip.interval_ms == 0);
  CHECK(c.gossip.wire == WireFormat::kFp32);
  CHECK(c.gossip.weight == WeightMode::kSamples);
  CHECK(c.membership.probe_interval_ms == 1000);
  CHECK(c.membership.join_timeout_ms == 30000);
  CHECK(c.net.frames.max_control_body == 65536);
  CHECK(c.net.cipher == gossip::crypto::Cipher::kChaChaPoly);
  CHECK(c.checkpoint.dir == c.peer.data_dir);
  CHECK(c.metrics.file == "/srv/cfg/gossip-data/metrics.jsonl");

  const auto o = backend_options(c);
  CHECK(o.device == "auto");
  CHECK(o.cpu_threads >= 1);
  CHECK(o.max_batch == 1000);
}

TEST_CASE("interval_ms alone replaces the default interval_steps; csv normalizes per feature") {
  Json j = base();
  j["gossip"] = {{"interval_ms", 250}};
  j["data"]["dataset"] = {{"type", "csv"}, {"train_csv", "t.csv"}, {"label_column", "y"}};
  const Config c = parse_ok(j);
  CHECK(c.gossip.interval_steps == 0);
  CHECK(c.gossip.interval_ms == 250);
  CHECK(c.data.dataset.normalize == "per_feature");
  CHECK(c.data.dataset.test_fraction == 0.1);
}

TEST_CASE("relative paths resolve against the config folder; absolute ones stay") {
  Json j = base();
  j["peer"] = {{"data_dir", "../runs/p1"}, {"swarm_key", "/keys/swarm.key"}};
  j["data"]["dataset"] = {{"type", "idx"},
                          {"dir", "mnist"},
                          {"train_images", "train-images.gz"},
                          {"train_labels", "/abs/train-labels.gz"}};
  j["checkpoint"] = {{"dir", "ckpt"}};
  const Config c = parse_ok(j, "/srv/cfg");
  CHECK(c.peer.data_dir == "/srv/runs/p1");
  CHECK(c.peer.swarm_key == "/keys/swarm.key");
  CHECK(c.peer.identity_key == "/srv/runs/p1/identity.key");
  CHECK(c.data.dataset.train_images == "/srv/cfg/mnist/train-images.gz");
  CHECK(c.data.dataset.train_labels == "/abs/train-labels.gz");
  CHECK(c.data.dataset.test_images.empty());
  CHECK(c.checkpoint.dir == "/srv/cfg/ckpt");
  CHECK(c.metrics.file == "/srv/runs/p1/metrics.jsonl");

  // A relative base folder is taken from the working directory.
  const Config r = parse_ok(base(), "some/dir");
  CHECK(r.peer.data_dir == (fs::current_path() / "some/dir/gossip-data").lexically_normal());
}

TEST_CASE("move_data_dir moves the paths that defaulted into the folder, not the others") {
  Json j = base();
  j["peer"] = {{"data_dir", "../runs/p1"}, {"swarm_key", "/keys/swarm.key"}};
  j["checkpoint"] = {{"dir", "ckpt"}};
  Config c = parse_ok(j, "/srv/cfg");
  move_data_dir(c, "/data/p2/");
  CHECK(c.peer.data_dir == "/data/p2/");
  CHECK(c.peer.identity_key == "/data/p2/identity.key");
  CHECK(c.metrics.file == "/data/p2/metrics.jsonl");
  CHECK(c.peer.swarm_key == "/keys/swarm.key");  // set elsewhere: stays
  CHECK(c.checkpoint.dir == "/srv/cfg/ckpt");

  Config d = parse_ok(base(), "/srv/cfg");
  move_data_dir(d, "rel/dir");  // made absolute against the working directory
  const fs::path moved = (fs::current_path() / "rel/dir").lexically_normal();
  CHECK(d.peer.data_dir == moved);
  CHECK(d.checkpoint.dir == moved);
  CHECK(d.peer.swarm_key == moved / "swarm.key");
}

TEST_CASE("to_json writes every section and round-trips through the parser") {
  const Json j = to_json(parse_ok(base()));
  for (const char* s : {"peer", "model", "optimizer", "data", "training", "gossip", "membership",
                        "net", "checkpoint", "metrics"}) {
    CHECK_MESSAGE(j.contains(s), s);
  }
  CHECK(j["training"]["epochs"].is_null());
  CHECK(j["optimizer"]["momentum"] == 0.9);
  CHECK_FALSE(j["optimizer"].contains("beta1"));

  check_round_trip(base());

  Json full = base();
  full["peer"] = {{"listen", "0.0.0.0:0"},
                  {"advertise", "[fd00::5]:7400"},
                  {"bootstrap", {"10.0.0.1:7400", "node-2:7400"}},
                  {"data_dir", "/var/lib/gossip"}};
  full["model"] = {{"layers", {784, 64, 10}}, {"activation", "gelu"}, {"seed", 99}};
  full["optimizer"] = {{"type", "adamw"},
                       {"lr", 0.001},
                       {"weight_decay", 0.01},
                       {"beta2", 0.99},
                       {"schedule", {{"type", "cosine"}, {"warmup_steps", 100}, {"min_lr", 1e-5}}}};
  full["data"]["shard"] = {{"type", "label_skew"}, {"alpha", 0.1}, {"num_shards", 8}, {"index", 7}};
  full["data"]["normalize"] = "global";
  full["data"]["mean"] = {0.2860};
  full["data"]["stddev"] = {0.3530};
  full["training"] = {{"steps", 5000},
                      {"device", "cuda"},
                      {"allow_tf32", true},
                      {"eval", {{"every_steps", 500}, {"max_rows", 2000}}}};
  full["gossip"] = {{"interval_ms", 200}, {"wire", "bf16"}, {"weight", 2.5}};
  full["net"] = {{"max_sessions", 16}, {"max_pending_handshakes", 8}, {"cipher", "aesgcm"}};
  check_round_trip(full);

  Json step = base();
  step["optimizer"]["schedule"] = {{"type", "step"}, {"step_every", 1000}, {"gamma", 0.5}};
  step["gossip"]["weight"] = "uniform";
  step["peer"]["network"] = false;
  check_round_trip(step);

  Json csv = Json::parse(R"({"model": {"layers": [3, 8, 2], "loss": "mse"},
    "data": {"dataset": {"type": "csv", "train_csv": "a.csv", "test_csv": "b.csv",
                         "target_columns": ["y1", "y2"], "feature_columns": ["a", "b", "c"],
                         "delimiter": ";"}, "drop_last": true}})");
  check_round_trip(csv);

  Json synth =
      Json::parse(R"({"model": {"layers": [10, 20, 1], "loss": "mse", "activation": "tanh"},
    "data": {"dataset": {"type": "synthetic_regression", "train_samples": 500, "noise_std": 0.1,
                         "seed": 3}, "batch": 32}, "training": {"epochs": 2}})");
  check_round_trip(synth);
  const Config s = parse_ok(synth);
  CHECK(s.data.regression());
  CHECK(s.data.dataset.synthetic.train_samples == 500);
  CHECK(s.data.dataset.synthetic.seed == 3);

  Json idx = base();
  idx["data"]["dataset"] = {{"type", "idx"},          {"train_images", "a.gz"},
                            {"train_labels", "b.gz"}, {"test_images", "c.gz"},
                            {"test_labels", "d.gz"},  {"classes", 10}};
  check_round_trip(idx);
}

TEST_CASE("load_config reads a file, resolves against its folder, and prefixes errors") {
  TempDir tmp("gossip-config");
  fs::create_directories(tmp.path() / "configs");
  const fs::path file = tmp.path() / "configs" / "peer.json";
  write_file(file, R"({"peer": {"data_dir": "../runs/a"},
    "model": {"layers": [784, 10]}, "data": {"dataset": {"type": "fashion_mnist"}}})");
  auto c = load_config(file);
  REQUIRE_MESSAGE(c.is_ok(), c.status().message());
  CHECK(c->peer.data_dir == (tmp.path() / "runs" / "a").lexically_normal());

  write_file(file,
             R"({"model": {"layers": [784, 10]}, "data": {"dataset": {"type": "fashion_mnist"},
    "batch": "64", "shard": {"indx": 1}}})");
  c = load_config(file);
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.status().message() ==
        file.string() + ": data.shard.indx: unknown key (did you mean data.shard.index?)\n" +
            file.string() + ": data.batch: expected a positive integer, got \"64\"");

  write_file(file, "{\n  \"model\": {\"layers\": [784, 10]\n}\n");
  c = load_config(file);
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.status().message().rfind(file.string() + ": line 4, column 1: invalid JSON: ", 0) == 0);

  c = load_config(tmp.path() / "missing.json");
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.status().code() == gossip::core::Code::kNotFound);
  CHECK(c.status().message() ==
        (tmp.path() / "missing.json").string() + ": cannot open config file (no such file)");
}

TEST_CASE("validate_against_dataset names model.layers") {
  const Config c = parse_ok(base());
  CHECK(validate_against_dataset(c, 784, 10).is_ok());
  CHECK(validate_against_dataset(c, 780, 10).message() ==
        "model.layers: the first entry must equal the dataset's feature count (780 in "
        "fashion_mnist), got 784");
  CHECK(validate_against_dataset(c, 784, 12).message() ==
        "model.layers: the last entry must equal the dataset's class count (12 in "
        "fashion_mnist), got 10");
}

TEST_CASE("optimizer.grad_clip is accepted for the MLP too, and a negative one is refused") {
  Json j = base();
  j["optimizer"] = {{"type", "adamw"}, {"lr", 0.001}, {"grad_clip", 0.5}};
  const Config c = parse_ok(j);
  CHECK(c.optimizer.grad_clip == 0.5);
  CHECK_FALSE(c.model.is_gpt());
  j["optimizer"]["grad_clip"] = -1.0;
  CHECK(config_test::error_of(j).find("optimizer.grad_clip") != std::string::npos);
}

// Every file in configs/ is a peer config and must load, except those whose
// names start with "bench-" (gossip-bench's own format, checked by the bench)
// or "sim-" (gossip-sim's format, loaded by config_sim).
TEST_CASE("every example config in configs/ loads") {
  const char* root = std::getenv("GOSSIP_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "GOSSIP_SOURCE_ROOT is not set (tests/meson.build sets it)");
  const fs::path dir = fs::path(root) / "configs";
  std::vector<std::string> loaded;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".json") continue;
    if (name.rfind("bench-", 0) == 0 || name.rfind("sim-", 0) == 0) continue;
    auto c = load_config(entry.path());
    CHECK_MESSAGE(c.is_ok(), c.status().message());
    if (c) {
      // Their own to_json output parses back to the same config too.
      auto again = parse_config(to_json(*c).dump(), "/");
      CHECK_MESSAGE(again.is_ok(), again.status().message());
      if (again) CHECK(to_json(*again) == to_json(*c));
    }
    loaded.push_back(name);
  }
  CHECK(loaded.size() >= 3);

  auto single = load_config(dir / "single.json");
  REQUIRE(single.is_ok());
  CHECK(single->model.layers == std::vector<int>{784, 256, 128, 10});
  CHECK_FALSE(single->peer.network);
  CHECK(single->training.epochs == 20);
  CHECK(single->optimizer.lr == 0.02);
  CHECK(validate_against_dataset(*single, 784, 10).is_ok());

  auto first = load_config(dir / "swarm-first.json");
  auto join = load_config(dir / "swarm-join.json");
  REQUIRE(first.is_ok());
  REQUIRE(join.is_ok());
  CHECK(first->peer.listen.to_string() == "127.0.0.1:7400");
  CHECK(first->peer.bootstrap.empty());
  CHECK(join->peer.listen.to_string() == "127.0.0.1:7401");
  REQUIRE(join->peer.bootstrap.size() == 1);
  CHECK(join->peer.bootstrap[0] == first->peer.listen);
  CHECK(first->peer.swarm_key == join->peer.swarm_key);
  CHECK(first->peer.swarm_key == (fs::path(root) / "runs/swarm/swarm.key").lexically_normal());
  CHECK(first->peer.identity_key != join->peer.identity_key);
  CHECK(first->data.shard.index == 0);
  CHECK(join->data.shard.index == 1);
  CHECK(first->data.shard.num_shards == 4);
}
