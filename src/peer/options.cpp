// The config sections owned by the peer module: "peer" (network identity,
// keys, bootstrap, data folder), "checkpoint" and "metrics"; reading and
// writing them.
#include "gossip/peer/options.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gossip/options/reader.hpp"

namespace gossip::peer {

namespace {

using options::Json;
using options::Section;

void read_bootstrap(Section& s, std::vector<core::Endpoint>& out) {
  const Json* v = s.value("bootstrap");
  if (v == nullptr) return;
  if (!v->is_array()) {
    s.error("bootstrap", "expected an array of \"host:port\" strings, got " + options::show(*v));
    return;
  }
  std::vector<core::Endpoint> list;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    const std::string key = "bootstrap[" + std::to_string(i) + "]";
    if (!e.is_string()) {
      s.error(key.c_str(), "expected a \"host:port\" string, got " + options::show(e));
      continue;
    }
    auto parsed = core::parse_endpoint(e.get<std::string>(), false);
    if (!parsed) {
      s.error(key.c_str(), parsed.status().message());
      continue;
    }
    list.push_back(std::move(parsed).value());
  }
  out = std::move(list);
}

Json endpoint_or_null(const core::Endpoint& e) {
  return e.host.empty() ? Json(nullptr) : Json(e.to_string());
}

}  // namespace

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
  s.service_address("http", out.http);
  s.finish();
}

nlohmann::json peer_json(const PeerConfig& p) {
  Json bootstrap = Json::array();
  for (const auto& e : p.bootstrap) bootstrap.push_back(e.to_string());
  return {{"network", p.network},
          {"listen", p.listen.to_string()},
          {"advertise", endpoint_or_null(p.advertise)},
          {"identity_key", p.identity_key.string()},
          {"swarm_key", p.swarm_key.string()},
          {"bootstrap", bootstrap},
          {"data_dir", p.data_dir.string()}};
}

nlohmann::json checkpoint_json(const CheckpointConfig& c) {
  return {{"every_steps", c.every_steps}, {"keep", c.keep}, {"dir", c.dir.string()}};
}

nlohmann::json metrics_json(const MetricsConfig& m) {
  return {{"file", m.file.string()},
          {"every_steps", m.every_steps},
          {"progress_every_s", m.progress_every_s},
          {"http", m.http.enabled() ? Json(m.http.to_string()) : Json(nullptr)}};
}

}  // namespace gossip::peer
