// Config: the validated, defaults-filled description of one peer, read from a
// JSON file (configs/*.json).
//
// Every section is optional except "model" (layers) and "data" (dataset);
// absent keys take the defaults written below. Parsing rejects unknown keys
// at any depth (naming the full key path and the closest known key), wrong
// types and impossible values, so nothing starts on a bad config. Relative
// paths resolve against the config file's folder and are stored absolute.
// to_json() writes the effective config (for --print-config); parsing that
// output gives back an equal Config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "gossip/config/endpoint.hpp"
#include "gossip/core/status.hpp"
#include "gossip/data/factory.hpp"
#include "gossip/data/shard.hpp"
#include "gossip/train/backend.hpp"
#include "gossip/train/model.hpp"
#include "gossip/train/optimizer.hpp"

namespace gossip::config {

using Path = std::filesystem::path;

struct PeerConfig {
  bool network = true;                 // false: train alone, no listener, no gossip
  Endpoint listen{"127.0.0.1", 7400};  // port 0: any free port
  Endpoint advertise;                  // empty host: same as listen
  Path identity_key;                   // default <data_dir>/identity.key
  Path swarm_key;                      // default <data_dir>/swarm.key
  std::vector<Endpoint> bootstrap;     // members to join through; empty: first peer
  Path data_dir;                       // default <config folder>/gossip-data
};

// The "data" section. The dataset and shard specs are the data module's own
// (data::make_datasets / data::make_shard take them as they are); paths in
// them are resolved, and `dataset.normalize` holds the effective mode
// (never empty after parsing).
struct ShardConfig {
  data::ShardSpec spec;  // type, alpha, min_shard_size
  int num_shards = 1;
  int index = 0;  // 0 <= index < num_shards
};

struct DataConfig {
  data::DatasetSpec dataset;  // dataset.seed == seed
  ShardConfig shard;
  int batch = 64;
  uint64_t seed = 1;       // shard plan and csv split (same on all peers);
                           // peers mix in shard.index for the batch order
  bool drop_last = false;  // drop the last incomplete batch of an epoch

  // Whether the dataset holds regression targets (synthetic_regression, or
  // csv with target_columns) rather than class labels.
  bool regression() const;
};

struct EvalConfig {
  int64_t every_epochs = 1;  // 0: off
  int64_t every_steps = 0;   // 0: off
  int64_t max_rows = 0;      // 0: the whole test set
  int batch = 1000;          // rows per evaluation call
};

struct TrainingConfig {
  std::string device = "auto";  // "auto" | "cpu" | "cuda"
  int cpu_threads = 1;          // 0: all hardware threads; 1 by default since
                                // many peers often share one host
  bool allow_tf32 = false;
  int64_t epochs = 0;  // at most one of epochs/steps > 0;
  int64_t steps = 0;   // both 0: run until stopped
  EvalConfig eval;
};

enum class WireFormat { kFp32, kBf16, kFp16 };
core::Result<WireFormat> parse_wire_format(const std::string& name);
const char* wire_format_name(WireFormat f);

enum class WeightMode { kSamples, kUniform, kFixed };

struct GossipConfig {
  int64_t interval_steps = 10;  // exactly one of interval_steps /
  int64_t interval_ms = 0;      // interval_ms is > 0
  WireFormat wire = WireFormat::kFp32;
  int64_t exchange_timeout_ms = 10000;
  WeightMode weight = WeightMode::kSamples;  // samples in this peer's shard
  double weight_value = 1.0;                 // kFixed: the number; kUniform: 1
  int64_t backoff_ms = 200;                  // base of the jittered exponential backoff
};

struct MembershipConfig {
  int64_t probe_interval_ms = 1000;
  int64_t probe_timeout_ms = 500;  // < probe_interval_ms
  int indirect_probes = 3;
  double suspicion_mult = 4.0;       // suspect -> dead after mult * log2(n+1) * probe_interval
  int64_t sync_interval_ms = 10000;  // full member-list sync with a random member
  int64_t join_timeout_ms = 30000;   // how long a joining peer tries its seeds
};

struct NetConfig {
  int64_t handshake_timeout_ms = 5000;
  int64_t idle_timeout_ms = 60000;
  int max_sessions = 256;
  int max_pending_handshakes = 64;
  int max_pending_per_address = 4;
  int64_t max_control_frame = 65536;  // bytes; 1024 .. 16 MiB
  std::string cipher = "chachapoly";  // Noise AEAD: "chachapoly" | "aesgcm" (same on every peer)
};

struct CheckpointConfig {
  int64_t every_steps = 1000;  // 0: only the final checkpoint
  int keep = 3;                // newest checkpoints kept (>= 1)
  Path dir;                    // default <data_dir>
};

struct MetricsConfig {
  Path file;                       // default <data_dir>/metrics.jsonl
  int64_t every_steps = 100;       // 0: only at evaluations
  double progress_every_s = 10.0;  // 0: no progress lines on stderr
  ServiceAddress http;             // GET /metrics (Prometheus text format); off by default
};

// The "sim" section, read only by gossip-sim (gossip-peer refuses a config
// that has one). Every simulated peer runs the rest of the config with its
// own index as data.shard.index (num_shards = the initial peer count when
// the data section leaves it at 1), its own keys, folder and a free port.
enum class SimEventKind { kKill, kLeave, kStart, kPartition, kHeal, kSlowLink, kDrop };
const char* sim_event_name(SimEventKind kind);  // "kill", "leave", ...

// One scripted event. It fires at `at_s` seconds from the start of the
// simulation or when the most advanced live peer has done `at_step` steps:
// exactly one of the two is >= 0 (the other stays -1).
struct SimEvent {
  SimEventKind kind = SimEventKind::kKill;
  double at_s = -1;
  int64_t at_step = -1;
  std::vector<int> peers;                // kill, leave: peer indices (>= 1 of them)
  int count = 0;                         // start: new peers, indices continue after the last
  std::vector<std::vector<int>> groups;  // partition: >= 2 disjoint groups (links between
                                         // different groups are cut; peers in no group keep
                                         // every link); slow_link: exactly 2 groups
  int64_t latency_ms = 0;                // slow_link: added one-way latency
  double bandwidth_mbit_s = 0;           // slow_link: cap per direction, 0 = none
  double fraction = 0;                   // drop: fraction of exchanges that fail, in [0, 1]
                                         // (0 ends an earlier drop)
};

struct SimConfig {
  bool present = false;          // the config has a "sim" section
  int peers = 8;                 // peers at the start, 1..1024 (also the most ever started)
  bool average_only = false;     // no training: random initial parameters, averaging only
  double duration_s = 0;         // 0: until every peer's training budget is spent;
                                 // average_only requires > 0
  double sample_every_s = 2.0;   // cadence of the swarm-wide metrics (> 0)
  int64_t eval_rows = 2000;      // test rows per evaluation at each sample, 0 = all
                                 // (the final evaluation always uses every row)
  std::vector<SimEvent> events;  // in the order listed
  ServiceAddress metrics_http;   // one /metrics for every peer (label "peer"); off by default
};

// Checks `sim`'s event script against its peer count, walking the events in
// the order listed: peer indices exist and are alive at that point (started
// and neither killed nor left), groups are disjoint, times are not negative
// and not earlier than an earlier event's time in the same unit, and each
// kind has the fields it needs (and peers, duration_s, sample_every_s,
// eval_rows are in range). Every problem is listed, one per line, each
// naming the event, e.g.
// "sim.events[2] (kill): peer 9 does not exist (peers 0..7 exist at that point)".
// parse_config runs it; gossip-sim runs it again after --peers. Any thread.
core::Status check_sim_script(const SimConfig& sim);

struct Config {
  PeerConfig peer;
  train::ModelSpec model;
  train::OptimizerSpec optimizer;
  DataConfig data;
  TrainingConfig training;
  GossipConfig gossip;
  MembershipConfig membership;
  NetConfig net;
  CheckpointConfig checkpoint;
  MetricsConfig metrics;
  SimConfig sim;
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

// A "model" section alone (as to_json writes it, e.g. from a checkpoint's
// header) back into the model it describes, with the same checks and
// messages as in a config.
core::Result<train::ModelSpec> parse_model(const nlohmann::json& model);

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
