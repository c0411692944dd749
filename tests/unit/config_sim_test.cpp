// The "sim" section: a full event script parses to the expected structs and
// round-trips through to_json; configs without one print exactly as before;
// every class of bad script is rejected up front with a message that names
// the event and the reason (exact texts: users read them); check_sim_script
// catches what a later --peers override breaks; every shipped sim-*.json
// loads and passes gossip-sim's own checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "gossip/config/config.hpp"

using namespace gossip::config;
using namespace gossip::sim;
using config_test::base;
using config_test::error_of;
using config_test::Json;
using config_test::parse_ok;

namespace {

// The .json files in configs/, sorted; fails when the folder is missing.
std::vector<std::filesystem::path> shipped_configs() {
  const char* root = std::getenv("GOSSIP_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "GOSSIP_SOURCE_ROOT is not set (tests/meson.build sets it)");
  const std::filesystem::path dir = std::filesystem::path(root) / "configs";
  REQUIRE_MESSAGE(std::filesystem::is_directory(dir), dir.string() << " is not a folder");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The script from the section's documentation.
Json full_sim() {
  return Json::parse(R"({
    "peers": 8, "average_only": false, "duration_s": 0, "sample_every_s": 2, "eval_rows": 2000,
    "step_slots": 3,
    "events": [
      {"at_s": 30, "kill": [1, 2]},
      {"at_step": 400, "leave": [3]},
      {"at_s": 40, "start": 4},
      {"at_s": 50, "partition": [[0, 4, 5], [6, 7, 8]]},
      {"at_s": 70, "heal": true},
      {"at_s": 80, "slow_link": {"between": [[0, 4], [9, 10]], "latency_ms": 50,
                                  "bandwidth_mbit_s": 100}},
      {"at_s": 90, "drop": 0.2},
      {"at_s": 100, "slow_link": {"all": true, "latency_ms": 0, "bandwidth_mbit_s": 20}}
    ],
    "metrics_http": ":9400"})");
}

Json with_sim(const Json& sim) {
  Json j = base();
  j["sim"] = sim;
  return j;
}

Json with_events(const Json& events) {
  Json sim = Json::object();
  sim["events"] = events;
  return with_sim(sim);
}

std::string error_of_events(const char* events_text) {
  return error_of(with_events(Json::parse(events_text)));
}

}  // namespace

TEST_CASE("a full event script parses to the expected structs") {
  const Config c = parse_ok(with_sim(full_sim()));
  const SimConfig& s = c.sim;
  CHECK(s.present);
  CHECK(s.peers == 8);
  CHECK_FALSE(s.average_only);
  CHECK(s.duration_s == 0);
  CHECK(s.sample_every_s == 2);
  CHECK(s.eval_rows == 2000);
  CHECK(s.step_slots == 3);
  REQUIRE(s.events.size() == 8);

  const auto& kill = s.events[0];
  CHECK(kill.kind == SimEventKind::kKill);
  CHECK(kill.at_s == 30);
  CHECK(kill.at_step == -1);
  CHECK(kill.peers == std::vector<int>{1, 2});

  const auto& leave = s.events[1];
  CHECK(leave.kind == SimEventKind::kLeave);
  CHECK(leave.at_s == -1);
  CHECK(leave.at_step == 400);
  CHECK(leave.peers == std::vector<int>{3});

  CHECK(s.events[2].kind == SimEventKind::kStart);
  CHECK(s.events[2].count == 4);

  const auto& part = s.events[3];
  CHECK(part.kind == SimEventKind::kPartition);
  CHECK(part.groups == std::vector<std::vector<int>>{{0, 4, 5}, {6, 7, 8}});

  CHECK(s.events[4].kind == SimEventKind::kHeal);
  CHECK(s.events[4].at_s == 70);

  const auto& slow = s.events[5];
  CHECK(slow.kind == SimEventKind::kSlowLink);
  CHECK(slow.groups == std::vector<std::vector<int>>{{0, 4}, {9, 10}});
  CHECK(slow.latency_ms == 50);
  CHECK(slow.bandwidth_mbit_s == 100);
  CHECK_FALSE(slow.all_links);

  CHECK(s.events[6].kind == SimEventKind::kDrop);
  CHECK(s.events[6].fraction == doctest::Approx(0.2));

  const auto& every = s.events[7];
  CHECK(every.kind == SimEventKind::kSlowLink);
  CHECK(every.all_links);
  CHECK(every.groups.empty());
  CHECK(every.latency_ms == 0);
  CHECK(every.bandwidth_mbit_s == 20);

  CHECK(s.metrics_http.enabled());
  CHECK(s.metrics_http.endpoint == gossip::core::Endpoint{"127.0.0.1", 9400});
  CHECK_FALSE(s.metrics_http.host_given);

  CHECK(std::string(sim_event_name(SimEventKind::kSlowLink)) == "slow_link");
  CHECK(std::string(sim_event_name(SimEventKind::kKill)) == "kill");
  CHECK(check_sim_script(s).is_ok());
}

TEST_CASE("an empty sim section takes the defaults; an absent one leaves sim unset") {
  const Config c = parse_ok(with_sim(Json::object()));
  CHECK(c.sim.present);
  CHECK(c.sim.peers == 8);
  CHECK(c.sim.sample_every_s == 2.0);
  CHECK(c.sim.eval_rows == 2000);
  CHECK(c.sim.events.empty());
  CHECK(to_json(c)["sim"] == Json::parse(R"({"peers": 8, "average_only": false,
      "duration_s": 0.0, "sample_every_s": 2.0, "eval_rows": 2000, "step_slots": 0,
      "events": [], "metrics_http": null})"));

  const Config plain = parse_ok(base());
  CHECK_FALSE(plain.sim.present);
  CHECK(plain.sim.events.empty());
}

TEST_CASE("the sim section round-trips through to_json") {
  const Config c = parse_ok(with_sim(full_sim()));
  const Json once = to_json(c);
  REQUIRE(once.contains("sim"));
  // The effective section is the input, numbers as the parser stores them.
  CHECK(once["sim"] == full_sim());
  const Json twice = to_json(parse_ok(once, "/elsewhere"));
  CHECK_MESSAGE(once == twice, (once["sim"].dump(2) + "\n---\n" + twice["sim"].dump(2)));

  Json avg = Json::parse(R"({"peers": 32, "average_only": true, "duration_s": 20,
      "sample_every_s": 0.5, "eval_rows": 0, "step_slots": 0, "events": [{"at_s": 5, "drop": 0}],
      "metrics_http": "0.0.0.0:0"})");
  const Json again = to_json(parse_ok(with_sim(avg)));
  CHECK(again["sim"] == avg);
  CHECK(to_json(parse_ok(again)) == again);
}

TEST_CASE("configs without a sim section print exactly the sections they did before") {
  const Json j = to_json(parse_ok(base()));
  std::vector<std::string> keys;
  for (const auto& item : j.items()) keys.push_back(item.key());
  CHECK(keys == std::vector<std::string>{"checkpoint", "data", "gossip", "membership", "metrics",
                                         "model", "net", "optimizer", "peer", "training"});

  // Every shipped peer and sim config prints its sim section exactly when
  // it has one (bench-* files are gossip-bench's format).
  int peer_configs = 0;
  for (const auto& file : shipped_configs()) {
    if (file.filename().string().starts_with("bench-")) continue;
    CAPTURE(file.string());
    const bool has_sim = file.filename().string().starts_with("sim-");
    auto c = load_config(file);
    REQUIRE_MESSAGE(c.is_ok(), c.status().message());
    CHECK(c->sim.present == has_sim);
    CHECK(to_json(*c).contains("sim") == has_sim);
    peer_configs += has_sim ? 0 : 1;
  }
  CHECK(peer_configs >= 3);
}

TEST_CASE("every shipped sim-*.json loads and passes the checks gossip-sim makes before a run") {
  std::vector<std::string> names;
  for (const auto& file : shipped_configs()) {
    const std::string name = file.filename().string();
    if (!name.starts_with("sim-")) continue;
    CAPTURE(name);
    auto c = load_config(file);
    REQUIRE_MESSAGE(c.is_ok(), c.status().message());
    REQUIRE(c->sim.present);
    CHECK_MESSAGE(check_sim_script(c->sim).is_ok(), check_sim_script(c->sim).message());
    CHECK(c->sim.peers >= 2);
    // gossip-sim refuses averaging-only runs without a time-based schedule.
    if (c->sim.average_only) CHECK(c->gossip.interval_ms > 0);
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"sim-churn.json", "sim-consensus-256.json",
                                          "sim-consensus.json", "sim-fashion-mnist.json",
                                          "sim-gpt-noniid.json", "sim-gpt-outer.json",
                                          "sim-gpt.json", "sim-mlp-64.json", "sim-noniid.json",
                                          "sim-outer-fashion-mnist.json", "sim-outer-noniid.json",
                                          "sim-regression-256.json", "sim-regression.json",
                                          "sim-slow-baseline.json", "sim-slow-lowcomm.json"});
}

TEST_CASE("event objects: unknown keys, missing and doubled time or event keys") {
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [1]}, {"at_s": 2, "leave": [2]},
                            {"at_s": 3, "kil": [3]}])") ==
        "sim.events[2]: unknown event key \"kil\" (did you mean kill?)");
  CHECK(error_of_events(R"([{"at_sec": 1, "kill": [1]}])") ==
        "sim.events[0]: unknown key \"at_sec\" (did you mean at_s?)");
  CHECK(error_of_events(R"([{"at_s": 1, "explode": [1]}])") ==
        "sim.events[0]: unknown key \"explode\" (an event has one of at_s or at_step and one of "
        "kill, leave, start, partition, heal, slow_link or drop)");
  CHECK(error_of_events(R"([{"kill": [1]}])") == "sim.events[0]: needs one of at_s, at_step");
  CHECK(error_of_events(R"([{"at_s": 1}])") ==
        "sim.events[0]: needs one of kill, leave, start, partition, heal, slow_link, drop");
  CHECK(error_of_events(R"([{"at_s": 1, "at_step": 5, "kill": [1]}])") ==
        "sim.events[0]: has both at_s and at_step (give one)");
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [1], "leave": [2]}])") ==
        "sim.events[0]: has kill and leave (one event per entry; list the others as their own "
        "entries)");
  CHECK(error_of_events(R"([3])") ==
        "sim.events[0]: expected an object with one time key (at_s or at_step) and one event key "
        "(kill, leave, start, partition, heal, slow_link or drop), got 3");
  CHECK(error_of(with_events(Json::object())) ==
        "sim.events: expected an array of event objects, got {}");
  CHECK(error_of(with_sim(Json::parse(R"({"peer": 4})"))) ==
        "sim.peer: unknown key (did you mean sim.peers?)");
}

TEST_CASE("event values of the wrong type name the key path") {
  CHECK(error_of_events(R"([{"at_s": "10", "kill": [1]}])") ==
        "sim.events[0].at_s: expected seconds from the start (a number >= 0), got \"10\"");
  CHECK(error_of_events(R"([{"at_step": 1.5, "kill": [1]}])") ==
        "sim.events[0].at_step: expected a step count (an integer >= 0), got 1.5");
  CHECK(error_of_events(R"([{"at_step": 1e30, "kill": [1]}])") ==
        "sim.events[0].at_step: expected a step count (an integer >= 0), got 1e+30");
  CHECK(error_of_events(R"([{"at_s": 1, "kill": 1}])") ==
        "sim.events[0].kill: expected a non-empty array of peer indices, got 1");
  CHECK(error_of_events(R"([{"at_s": 1, "leave": [1, "2"]}])") ==
        "sim.events[0].leave[1]: expected a peer index (an integer), got \"2\"");
  CHECK(error_of_events(R"([{"at_s": 1, "start": "4"}])") ==
        "sim.events[0].start: expected the number of new peers (an integer >= 1), got \"4\"");
  CHECK(error_of_events(R"([{"at_s": 1, "partition": [0, 1]}])") ==
        "sim.events[0].partition: expected an array of groups of peer indices ([[0, 1], [2, 3]]), "
        "got [0,1]");
  CHECK(error_of_events(R"([{"at_s": 1, "heal": false}])") ==
        "sim.events[0].heal: expected true (heal restores every link: ends partitions and slow "
        "links), got false");
  CHECK(error_of_events(R"([{"at_s": 1, "drop": "20%"}])") ==
        "sim.events[0].drop: expected the fraction of exchanges that fail (a number in [0, 1]), "
        "got \"20%\"");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"between": [[0], [1]], "latncy_ms": 5}}])") ==
        "sim.events[0].slow_link.latncy_ms: unknown key (did you mean "
        "sim.events[0].slow_link.latency_ms?)");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"latency_ms": 5}}])") ==
        "sim.events[0].slow_link.between: required: the two groups of peers whose links are "
        "slowed (or \"all\": true to slow every link)");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"between": [[0], [1]],
                                                      "latency_ms": -5}}])") ==
        "sim.events[0].slow_link.latency_ms: expected a non-negative integer, got -5");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"between": [[0], [1]],
                                                      "bandwidth_mbit_s": -1}}])") ==
        "sim.events[0].slow_link.bandwidth_mbit_s: expected a number >= 0, got -1");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"all": true, "between": [[0], [1]],
                                                      "latency_ms": 5}}])") ==
        "sim.events[0].slow_link.between: give either between (two groups) or \"all\": true "
        "(every link), not both");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"all": false, "latency_ms": 5}}])") ==
        "sim.events[0].slow_link.between: required: the two groups of peers whose links are "
        "slowed (or \"all\": true to slow every link)");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"all": "yes", "latency_ms": 5}}])") ==
        "sim.events[0].slow_link.all: expected true or false, got \"yes\"");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"all": true}}])") ==
        "sim.events[0] (slow_link): needs latency_ms > 0 or bandwidth_mbit_s > 0 (otherwise "
        "nothing is slowed)");
}

TEST_CASE("the section's own values are range-checked") {
  CHECK(error_of(with_sim(Json::parse(R"({"peers": 0})"))) ==
        "sim.peers: expected an integer in [1, 1024], got 0");
  CHECK(error_of(with_sim(Json::parse(R"({"peers": 5000})"))) ==
        "sim.peers: expected an integer in [1, 1024], got 5000");
  CHECK(error_of(with_sim(Json::parse(R"({"duration_s": -1})"))) ==
        "sim.duration_s: expected a number >= 0, got -1");
  CHECK(error_of(with_sim(Json::parse(R"({"sample_every_s": 0})"))) ==
        "sim.sample_every_s: expected a number > 0, got 0");
  CHECK(error_of(with_sim(Json::parse(R"({"eval_rows": -1})"))) ==
        "sim.eval_rows: expected a non-negative integer, got -1");
  CHECK(error_of(with_sim(Json::parse(R"({"average_only": true})"))) ==
        "sim.duration_s: must be > 0 with sim.average_only (without training there is no budget "
        "to end the run)");
  CHECK(error_of(with_sim(Json::parse(R"({"average_only": true, "duration_s": 10,
      "events": [{"at_step": 5, "kill": [1]}]})"))) ==
        "sim.events[0] (kill): at_step is not used with sim.average_only (no training steps are "
        "taken); give at_s");
  CHECK(error_of(with_sim(Json::parse(R"({"duration_s": 60,
      "events": [{"at_s": 90, "drop": 0.5}]})"))) ==
        "sim.events[0] (drop): at_s 90 is after the end of the simulation (sim.duration_s 60)");
  CHECK(error_of(with_sim(Json::parse(R"({"peers": 1000,
      "events": [{"at_s": 1, "start": 25}]})"))) ==
        "sim.events[0] (start): would bring the peers ever started to 1025 (at most 1024)");
}

TEST_CASE("times: in the past, or out of order within their unit") {
  CHECK(error_of_events(R"([{"at_s": -5, "kill": [1]}])") ==
        "sim.events[0] (kill): at_s -5 is a time in the past (times count from the start of the "
        "simulation, from 0)");
  CHECK(error_of_events(R"([{"at_step": -1, "leave": [1]}])") ==
        "sim.events[0] (leave): at_step -1 is a time in the past (times count from the start of "
        "the simulation, from 0)");
  CHECK(error_of_events(R"([{"at_s": 5, "kill": [1]}, {"at_s": 20, "kill": [2]},
                            {"at_step": 3, "kill": [3]}, {"at_s": 10, "kill": [4]}])") ==
        "sim.events[3] (kill): at_s 10 is before sim.events[1]'s at_s 20 (events must be listed "
        "in time order)");
  CHECK(error_of_events(R"([{"at_step": 300, "kill": [1]}, {"at_s": 1, "kill": [2]},
                            {"at_step": 200, "kill": [3]}])") ==
        "sim.events[2] (kill): at_step 200 is before sim.events[0]'s at_step 300 (events must be "
        "listed in time order)");
  // Equal times are fine, and the units are independent.
  CHECK(error_of_events(R"([{"at_s": 5, "kill": [1]}, {"at_s": 5, "kill": [2]},
                            {"at_step": 1, "kill": [3]}, {"at_s": 6, "kill": [4]}])") == "");
}

TEST_CASE("peer indices must exist and be alive at that point in the script") {
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [1]}, {"at_s": 2, "leave": [2]},
                            {"at_s": 3, "drop": 0.1}, {"at_s": 4, "kill": [9]}])") ==
        "sim.events[3] (kill): peer 9 does not exist (peers 0..7 exist at that point)");
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [-1]}])") ==
        "sim.events[0] (kill): peer -1 does not exist (peers 0..7 exist at that point)");
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [1]}, {"at_s": 2, "kill": [2]},
                            {"at_s": 3, "leave": [2]}])") ==
        "sim.events[2] (leave): peer 2 was already killed by sim.events[1]");
  CHECK(error_of_events(R"([{"at_s": 1, "leave": [2]}, {"at_s": 2, "kill": [2]}])") ==
        "sim.events[1] (kill): peer 2 already left at sim.events[0]");
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [2, 2]}])") ==
        "sim.events[0] (kill): peer 2 is listed twice");
  // start adds the next indices.
  CHECK(error_of_events(R"([{"at_s": 1, "start": 2}, {"at_s": 2, "kill": [9]},
                            {"at_s": 3, "kill": [10]}])") ==
        "sim.events[2] (kill): peer 10 does not exist (peers 0..9 exist at that point)");
  CHECK(error_of(with_sim(Json::parse(R"({"peers": 1, "events": [{"at_s": 1, "kill": [1]}]})"))) ==
        "sim.events[0] (kill): peer 1 does not exist (only peer 0 exists at that point)");
  CHECK(error_of(with_sim(Json::parse(R"({"peers": 2, "events": [{"at_s": 1, "kill": [0, 1]},
                                                                 {"at_s": 2, "start": 2}]})"))) ==
        "sim.events[1] (start): no live peer to join through (every peer was killed or has left "
        "by then)");
  CHECK(error_of_events(R"([{"at_s": 1, "start": 0}])") ==
        "sim.events[0] (start): needs a count >= 1 of new peers, got 0");
  // Every problem is listed, one per line.
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [8]}, {"at_s": 0.5, "leave": [1]}])") ==
        "sim.events[0] (kill): peer 8 does not exist (peers 0..7 exist at that point)\n"
        "sim.events[1] (leave): at_s 0.5 is before sim.events[0]'s at_s 1 (events must be listed "
        "in time order)");
}

TEST_CASE("partition and slow_link groups: enough of them, disjoint, live peers") {
  CHECK(error_of_events(R"([{"at_s": 1, "partition": [[0, 1]]}])") ==
        "sim.events[0] (partition): needs at least 2 groups of peers, got 1");
  CHECK(error_of_events(R"([{"at_s": 1, "partition": [[0, 1], []]}])") ==
        "sim.events[0] (partition): group 1 is empty");
  CHECK(error_of_events(R"([{"at_s": 1, "partition": [[0, 1, 2], [2, 3]]}])") ==
        "sim.events[0] (partition): group 1: peer 2 is also in group 0 (groups must be disjoint)");
  CHECK(error_of_events(R"([{"at_s": 1, "kill": [3]}, {"at_s": 2, "partition": [[0], [3]]}])") ==
        "sim.events[1] (partition): group 1: peer 3 was already killed by sim.events[0]");
  CHECK(error_of_events(R"([{"at_s": 1, "partition": [[0], [12]]}])") ==
        "sim.events[0] (partition): group 1: peer 12 does not exist (peers 0..7 exist at that "
        "point)");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"between": [[0], [1], [2]],
                                                      "latency_ms": 5}}])") ==
        "sim.events[0] (slow_link): between: expected exactly 2 groups of peers, got 3");
  CHECK(error_of_events(R"([{"at_s": 1, "slow_link": {"between": [[0], [1]]}}])") ==
        "sim.events[0] (slow_link): needs latency_ms > 0 or bandwidth_mbit_s > 0 (otherwise "
        "nothing is slowed)");
  CHECK(error_of_events(R"([{"at_s": 1, "drop": 1.5}])") ==
        "sim.events[0] (drop): fraction 1.5 is not in [0, 1]");
  // Peers in no group are allowed (they keep every link).
  CHECK(error_of_events(R"([{"at_s": 1, "partition": [[0], [1]]},
                            {"at_s": 2, "slow_link": {"between": [[2], [3]],
                                                      "bandwidth_mbit_s": 10}}])") == "");
}

TEST_CASE("load_config prefixes each script problem with the file name") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("gossip-config-sim-" + std::to_string(std::rand()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "sim.json";
  {
    std::ofstream out(file);
    out << with_events(Json::parse(R"([{"at_s": 1, "kill": [9]}, {"at_s": 2, "kill": [10]}])"))
               .dump(2);
  }
  auto c = load_config(file);
  std::filesystem::remove_all(dir);
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.status().message() ==
        file.string() +
            ": sim.events[0] (kill): peer 9 does not exist (peers 0..7 exist at that "
            "point)\n" +
            file.string() +
            ": sim.events[1] (kill): peer 10 does not exist (peers 0..7 exist at that point)");
}

TEST_CASE("check_sim_script re-checks a script after the peer count changes") {
  const Config c = parse_ok(with_sim(full_sim()));
  SimConfig fewer = c.sim;
  fewer.peers = 3;  // as gossip-sim --peers 3 would
  const auto status = check_sim_script(fewer);
  REQUIRE_FALSE(status.is_ok());
  // Indices shift: the joiners become 3..6, so the first error is the leave of peer 3.
  CHECK(status.message().substr(0, status.message().find('\n')) ==
        "sim.events[1] (leave): peer 3 does not exist (peers 0..2 exist at that point)");

  SimConfig more = c.sim;
  more.peers = 16;
  CHECK(check_sim_script(more).is_ok());  // indices 0..15 exist; the script stays valid

  more.peers = 0;
  CHECK(check_sim_script(more).message() == "sim.peers: expected an integer in [1, 1024], got 0");

  // A struct built in code with no time at all.
  SimConfig built;
  built.present = true;
  SimEvent e;
  e.kind = SimEventKind::kHeal;
  built.events.push_back(e);
  CHECK(check_sim_script(built).message() == "sim.events[0] (heal): needs one of at_s, at_step");
}
