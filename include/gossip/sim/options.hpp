// The "sim" section of a config file, owned by the sim module: the swarm
// size, the metrics cadence and the scripted events. config::Config holds
// one; read_sim and sim_json convert it from and to JSON
// (src/sim/options.cpp), check_sim_script checks the script as a whole
// (src/sim/script.cpp). They sit in their own library (gossip_sim_options)
// below config, since the simulation itself runs whole config::Configs.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "gossip/core/endpoint.hpp"
#include "gossip/core/status.hpp"

namespace gossip::options {
class Errors;
class Section;
}  // namespace gossip::options

namespace gossip::sim {

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
                                         // every link); slow_link: exactly 2 groups,
                                         // or none with all_links
  bool all_links = false;                // slow_link: every link of every peer, also of
                                         // peers started later ("all": true)
  int64_t latency_ms = 0;                // slow_link: added one-way latency
  double bandwidth_mbit_s = 0;           // slow_link: cap per direction, 0 = none
  double fraction = 0;                   // drop: fraction of exchanges that fail, in [0, 1]
                                         // (0 ends an earlier drop)
};

struct SimConfig {
  bool present = false;               // the config has a "sim" section
  int peers = 8;                      // peers at the start, 1..1024 (also the most ever started)
  bool average_only = false;          // no training: random initial parameters, averaging only
  double duration_s = 0;              // 0: until every peer's training budget is spent;
                                      // average_only requires > 0
  double sample_every_s = 2.0;        // cadence of the swarm-wide metrics (> 0)
  int64_t eval_rows = 2000;           // test rows per evaluation at each sample, 0 = all
                                      // (the final evaluation always uses every row)
  int64_t step_slots = 0;             // peers stepping at once, in turn (0: one per core)
  std::vector<SimEvent> events;       // in the order listed
  core::ServiceAddress metrics_http;  // one /metrics for every peer (label "peer"); off by default
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

// Reads the top-level object's optional "sim" section into `out` (sets
// out.present when there is one). Checks JSON types, keys and the section's
// own ranges; event objects are read key by key, so their problems go to
// `errors` (the Errors `top` records into) directly. Event values and the
// script as a whole are check_sim_script's (config::parse_config runs it
// when this added no errors).
void read_sim(options::Section& top, options::Errors& errors, SimConfig& out);

// The section as read_sim reads it: each event as its time key, then its
// event key.
nlohmann::json sim_json(const SimConfig& sim);

}  // namespace gossip::sim
