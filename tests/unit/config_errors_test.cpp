// Config errors: every class of bad config is rejected with a message that
// names the full key path and says what is wrong (exact texts, since users
// read them and other modules' docs quote them).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "config_test_support.hpp"
#include "gossip/averaging/engine.hpp"
#include "gossip/config/config.hpp"

using config_test::base;
using config_test::error_of;
using config_test::Json;
using config_test::parse_ok;
using gossip::config::parse_config;
using gossip::config::to_json;

namespace {

std::string error_of_text(const std::string& text) {
  auto c = parse_config(text, "/tmp/gossip-config-test");
  return c ? std::string() : c.status().message();
}

}  // namespace

TEST_CASE("the base config parses") {
  CHECK(error_of(base()) == "");
}

TEST_CASE("unknown keys at any depth name the full path and the closest known key") {
  Json j = base();
  j["optimizer"]["momentun"] = 0.9;
  CHECK(error_of(j) == "optimizer.momentun: unknown key (did you mean optimizer.momentum?)");

  j = base();
  j["optimiser"] = Json::object();
  CHECK(error_of(j) == "optimiser: unknown key (did you mean optimizer?)");

  j = base();
  j["data"]["shard"]["indx"] = 1;
  CHECK(error_of(j) == "data.shard.indx: unknown key (did you mean data.shard.index?)");

  j = base();
  j["optimizer"]["schedule"]["gama"] = 0.5;
  CHECK(error_of(j) ==
        "optimizer.schedule.gama: unknown key (did you mean optimizer.schedule.gamma?)");

  // Nothing close: list what the section accepts.
  j = base();
  j["net"]["colour"] = "red";
  CHECK(
      error_of(j) ==
      "net.colour: unknown key (known keys in net: cipher, handshake_timeout_ms, idle_timeout_ms, "
      "keepalive_ms, max_control_frame, max_pending_handshakes, max_pending_per_address, "
      "max_sessions, port_mapping, punch, relay or unused_timeout_ms)");

  // The NAT traversal objects name their keys the same way.
  j = base();
  j["net"]["relay"]["max_bytes_per_s"] = 10;
  CHECK(error_of(j).rfind("net.relay.max_bytes_per_s: ", 0) == 0);
  j = base();
  j["net"]["punch"]["delay_ms"] = -1;
  CHECK(error_of(j).rfind("net.punch.delay_ms: ", 0) == 0);
  j = base();
  j["net"]["relay"]["reserv"] = true;
  CHECK(error_of(j) == "net.relay.reserv: unknown key (did you mean net.relay.reserve?)");
}

TEST_CASE("net.keepalive_ms above a third of the idle timeout is refused") {
  Json j = base();
  j["net"]["idle_timeout_ms"] = 9000;
  j["net"]["keepalive_ms"] = 3001;
  CHECK(error_of(j) ==
        "net.keepalive_ms: must be at most a third of net.idle_timeout_ms (3000), "
        "got 3001");
  j["net"]["keepalive_ms"] = 3000;
  j["net"]["port_mapping"] = "on";
  CHECK(error_of(j) == "net.port_mapping: expected true or false, got \"on\"");
}

TEST_CASE("wrong JSON types name the key and show the value given") {
  Json j = base();
  j["data"]["batch"] = "64";
  CHECK(error_of(j) == "data.batch: expected a positive integer, got \"64\"");

  j = base();
  j["data"]["batch"] = 6.5;
  CHECK(error_of(j) == "data.batch: expected a positive integer, got 6.5");

  j = base();
  j["peer"]["network"] = "yes";
  CHECK(error_of(j) == "peer.network: expected true or false, got \"yes\"");

  j = base();
  j["gossip"] = 5;
  CHECK(error_of(j) == "gossip: expected an object, got 5");

  j = base();
  j["optimizer"]["type"] = "sgdd";
  CHECK(error_of(j) ==
        "optimizer.type: expected sgd, adam or adamw, got \"sgdd\" (did you mean sgd?)");

  j = base();
  j["training"]["device"] = "gpu";
  CHECK(error_of(j) ==
        "training.device: expected auto, cpu or cuda, got \"gpu\" (did you mean cuda?)");
  j["training"]["device"] = "cdua";
  CHECK(error_of(j) ==
        "training.device: expected auto, cpu or cuda, got \"cdua\" (did you mean cuda?)");
}

TEST_CASE("impossible values are named") {
  Json j = base();
  j["data"]["batch"] = -3;
  CHECK(error_of(j) == "data.batch: expected a positive integer, got -3");

  j = base();
  j["optimizer"]["lr"] = 0;
  CHECK(error_of(j) == "optimizer.lr: expected a number > 0, got 0");

  j = base();
  j["optimizer"]["momentum"] = 1.5;
  CHECK(error_of(j) == "optimizer.momentum: expected a number in [0, 1), got 1.5");

  j = base();
  j["model"]["layers"] = {784};
  CHECK(error_of(j) ==
        "model.layers: expected an array of at least 2 layer sizes [inputs, ..., outputs], got "
        "[784]");

  j = base();
  j["model"]["layers"] = {784, 0, 10};
  CHECK(error_of(j) ==
        "model.layers[1]: expected a positive integer layer size (at most 16777216), got 0");

  j = base();
  j["model"]["layers"] = {784, 1};
  CHECK(error_of(j) ==
        "model.layers: softmax_cross_entropy needs at least 2 outputs (the last entry), got 1");

  j = base();
  j["gossip"]["weight"] = -1;
  CHECK(error_of(j) == "gossip.weight: expected \"samples\", \"uniform\" or a number > 0, got -1");

  j = base();
  j["data"]["shard"] = {{"type", "label_skew"}, {"alpha", 0}};
  CHECK(error_of(j) == "data.shard.alpha: expected a number > 0, got 0");

  j = base();
  j["data"]["shard"] = {{"num_shards", 4}, {"index", 4}};
  CHECK(error_of(j) == "data.shard.index: must be below data.shard.num_shards (4), got 4");

  j = base();
  j["training"]["epochs"] = 3;
  j["training"]["steps"] = 1000;
  CHECK(error_of(j) == "training.steps: set training.epochs or training.steps, not both");

  j = base();
  j["gossip"]["interval_ms"] = 500;
  j["gossip"]["interval_steps"] = 10;
  CHECK(error_of(j) ==
        "gossip.interval_ms: set gossip.interval_steps or gossip.interval_ms, not both");

  // gossip.mode and gossip.outer.
  j = base();
  j["gossip"] = {{"mode", "outr"}};
  CHECK(error_of(j) == "gossip.mode: expected params or outer, got \"outr\" (did you mean outer?)");
  j["gossip"] = {{"mode", "outer"}, {"interval_steps", 20}};
  CHECK(error_of(j) ==
        "gossip.interval_steps: gossip.mode \"outer\" exchanges every "
        "gossip.outer.steps steps: remove it");
  j["gossip"] = {{"outer", {{"steps", 400}}}};
  CHECK(error_of(j) == "gossip.outer: not used unless gossip.mode is \"outer\"");
  j["gossip"] = {{"mode", "outer"}, {"outer", {{"momentum", 1.0}}}};
  CHECK(error_of(j) == "gossip.outer.momentum: expected a number in [0, 1), got 1.0");
  j["gossip"] = {{"mode", "outer"}, {"outer", {{"lr", 0}}}};
  CHECK(error_of(j) == "gossip.outer.lr: expected a number in (0, 10], got 0");
  j["gossip"] = {{"mode", "outer"}, {"outer", {{"steps", 400}, {"lr", 1.0}, {"momentum", 0}}}};
  {
    auto c = gossip::config::parse_config(j.dump(), "/tmp/gossip-config-test");
    REQUIRE(c.is_ok());
    CHECK(c->gossip.mode == gossip::averaging::GossipMode::kOuter);
    CHECK(c->gossip.outer.steps == 400);
    const auto o = gossip::averaging::options_from(c->gossip, 100);
    CHECK(o.interval_steps == 400);
    CHECK(o.outer.lr == 1.0);
    auto again = gossip::config::parse_config(to_json(*c).dump(), "/tmp/gossip-config-test");
    REQUIRE(again.is_ok());
    CHECK(again->gossip.outer.steps == 400);
  }

  j = base();
  j["membership"]["probe_timeout_ms"] = 1000;
  CHECK(error_of(j) ==
        "membership.probe_timeout_ms: must be below membership.probe_interval_ms (1000), got 1000");

  j = base();
  j["optimizer"]["momentum"] = 0;
  j["optimizer"]["nesterov"] = true;
  CHECK(error_of(j) == "optimizer.nesterov: needs optimizer.momentum > 0");

  // train's own OptimizerSpec::validate() backs the readers up, with its own key paths.
  j = base();
  j["optimizer"]["schedule"] = {{"type", "cosine"}, {"warmup_steps", 100}, {"total_steps", 50}};
  CHECK(error_of(j) == "optimizer.schedule.total_steps: must be > warmup_steps (100), got 50");

  j = base();
  j["optimizer"]["schedule"] = {{"type", "cosine"}, {"total_steps", 500}, {"min_lr", 0.5}};
  CHECK(error_of(j) == "optimizer.schedule.min_lr: must not exceed optimizer.lr (0.02), got 0.5");

  j = base();
  j["net"]["max_control_frame"] = 100;
  CHECK(error_of(j) == "net.max_control_frame: expected an integer in [1024, 16777216], got 100");

  j = base();
  j["membership"]["join_timeout_ms"] = 0;
  CHECK(error_of(j) == "membership.join_timeout_ms: expected a positive integer, got 0");

  j = base();
  j["training"]["cpu_threads"] = 100000;
  CHECK(error_of(j) == "training.cpu_threads: expected an integer in [0, 1024], got 100000");

  j = base();
  j["training"]["log_every_s"] = 5;
  CHECK(error_of(j) ==
        "training.log_every_s: not used any more: the periodic training line is "
        "metrics.progress_every_s");

  j = base();
  j["net"]["cipher"] = "aes";
  const std::string cipher_error = error_of(j);
  CAPTURE(cipher_error);
  CHECK(cipher_error.rfind("net.cipher: ", 0) == 0);
  CHECK(cipher_error.find("\"aes\"") != std::string::npos);
  CHECK(cipher_error.find("aesgcm") != std::string::npos);
}

TEST_CASE("keys that belong to another type are rejected, not ignored") {
  Json j = base();
  j["optimizer"] = {{"type", "adam"}, {"momentum", 0.9}};
  CHECK(error_of(j) == "optimizer.momentum: not used by optimizer type adam");

  j = base();
  j["optimizer"]["schedule"] = {{"type", "constant"}, {"gamma", 0.5}};
  CHECK(error_of(j) == "optimizer.schedule.gamma: not used by schedule type constant");

  j = base();
  j["data"]["shard"]["alpha"] = 0.3;
  CHECK(error_of(j) == "data.shard.alpha: not used by shard type random");

  j = base();
  j["data"]["dataset"]["train_csv"] = "x.csv";
  CHECK(error_of(j) == "data.dataset.train_csv: not used by dataset type fashion_mnist");
}

TEST_CASE("required sections and keys") {
  CHECK(error_of(Json::parse(R"({"data": {"dataset": {"type": "fashion_mnist"}}})")) ==
        "model: required section missing (at least \"layers\": [inputs, ..., outputs])");
  CHECK(error_of(Json::parse(R"({"model": {"layers": [784, 10]}})")) ==
        "data: required section missing (at least \"dataset\": {\"type\": ...})");
  Json j = base();
  j["data"]["dataset"] = {{"type", "csv"}, {"label_column", "y"}};
  CHECK(error_of(j) == "data.dataset.train_csv: required for dataset type csv");
  j = base();
  j["optimizer"]["schedule"] = {{"type", "step"}};
  CHECK(error_of(j) ==
        "optimizer.schedule.step_every: required for schedule type step (updates between decays)");
}

TEST_CASE("checks across sections") {
  Json j = base();
  j["optimizer"]["schedule"] = {{"type", "cosine"}};
  CHECK(error_of(j) ==
        "optimizer.schedule.total_steps: required for schedule type cosine when training runs "
        "until stopped (no training.epochs or training.steps to take it from)");
  j["training"]["epochs"] = 5;
  CHECK(error_of(j) == "");

  j = Json::parse(R"({"model": {"layers": [10, 20, 1]},
                      "data": {"dataset": {"type": "synthetic_regression"}}})");
  CHECK(error_of(j) ==
        "model.loss: softmax_cross_entropy needs a classification dataset; data.dataset "
        "(synthetic_regression) is a regression task (use \"mse\")");
  j["model"]["loss"] = "mse";
  CHECK(error_of(j) == "");
  j = base();
  j["model"]["loss"] = "mse";
  CHECK(error_of(j) ==
        "model.loss: mse needs a regression dataset; data.dataset (fashion_mnist) has class "
        "labels (use \"softmax_cross_entropy\")");

  j = base();
  j["peer"]["listen"] = "0.0.0.0:7400";
  CHECK(error_of(j) ==
        "peer.advertise: required when peer.listen (0.0.0.0:7400) binds all interfaces: the "
        "address other peers dial to reach this one");
  j["peer"]["advertise"] = "10.0.0.5:7400";
  CHECK(error_of(j) == "");
}

TEST_CASE("addresses") {
  Json j = base();
  j["peer"]["bootstrap"] = {"127.0.0.1:7400", "127.0.0.1:99999"};
  CHECK(error_of(j) == "peer.bootstrap[1]: bad port in \"127.0.0.1:99999\" (expected 1..65535)");
  j["peer"]["bootstrap"] = {"localhost"};
  CHECK(error_of(j) == "peer.bootstrap[0]: expected \"host:port\", got \"localhost\" (no port)");

  auto e = gossip::core::parse_endpoint("[::1]:7400");
  REQUIRE(e.is_ok());
  CHECK(e->host == "::1");
  CHECK(e->port == 7400);
  CHECK(e->to_string() == "[::1]:7400");
  CHECK_FALSE(gossip::core::parse_endpoint("127.0.0.1:0").is_ok());
  CHECK(gossip::core::parse_endpoint("127.0.0.1:0", true).is_ok());
  CHECK_FALSE(gossip::core::parse_endpoint("::1:7400").is_ok());
}

TEST_CASE("all problems are reported, one per line, in reading order") {
  Json j = base();
  j["data"]["batch"] = 0;
  j["optimizer"]["lr"] = -1;
  j["bogus"] = true;
  const std::string m = error_of(j);
  CHECK(m ==
        "data.batch: expected a positive integer, got 0\n"
        "optimizer.lr: expected a number > 0, got -1\n"
        "bogus: unknown key (known keys at the top level: checkpoint, data, gossip, membership, "
        "metrics, model, net, optimizer, peer, sim or training)");
}

TEST_CASE("JSON syntax errors give line and column; duplicate keys are errors") {
  const std::string text = "{\n  \"model\": {\"layers\": [784, 10]},\n  \"data\": {,}\n}\n";
  const std::string m = error_of_text(text);
  CHECK(m.rfind("line 3, column 12: invalid JSON: ", 0) == 0);

  CHECK(error_of_text("[1, 2]") == "expected a JSON object at the top level, got [1,2]");
  CHECK(error_of_text("").rfind("line 1, column 1: invalid JSON: ", 0) == 0);

  CHECK(error_of_text(R"({"model": {"layers": [784, 10], "layers": [784, 11]},
                          "data": {"dataset": {"type": "fashion_mnist"}}})") ==
        "model.layers: duplicate key (each key may appear once per object)");

  // Comments are allowed.
  CHECK(error_of_text("// a peer\n{\"model\": {\"layers\": [784, 10]}, /* data */ "
                      "\"data\": {\"dataset\": {\"type\": \"fashion_mnist\"}}}") == "");
}

TEST_CASE("a folder given as the config file is named as such") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("gossip-config-dir-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto c = gossip::config::load_config(dir);
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.status().code() == gossip::core::Code::kInvalidArgument);
  CHECK(c.status().message() == dir.string() + " is a directory, not a config file");
  std::filesystem::remove_all(dir);
}

TEST_CASE("metrics.http: host:port, or a port alone on loopback; bad values name the key") {
  auto with_http = [](Json value) {
    Json j = base();
    j["metrics"]["http"] = std::move(value);
    return j;
  };
  const auto off = parse_ok(base());
  CHECK_FALSE(off.metrics.http.enabled());
  CHECK(to_json(off)["metrics"]["http"].is_null());

  for (const char* port_only : {"9400", ":9400"}) {
    const auto c = parse_ok(with_http(port_only));
    CHECK(c.metrics.http.enabled());
    CHECK(c.metrics.http.endpoint == gossip::core::Endpoint{"127.0.0.1", 9400});
    CHECK_FALSE(c.metrics.http.host_given);
    CHECK(to_json(c)["metrics"]["http"] == ":9400");
    CHECK(parse_ok(to_json(c)).metrics.http == c.metrics.http);
  }
  const auto all = parse_ok(with_http("0.0.0.0:9400"));
  CHECK(all.metrics.http.host_given);
  CHECK(all.metrics.http.endpoint == gossip::core::Endpoint{"0.0.0.0", 9400});
  CHECK(parse_ok(with_http("[::1]:0")).metrics.http.endpoint == gossip::core::Endpoint{"::1", 0});

  CHECK(error_of(with_http(9400)) ==
        "metrics.http: expected a \"host:port\", \":port\" or \"port\" string, got 9400");
  CHECK(error_of(with_http("abc")) ==
        "metrics.http: expected \"host:port\", \":port\" or \"port\", got \"abc\"");
  CHECK(error_of(with_http("70000")) ==
        "metrics.http: expected \"host:port\", \":port\" or \"port\", got \"70000\"");
  CHECK(error_of(with_http("localhost:x")) ==
        "metrics.http: bad port in \"localhost:x\" (expected 0..65535)");

  Json solo = with_http(":9400");
  solo["peer"]["network"] = false;
  CHECK(error_of(solo) ==
        "metrics.http: needs peer.network true (a peer training alone runs no network threads)");
  Json sim = with_http(":9400");
  sim["sim"] = Json::object();
  CHECK(error_of(sim) ==
        "metrics.http: gossip-sim serves one /metrics for all its peers: set sim.metrics_http "
        "instead");
}

TEST_CASE("gossip.wire randk is refused in outer mode, naming the codecs that work") {
  Json j = base();
  j["gossip"] = {{"mode", "outer"}, {"wire", "randk"}};
  CHECK(error_of(j) ==
        "gossip.wire: \"randk\" does not work with gossip.mode \"outer\" (the replicas drift "
        "apart and training diverges): use \"int8\", \"bf16\" or \"fp32\"");
  j["gossip"]["wire"] = "int8";
  CHECK(error_of(j).empty());
}
