// The "gossip" section of a config file: reading and writing it, and what an
// Engine is built from: the Options it gives and the backend's ModelIdentity.
#include "gossip/averaging/options.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/averaging/engine.hpp"
#include "gossip/options/reader.hpp"

namespace gossip::averaging {

using options::Json;
using options::Section;

namespace {

// gossip.mode and gossip.outer. In outer mode gossip.outer.steps is the
// interval, so interval_steps / interval_ms given as well are an error.
void read_mode(Section& s, bool interval_given, GossipConfig& out) {
  std::string mode = gossip_mode_name(out.mode);
  if (s.choice("mode", {"params", "outer"}, mode)) out.mode = *parse_gossip_mode(mode);
  const bool outer = out.mode == GossipMode::kOuter;
  if (outer && interval_given) {
    s.error(out.interval_ms > 0 ? "interval_ms" : "interval_steps",
            "gossip.mode \"outer\" exchanges every gossip.outer.steps steps: remove it");
  }
  if (!s.only_if("outer", outer, "unless gossip.mode is \"outer\"")) return;
  Section o = s.child("outer");
  o.positive("steps", out.outer.steps);
  o.number_in("lr", out.outer.lr, 0.0, 10.0, true, false);
  o.number_in("momentum", out.outer.momentum, 0.0, 1.0, false, true);
  o.finish();
}

}  // namespace

void read_gossip(Section& top, GossipConfig& out) {
  Section s = top.child("gossip");
  const bool steps_given = s.non_negative("interval_steps", out.interval_steps);
  const bool ms_given = s.non_negative("interval_ms", out.interval_ms);
  if (ms_given && !steps_given) out.interval_steps = 0;  // the default yields to interval_ms
  if (out.interval_steps > 0 && out.interval_ms > 0) {
    s.error("interval_ms", "set gossip.interval_steps or gossip.interval_ms, not both");
  } else if (out.interval_steps == 0 && out.interval_ms == 0) {
    s.error("interval_steps", "one of gossip.interval_steps, gossip.interval_ms must be > 0");
  }
  std::vector<std::string> wire_names;
  for (const WireFormat f : kWireFormats) wire_names.emplace_back(wire_format_name(f));
  std::string wire = wire_format_name(out.wire.format);
  if (s.choice("wire", wire_names, wire)) {
    out.wire.format = parse_wire_format(wire).value();
  }
  // Codec parameters (codec.hpp), next to the codec they shape.
  const bool blocks = has_blocks(out.wire.format);
  if (s.only_if("wire_block", blocks, "unless gossip.wire is \"int8\" or \"randk\"")) {
    int64_t block = out.wire.block;
    if (s.integer("wire_block", block, kMinBlock, kMaxBlock)) {
      out.wire.block = static_cast<uint32_t>(block);
      if (auto st = check_codec(out.wire); !st) s.error("wire_block", st.message());
    }
  }
  Section randk = s.child("randk");
  if (randk.only_if("fraction", out.wire.format == WireFormat::kRandK,
                    "unless gossip.wire is \"randk\"")) {
    randk.number_in("fraction", out.wire.fraction, 0, 1, true, false);
  }
  randk.finish();
  s.positive("exchange_timeout_ms", out.exchange_timeout_ms);
  if (const Json* w = s.value("weight")) {
    const std::string expected =
        "\"samples\", \"uniform\" or a number > 0, got " + options::show(*w);
    if (w->is_string() && w->get<std::string>() == "samples") {
      out.weight = WeightMode::kSamples;
    } else if (w->is_string() && w->get<std::string>() == "uniform") {
      out.weight = WeightMode::kUniform;
      out.weight_value = 1.0;
    } else if (w->is_number() && w->get<double>() > 0 && std::isfinite(w->get<double>())) {
      out.weight = WeightMode::kFixed;
      out.weight_value = w->get<double>();
    } else {
      s.error("weight", "expected " + expected);
    }
  }
  s.positive("backoff_ms", out.backoff_ms);
  read_mode(s, steps_given || ms_given, out);
  // Measured: in outer mode randk gives the coordinates outside its sampled
  // blocks the outer momentum without the partner's pull, the replicas drift
  // apart and training diverges (docs/benchmarks.md "Outer mode").
  if (out.mode == GossipMode::kOuter && out.wire.format == WireFormat::kRandK) {
    s.error("wire",
            "\"randk\" does not work with gossip.mode \"outer\" (the replicas drift apart "
            "and training diverges): use \"int8\", \"bf16\" or \"fp32\"");
  }
  s.finish();
}

nlohmann::json gossip_json(const GossipConfig& g) {
  Json weight;
  switch (g.weight) {
    case WeightMode::kSamples:
      weight = "samples";
      break;
    case WeightMode::kUniform:
      weight = "uniform";
      break;
    case WeightMode::kFixed:
      weight = g.weight_value;
      break;
  }
  Json j = {{"interval_steps", g.interval_steps},
            {"interval_ms", g.interval_ms},
            {"wire", wire_format_name(g.wire.format)},
            {"exchange_timeout_ms", g.exchange_timeout_ms},
            {"weight", weight},
            {"backoff_ms", g.backoff_ms},
            {"mode", gossip_mode_name(g.mode)}};
  // Only the parameters read_gossip accepts for this codec.
  if (has_blocks(g.wire.format)) {
    j["wire_block"] = g.wire.block;
  }
  if (g.wire.format == WireFormat::kRandK) j["randk"] = {{"fraction", g.wire.fraction}};
  // Outer mode: outer.steps is the interval, and read_gossip refuses the
  // interval keys beside it.
  if (g.mode == GossipMode::kOuter) {
    j.erase("interval_steps");
    j.erase("interval_ms");
    j["outer"] = {{"steps", g.outer.steps}, {"lr", g.outer.lr}, {"momentum", g.outer.momentum}};
  }
  return j;
}

Options options_from(const GossipConfig& g, int64_t shard_samples) {
  Options o;
  o.interval_steps = g.interval_steps > 0 ? g.interval_steps : 10;
  o.interval = std::chrono::milliseconds(g.interval_ms);
  o.wire = g.wire;
  o.exchange_timeout = std::chrono::milliseconds(g.exchange_timeout_ms);
  o.backoff = std::chrono::milliseconds(g.backoff_ms);
  o.state_timeout = std::max(o.state_timeout, 3 * o.exchange_timeout);
  o.mode = g.mode;
  o.outer = g.outer;
  if (g.mode == GossipMode::kOuter) {
    o.interval_steps = g.outer.steps;
    o.interval = std::chrono::milliseconds(0);
  }
  switch (g.weight) {
    case WeightMode::kSamples:
      o.weight = static_cast<double>(std::max<int64_t>(1, shard_samples));
      break;
    case WeightMode::kUniform:
      o.weight = 1.0;
      break;
    case WeightMode::kFixed:
      o.weight = g.weight_value;
      break;
  }
  return o;
}

ModelIdentity identity_of(const train::Backend& backend) {
  return {backend.model().fingerprint(), backend.param_count(), backend.optimizer_state_count()};
}

}  // namespace gossip::averaging
