// gossip-sim's engine: N real peers in one process (docs/design.md "Simulation
// mode"). Each peer runs peer::run_peer on its own trainer thread with its
// own keys, listener, membership and averaging over real loopback TCP and
// real Noise encryption; all share one read-only copy of the dataset. A
// script of events (config "sim" section) kills, stops, starts, partitions,
// slows and drops; an observer that sees every replica writes swarm-wide
// truth (consensus distance, accuracy of every peer and of the averaged
// model, exchanges, bytes, members) to DIR/metrics.jsonl at a fixed cadence,
// prints a progress line, and ends with a summary and DIR/report.html.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "gossip/config/config.hpp"
#include "gossip/core/status.hpp"

namespace gossip::sim {

struct SimOptions {
  config::Config config;              // with a "sim" section
  std::filesystem::path config_file;  // where the config came from, named in errors ("": none)
  std::string name;                   // shown in the report's title (the config's stem)
  std::filesystem::path out;          // output folder; created; must not hold an earlier run
  uint64_t seed = 1;                  // model and shard seeds, joins, drops
  bool progress = true;               // print a progress line per sample on stdout
  // Test hook: peer index -> how long its trainer thread sleeps before
  // answering each look (a real slow peer, to be reported late, not dead).
  std::map<int, std::chrono::milliseconds> answer_delay;
};

// What makes a simulation refuse to start, checked before anything starts
// and in this one place: a config without a sim section, a script that does
// not fit sim.peers (after a --peers override), averaging only without a
// time-based schedule (gossip.interval_ms), an output folder that is a file,
// holds an earlier run or cannot be created (it is created here). Invalid
// argument naming the file and key, or --out. gossip-sim calls it before its
// start line; run_simulation calls it first. Any thread.
core::Status check_options(const SimOptions& options);

// Runs the simulation until every peer's training budget is spent (or
// sim.duration_s has passed, or `stop` becomes true: then the peers leave
// gracefully), and returns the final summary object (also written to
// DIR/summary.json and as the last record of DIR/metrics.jsonl), whose keys
// docs/simulation.md lists. Calling thread = the simulation's own. Errors:
// those of check_options, data that does not load, a first peer that cannot
// start.
core::Result<nlohmann::json> run_simulation(const SimOptions& options,
                                            const std::atomic<bool>& stop);

// The theoretical per-exchange factor of random pairwise gossip among n
// peers: 1 - 1/(n-1) (docs/design.md, Boyd et al. 2006); 0 for n < 2.
double theory_factor(int n);

}  // namespace gossip::sim
