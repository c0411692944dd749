// The "gossip" section of a config file, owned by the averaging module: when
// to exchange, in which wire format, with which weight. config::Config holds
// one; read_gossip and gossip_json convert it from and to JSON, and
// options_from (engine.hpp) turns it into the Engine's Options
// (src/averaging/options.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>

#include "gossip/averaging/codec.hpp"
#include "gossip/averaging/outer.hpp"

namespace gossip::options {
class Section;
}

namespace gossip::averaging {

enum class WeightMode { kSamples, kUniform, kFixed };

struct GossipConfig {
  int64_t interval_steps = 10;  // exactly one of interval_steps /
  int64_t interval_ms = 0;      // interval_ms is > 0
  WireCodec wire;               // gossip.wire, gossip.wire_block, gossip.randk.fraction
  int64_t exchange_timeout_ms = 10000;
  WeightMode weight = WeightMode::kSamples;  // samples in this peer's shard
  double weight_value = 1.0;                 // kFixed: the number; kUniform: 1
  int64_t backoff_ms = 200;                  // base of the jittered exponential backoff
  GossipMode mode = GossipMode::kParams;     // gossip.mode
  OuterOptions outer;                        // gossip.outer (outer mode only)
};

// Reads the top-level object's optional "gossip" section into `out`
// (defaults already there); problems are recorded through `top` as
// "gossip.<key>: ...".
void read_gossip(options::Section& top, GossipConfig& out);

// The section as read_gossip reads it ("weight": "samples", "uniform" or the
// number).
nlohmann::json gossip_json(const GossipConfig& gossip);

}  // namespace gossip::averaging
