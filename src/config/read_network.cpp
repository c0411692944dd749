// Readers for the sections that describe the peer on the network and what it
// writes: peer, gossip, membership, net (limits), checkpoint and metrics.
#include <cmath>
#include <string>

#include "sections.hpp"

namespace gossip::config::detail {

const std::vector<std::string> kWireNames = {"fp32", "bf16", "fp16"};

namespace {

void read_bootstrap(Section& s, std::vector<Endpoint>& out) {
  const Json* v = s.value("bootstrap");
  if (v == nullptr) return;
  if (!v->is_array()) {
    s.error("bootstrap", "expected an array of \"host:port\" strings, got " + show(*v));
    return;
  }
  std::vector<Endpoint> list;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    const std::string key = "bootstrap[" + std::to_string(i) + "]";
    if (!e.is_string()) {
      s.error(key.c_str(), "expected a \"host:port\" string, got " + show(e));
      continue;
    }
    auto parsed = parse_endpoint(e.get<std::string>(), false);
    if (!parsed) {
      s.error(key.c_str(), parsed.status().message());
      continue;
    }
    list.push_back(std::move(parsed).value());
  }
  out = std::move(list);
}

}  // namespace

void service_address(Section& s, const char* key, ServiceAddress& out) {
  const Json* v = s.value(key);
  if (v == nullptr) return;
  if (!v->is_string()) {
    s.error(key, "expected a \"host:port\", \":port\" or \"port\" string, got " + show(*v));
    return;
  }
  auto parsed = parse_service_address(v->get<std::string>());
  if (!parsed) {
    s.error(key, parsed.status().message());
    return;
  }
  out = std::move(parsed).value();
}

void read_peer(Section& top, PeerConfig& out) {
  Section s = top.child("peer");
  s.boolean("network", out.network);
  s.endpoint("listen", out.listen, true);
  if (s.endpoint("advertise", out.advertise, false) && out.advertise.is_wildcard()) {
    s.error("advertise",
            "must be an address other peers can dial, got " + out.advertise.to_string());
  }
  if (out.network && out.listen.is_wildcard() && out.advertise.host.empty()) {
    s.error("advertise",
            "required when peer.listen (" + out.listen.to_string() +
                ") binds all interfaces: the address other peers dial to reach this one");
  }
  s.path("identity_key", out.identity_key);
  s.path("swarm_key", out.swarm_key);
  read_bootstrap(s, out.bootstrap);
  out.data_dir = (s.base_dir() / "gossip-data").lexically_normal();
  s.path("data_dir", out.data_dir);  // parse_config fills the paths that default into it
  s.finish();
}

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
  std::string wire = wire_format_name(out.wire);
  if (s.choice("wire", kWireNames, wire)) out.wire = parse_wire_format(wire).value();
  s.positive("exchange_timeout_ms", out.exchange_timeout_ms);
  if (const Json* w = s.value("weight")) {
    const std::string expected = "\"samples\", \"uniform\" or a number > 0, got " + show(*w);
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
  s.finish();
}

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

void read_net(Section& top, NetConfig& out) {
  Section s = top.child("net");
  s.positive("handshake_timeout_ms", out.handshake_timeout_ms);
  s.positive("idle_timeout_ms", out.idle_timeout_ms);
  s.positive("max_sessions", out.max_sessions);
  s.positive("max_pending_handshakes", out.max_pending_handshakes);
  s.positive("max_pending_per_address", out.max_pending_per_address);
  if (out.max_pending_per_address > out.max_pending_handshakes) {
    s.error("max_pending_per_address", "must not exceed net.max_pending_handshakes (" +
                                           std::to_string(out.max_pending_handshakes) + "), got " +
                                           std::to_string(out.max_pending_per_address));
  }
  s.integer("max_control_frame", out.max_control_frame, 1024, 16 << 20);
  s.choice("cipher", {"chachapoly", "aesgcm"}, out.cipher);
  s.finish();
}

void read_checkpoint(Section& top, CheckpointConfig& out) {
  Section s = top.child("checkpoint");
  s.non_negative("every_steps", out.every_steps);
  s.positive("keep", out.keep);
  s.path("dir", out.dir);
  s.finish();
}

void read_metrics(Section& top, MetricsConfig& out) {
  Section s = top.child("metrics");
  s.path("file", out.file);
  s.non_negative("every_steps", out.every_steps);
  s.number("progress_every_s", out.progress_every_s, 0.0, false);
  service_address(s, "http", out.http);
  s.finish();
}

}  // namespace gossip::config::detail
