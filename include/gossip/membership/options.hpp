// The "membership" section of a config file, owned by the membership module:
// SWIM's probe cadence, suspicion and sync. config::Config holds one;
// read_membership and membership_json convert it from and to JSON, and
// options_from gives the protocol Options (src/membership/options.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>

#include "gossip/membership/swim.hpp"

namespace gossip::options {
class Section;
}

namespace gossip::membership {

struct MembershipConfig {
  int64_t probe_interval_ms = 1000;
  int64_t probe_timeout_ms = 500;  // < probe_interval_ms
  int indirect_probes = 3;
  double suspicion_mult = 4.0;       // suspect -> dead after mult * log2(n+1) * probe_interval
  int64_t sync_interval_ms = 10000;  // full member-list sync with a random member
  int64_t join_timeout_ms = 30000;   // how long a joining peer tries its seeds
};

// Reads the top-level object's optional "membership" section into `out`
// (defaults already there); problems are recorded through `top` as
// "membership.<key>: ...".
void read_membership(options::Section& top, MembershipConfig& out);

// The section as read_membership reads it.
nlohmann::json membership_json(const MembershipConfig& membership);

// The protocol options a config file asks for; the fields the config does
// not name keep their Options defaults, and reconnect attempts to dead
// members run every sync interval (that is what merges healed partitions).
Options options_from(const MembershipConfig& config);

}  // namespace gossip::membership
