// Config: the validated, defaults-filled description of one peer, read from a
// JSON file (configs/*.json), composed of the sections the modules own.
//
// Each module owns its section's struct and its conversion from and to JSON
// (peer, checkpoint, metrics: peer/options.hpp; model, optimizer, training:
// train/options.hpp; data: data/options.hpp; gossip: averaging/options.hpp;
// membership: membership/options.hpp; net: net/options.hpp; sim:
// sim/options.hpp), all written with the shared readers of
// options/reader.hpp. This module only composes them: it parses the text,
// calls each section's reader, runs the checks that span sections and fills
// the paths that default into the data folder.
//
// Every section is optional except "model" (layers) and "data" (dataset);
// absent keys take the defaults written in the module structs. Parsing
// rejects unknown keys at any depth (naming the full key path and the
// closest known key), wrong types and impossible values, so nothing starts
// on a bad config. Relative paths resolve against the config file's folder
// and are stored absolute. to_json() writes the effective config (for
// --print-config); parsing that output gives back an equal Config.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "gossip/averaging/options.hpp"
#include "gossip/core/status.hpp"
#include "gossip/data/options.hpp"
#include "gossip/membership/options.hpp"
#include "gossip/net/options.hpp"
#include "gossip/peer/options.hpp"
#include "gossip/sim/options.hpp"
#include "gossip/train/backend.hpp"
#include "gossip/train/options.hpp"

namespace gossip::config {

using Path = std::filesystem::path;

struct Config {
  peer::PeerConfig peer;
  train::ModelSpec model;
  train::OptimizerSpec optimizer;
  data::DataConfig data;
  train::TrainingConfig training;
  averaging::GossipConfig gossip;
  membership::MembershipConfig membership;
  net::NetConfig net;
  peer::CheckpointConfig checkpoint;
  peer::MetricsConfig metrics;
  sim::SimConfig sim;
};

// Reads and validates the config file at `path`; relative paths inside it
// resolve against its folder. Errors start with the file name and give the
// key path ("optimizer.momentun: unknown key (did you mean
// optimizer.momentum?)") or, for bad JSON, the line and column. Every problem
// found is listed, one per line, the first on the first line.
core::Result<Config> load_config(const Path& path);

// As load_config, from text; relative paths resolve against `base_dir`
// (made absolute against the working directory; empty means the working
// directory).
core::Result<Config> parse_config(const std::string& json_text, const Path& base_dir);

// Moves the peer's data folder to `dir` (made absolute), as gossip-peer's
// --data-dir does: the paths that defaulted into the old folder
// (checkpoint.dir, metrics.file, peer.identity_key, peer.swarm_key) follow
// it; paths that point elsewhere stay. Any thread.
void move_data_dir(Config& config, const Path& dir);

// The effective config, every key with its value (defaults included, paths
// absolute). parse_config(to_json(c).dump(), any) yields a Config equal to c.
nlohmann::json to_json(const Config& config);

// Checks the model against the loaded dataset: layers.front() must equal the
// feature count and layers.back() the class count (for regression, the
// target count); the error names model.layers. For a gpt, the windows must
// hold block + 1 bytes (model.block).
core::Status validate_against_dataset(const Config& config, int features, int classes);

// The backend options this config asks for (cpu_threads 0 resolved to the
// hardware thread count; max_batch covers training and evaluation batches).
train::BackendOptions backend_options(const Config& config);

}  // namespace gossip::config
