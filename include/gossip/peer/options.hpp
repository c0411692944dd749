// The config sections owned by the peer module: "peer" (how this peer is
// reached, its keys, whom it joins through, its data folder), "checkpoint"
// and "metrics". config::Config holds them; the readers and writers below
// convert them from and to JSON (src/peer/options.cpp). They sit in their own
// library (gossip_peer_options) below config, since the rest of the peer
// module runs a whole config::Config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "gossip/core/endpoint.hpp"

namespace gossip::options {
class Section;
}

namespace gossip::peer {

using Path = std::filesystem::path;

struct PeerConfig {
  bool network = true;                       // false: train alone, no listener, no gossip
  core::Endpoint listen{"127.0.0.1", 7400};  // port 0: any free port
  core::Endpoint advertise;                  // empty host: same as listen
  Path identity_key;                         // default <data_dir>/identity.key
  Path swarm_key;                            // default <data_dir>/swarm.key
  std::vector<core::Endpoint> bootstrap;     // members to join through; empty: first peer
  Path data_dir;                             // default <config folder>/gossip-data
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
  core::ServiceAddress http;       // GET /metrics (Prometheus text format); off by default
};

// Readers of the top-level object's optional "peer", "checkpoint" and
// "metrics" sections into `out` (defaults already there); problems are
// recorded through `top` as "peer.<key>: ...". Relative paths resolve
// against the config's folder; read_peer sets data_dir (default
// <config folder>/gossip-data), and the paths that default into it stay
// empty here (config::parse_config fills them).
void read_peer(options::Section& top, PeerConfig& out);
void read_checkpoint(options::Section& top, CheckpointConfig& out);
void read_metrics(options::Section& top, MetricsConfig& out);

// The sections as the readers read them (paths absolute, an unset
// advertise as null).
nlohmann::json peer_json(const PeerConfig& peer);
nlohmann::json checkpoint_json(const CheckpointConfig& checkpoint);
nlohmann::json metrics_json(const MetricsConfig& metrics);

}  // namespace gossip::peer
