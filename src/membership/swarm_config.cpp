// options_from: the membership section of a config file as protocol
// Options. Kept apart so that the state machine itself needs no config.
#include "gossip/config/config.hpp"
#include "gossip/membership/swarm.hpp"

namespace gossip::membership {

Options options_from(const config::MembershipConfig& c) {
  Options o;
  o.probe_interval = Millis(c.probe_interval_ms);
  o.probe_timeout = Millis(c.probe_timeout_ms);
  o.indirect_probes = c.indirect_probes;
  o.suspicion_mult = c.suspicion_mult;
  o.sync_interval = Millis(c.sync_interval_ms);
  // Reconnect attempts to dead members are what merges a healed partition:
  // one per sync interval keeps that within two sync intervals.
  o.reconnect_interval = o.sync_interval;
  return o;
}

}  // namespace gossip::membership
