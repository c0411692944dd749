// The "membership" section of a config file: reading and writing it, and
// the protocol Options it gives. Kept apart from the state machine, which
// needs no config.
#include "gossip/membership/options.hpp"

#include <nlohmann/json.hpp>
#include <string>

#include "gossip/options/reader.hpp"

namespace gossip::membership {

using options::Section;

void read_membership(Section& top, MembershipConfig& out) {
  Section s = top.child("membership");
  s.positive("probe_interval_ms", out.probe_interval_ms);
  s.positive("probe_timeout_ms", out.probe_timeout_ms);
  if (out.probe_timeout_ms >= out.probe_interval_ms) {
    s.error("probe_timeout_ms", "must be below membership.probe_interval_ms (" +
                                    std::to_string(out.probe_interval_ms) + "), got " +
                                    std::to_string(out.probe_timeout_ms));
  }
  s.non_negative("indirect_probes", out.indirect_probes);
  s.number("suspicion_mult", out.suspicion_mult, 1.0, false);
  s.positive("sync_interval_ms", out.sync_interval_ms);
  s.positive("join_timeout_ms", out.join_timeout_ms);
  s.finish();
}

nlohmann::json membership_json(const MembershipConfig& m) {
  return {{"probe_interval_ms", m.probe_interval_ms}, {"probe_timeout_ms", m.probe_timeout_ms},
          {"indirect_probes", m.indirect_probes},     {"suspicion_mult", m.suspicion_mult},
          {"sync_interval_ms", m.sync_interval_ms},   {"join_timeout_ms", m.join_timeout_ms}};
}

Options options_from(const MembershipConfig& c) {
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
