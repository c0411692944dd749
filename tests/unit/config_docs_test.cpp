// docs/configuration.md against what --print-config writes: every key the
// effective config holds, for every model, optimizer, schedule, shard and
// dataset type and for the sim section, has a row in the document, and every
// row names a key that some effective config holds.
//
// The document's markup (stated at its top): under a heading "### `section`"
// each table row's first cell names keys relative to that section, in
// backticks. The peer configs go through the real program (gossip-peer
// --print-config); the sim section through config::to_json, the function
// --print-config prints, since gossip-peer refuses a simulation's config and
// gossip-sim has no --print-config.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gossip/config/config.hpp"
#include "integration/peer_process.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

// Every key of a config, one variant per type that brings keys of its own.
// Each is a whole config as a user would write it.
const char* const kPeerConfigs[] = {
    // mlp, sgd with a cosine schedule, label-skew shards, Fashion-MNIST.
    R"({"model": {"layers": [784, 32, 10]},
        "optimizer": {"type": "sgd", "schedule": {"type": "cosine"}},
        "data": {"dataset": {"type": "fashion_mnist"},
                 "shard": {"type": "label_skew", "num_shards": 4}},
        "training": {"epochs": 1}})",
    // adam with a step schedule, IDX files, given normalisation statistics.
    R"({"model": {"layers": [784, 10]},
        "optimizer": {"type": "adam", "schedule": {"type": "step", "step_every": 100}},
        "data": {"dataset": {"type": "idx", "train_images": "a.idx", "train_labels": "b.idx",
                             "test_images": "c.idx", "test_labels": "d.idx"},
                 "normalize": "global", "mean": [0.5], "stddev": [0.25]},
        "training": {"steps": 10}})",
    // csv regression held out by fraction; a networked peer with bootstrap members.
    R"({"model": {"layers": [3, 1], "loss": "mse"},
        "data": {"dataset": {"type": "csv", "train_csv": "t.csv", "target_columns": ["y"]}},
        "peer": {"bootstrap": ["127.0.0.1:7401"], "advertise": "127.0.0.1:7400"}})",
    // csv classification with its own test file; the randk wire codec.
    R"({"model": {"layers": [3, 2]},
        "data": {"dataset": {"type": "csv", "train_csv": "t.csv", "test_csv": "v.csv",
                             "label_column": "c", "feature_columns": ["a", "b", "d"]}},
        "gossip": {"wire": "randk", "wire_block": 128, "randk": {"fraction": 0.1}}})",
    // the synthetic regression task, gossiping in outer mode.
    R"({"model": {"layers": [10, 20, 1], "loss": "mse", "activation": "tanh"},
        "data": {"dataset": {"type": "synthetic_regression"}},
        "gossip": {"mode": "outer", "outer": {"steps": 50}}})",
    // a GPT on text with adamw.
    R"({"model": {"type": "gpt", "block": 16, "layers": 1, "heads": 2, "embd": 16},
        "optimizer": {"type": "adamw", "grad_clip": 1.0},
        "data": {"dataset": {"type": "text", "path": "corpus.txt"}}})",
};

// A simulation: a peer config plus a sim section with one event of each kind.
const char* const kSimConfig = R"({
  "model": {"layers": [10, 20, 1], "loss": "mse", "activation": "tanh"},
  "data": {"dataset": {"type": "synthetic_regression"}},
  "training": {"steps": 100},
  "sim": {"peers": 4, "duration_s": 10,
          "events": [{"at_s": 1, "kill": [1]}, {"at_s": 2, "start": 1},
                     {"at_s": 3, "partition": [[0], [2]]}, {"at_s": 4, "heal": true}]}
})";

// Adds the dotted path of every key under `j` to `all`, and of every key
// holding a value that is not an object (arrays and null included) to
// `leaves`.
void collect(const Json& j, const std::string& prefix, std::set<std::string>& leaves,
             std::set<std::string>& all) {
  for (const auto& [key, value] : j.items()) {
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    all.insert(path);
    if (value.is_object()) {
      collect(value, path, leaves, all);
    } else {
      leaves.insert(path);
    }
  }
}

// The keys docs/configuration.md documents, as dotted paths.
std::set<std::string> documented_keys(const fs::path& doc) {
  std::ifstream in(doc);
  REQUIRE_MESSAGE(in.good(), "cannot read " << doc.string());
  static const std::regex kSection(R"(^### `([a-z_.]+)`\s*$)");
  static const std::regex kTicked("`([^`]*)`");
  static const std::regex kKey(R"([a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*)");
  std::set<std::string> keys;
  std::string section;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    std::smatch m;
    if (std::regex_match(line, m, kSection)) {
      section = m[1];
      continue;
    }
    if (line.starts_with("#")) {  // any other heading ends the section
      section.clear();
      continue;
    }
    if (section.empty() || !line.starts_with("|") || line.starts_with("|---")) continue;
    const std::string cell = line.substr(1, line.find('|', 1) - 1);
    for (auto it = std::sregex_iterator(cell.begin(), cell.end(), kTicked);
         it != std::sregex_iterator(); ++it) {
      const std::string key = (*it)[1];
      CHECK_MESSAGE(std::regex_match(key, kKey), doc.filename().string()
                                                     << ":" << line_no << ": `" << key
                                                     << "` in a key cell is not a key name");
      keys.insert(section + "." + key);
    }
  }
  return keys;
}

std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  REQUIRE_MESSAGE(v != nullptr, name << " is not set (tests/meson.build sets it)");
  return v;
}

}  // namespace

TEST_CASE("configuration.md documents exactly the keys --print-config writes") {
  gossip::test::TempDir dir("gossip-config-docs");
  std::set<std::string> leaves, all;

  for (size_t i = 0; i < std::size(kPeerConfigs); ++i) {
    const fs::path file = dir.path() / ("peer" + std::to_string(i) + ".json");
    std::ofstream(file) << kPeerConfigs[i];
    const auto run = gossip::test::run_program("peers/gossip-peer",
                                               "--config " + file.string() + " --print-config",
                                               dir.path(), "print" + std::to_string(i));
    REQUIRE_MESSAGE(run.status == 0,
                    "gossip-peer --print-config failed on variant " << i << ": " << run.err);
    collect(Json::parse(run.out), "", leaves, all);
  }

  auto sim = gossip::config::parse_config(kSimConfig, dir.path());
  REQUIRE_MESSAGE(sim.is_ok(), sim.status().message());
  const Json sim_json = gossip::config::to_json(*sim);
  REQUIRE(sim_json.contains("sim"));
  collect(sim_json, "", leaves, all);

  const fs::path doc = fs::path(env_or_fail("GOSSIP_SOURCE_ROOT")) / "docs" / "configuration.md";
  const std::set<std::string> documented = documented_keys(doc);
  REQUIRE_MESSAGE(documented.size() > 50,
                  "found only " << documented.size() << " documented keys in " << doc.string());

  for (const auto& key : leaves) {
    CHECK_MESSAGE(documented.count(key) == 1, "--print-config writes `"
                                                  << key
                                                  << "`, which docs/configuration.md does not "
                                                     "document (add a row to its section's table)");
  }
  for (const auto& key : documented) {
    CHECK_MESSAGE(all.count(key) == 1,
                  "docs/configuration.md documents `"
                      << key
                      << "`, which no --print-config of this test writes (a key that was "
                         "renamed or removed, or a variant this test lacks)");
  }
}

TEST_CASE("the key-cell reader sees rows, several keys per row, and nothing outside sections") {
  gossip::test::TempDir dir("gossip-config-docs-reader");
  const fs::path doc = dir.path() / "doc.md";
  std::ofstream(doc) << "# Title\n"
                        "| `not_a_section` | x |\n"
                        "### `data`\n"
                        "| key | type |\n"
                        "|---|---|\n"
                        "| `batch` | int |\n"
                        "| `mean`, `stddev` | arrays, see `normalize` |\n"
                        "| `shard.type` | `random` |\n"
                        "## Next part\n"
                        "| `outside` | x |\n";
  CHECK(documented_keys(doc) ==
        std::set<std::string>{"data.batch", "data.mean", "data.stddev", "data.shard.type"});
}
