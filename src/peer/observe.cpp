// observe(), status_details() and render_metrics(): the peer's numbers from
// its parts, their STATUS form (docs/protocol.md) and their Prometheus
// exposition (families, units and labels as docs/operations.md lists them).
#include "gossip/peer/observe.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#ifndef GOSSIP_VERSION
#error "GOSSIP_VERSION must be defined (src/peer/meson.build passes meson's project version)"
#endif

namespace gossip::peer {

const char* build_version() {
  return GOSSIP_VERSION;
}

PeerObservation observe(const ObserveInputs& in) {
  PeerObservation o;
  o.facts = in.facts;
  o.train = in.train;
  o.exchanges_ok = in.exchanges.exchanges_ok;
  o.exchanges_busy = in.exchanges.exchanges_busy;
  o.exchanges_failed = in.exchanges.exchanges_failed;
  o.exchange_bytes_in = in.exchanges.bytes_in;
  o.exchange_bytes_out = in.exchanges.bytes_out;
  o.wire_bytes_in = in.net.bytes_received;
  o.wire_bytes_out = in.net.bytes_sent;
  o.members[static_cast<size_t>(membership::MemberState::kAlive)] = 1;  // this peer
  for (const auto& m : in.members) ++o.members[static_cast<size_t>(m.state)];
  o.exchange_s = in.exchanges.exchange_s;
  if (in.exchanges.exchanges_ok > 0) o.last_delta_norm = in.exchanges.last_delta_norm;
  o.sessions = in.sessions;
  const auto& open = in.session_peer_ids;
  for (const auto& m : in.members) {
    MemberView v;
    v.id = m.id;
    v.address = m.address;
    v.state = membership::state_name(m.state);
    v.incarnation = m.incarnation;
    v.is_private = m.is_private();
    const auto path = in.paths.find(m.id);
    const bool open_now = std::binary_search(open.begin(), open.end(), m.id);
    if (path != in.paths.end() && path->second.kind != net::PathKind::kDirect) {
      v.path_reason = path->second.reason;
    }
    const bool detour = path != in.paths.end() && (path->second.kind == net::PathKind::kPunched ||
                                                   path->second.kind == net::PathKind::kRelayed);
    if (open_now && detour) {
      v.reached = net::path_kind_name(path->second.kind);
    } else if (open_now) {
      // Dialed directly, or it came in from the member after our paths failed.
      v.reached = (m.flags & membership::kMemberMapped) ? "mapped" : "direct";
    } else if (path != in.paths.end() && path->second.kind == net::PathKind::kUnreachable) {
      v.reached = "unreachable";
    } else if (m.state == membership::MemberState::kSuspect ||
               m.state == membership::MemberState::kDead) {
      v.reached = "unreachable";
    } else {
      v.reached = "unknown";
    }
    if (auto it = in.exchanges.ok_by_peer.find(m.id); it != in.exchanges.ok_by_peer.end()) {
      v.exchanges = it->second;
    }
    o.view.push_back(std::move(v));
  }
  std::sort(o.view.begin(), o.view.end(),
            [](const MemberView& a, const MemberView& b) { return a.id < b.id; });
  if (in.reach) o.reach = *in.reach;
  o.traversal = in.traversal;
  o.relay_enabled = in.relay_enabled;
  o.reserved_relays = in.reserved_relays;
  return o;
}

nlohmann::json status_details(const PeerObservation& o, size_t max_view) {
  using nlohmann::json;
  json view = json::array();
  for (size_t i = 0; i < o.view.size() && i < max_view; ++i) {
    const MemberView& m = o.view[i];
    json entry = {{"id", m.id},
                  {"address", m.address},
                  {"state", m.state},
                  {"incarnation", m.incarnation},
                  {"reached", m.reached},
                  {"private", m.is_private},
                  {"exchanges", m.exchanges}};
    if (!m.path_reason.empty()) entry["path_reason"] = m.path_reason;
    view.push_back(std::move(entry));
  }
  json details = {
      {"version", o.facts.version},
      {"protocol", o.facts.protocol},
      {"listen", o.facts.listen},
      {"wire_format", o.facts.wire},
      {"loss", nullptr},
      {"test_loss", nullptr},
      {"test_accuracy", nullptr},
      {"exchanges",
       {{"ok", o.exchanges_ok}, {"busy", o.exchanges_busy}, {"failed", o.exchanges_failed}}},
      {"bytes", {{"in", o.exchange_bytes_in}, {"out", o.exchange_bytes_out}}},
      {"sessions", o.sessions},
      {"view", std::move(view)},
      {"view_total", o.view.size()}};
  // Every applied exchange of an outer-mode peer is one outer step (sync point).
  if (o.facts.mode == averaging::GossipMode::kOuter) {
    details["gossip"] = {{"mode", averaging::gossip_mode_name(o.facts.mode)},
                         {"outer",
                          {{"steps", o.facts.outer.steps},
                           {"lr", o.facts.outer.lr},
                           {"momentum", o.facts.outer.momentum},
                           {"syncs", o.exchanges_ok}}}};
  } else {
    details["gossip"] = {{"mode", averaging::gossip_mode_name(o.facts.mode)},
                         {"interval_steps", o.facts.interval_steps},
                         {"interval_ms", o.facts.interval_ms}};
  }
  if (o.reach) {
    const auto& r = *o.reach;
    auto or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
    details["reach"] = {{"state", membership::reachability_name(r.state)},
                        {"private", r.state == membership::Reachability::kPrivate},
                        {"observed", or_null(r.observed)},
                        {"observed_by", or_null(r.observed_by)},
                        {"address", r.address},
                        {"confirmed_by", or_null(r.confirmed_by)},
                        {"mapped", or_null(r.mapped)},
                        {"last_failure", or_null(r.last_failure)},
                        {"dialbacks_served", r.dialbacks_served},
                        {"dialbacks_refused", r.dialbacks_refused}};
  }
  const net::TraversalCounters& t = o.traversal;
  details["relay"] = {{"enabled", o.relay_enabled},
                      {"reserved_with", o.reserved_relays},
                      {"reservations", t.reservations},
                      {"circuits_active", t.circuits_active},
                      {"circuits_opened", t.circuits_opened},
                      {"bytes", t.relay_bytes},
                      {"refused",
                       {{"disabled", t.refused_disabled},
                        {"not_reserved", t.refused_not_reserved},
                        {"cap", t.refused_cap},
                        {"token", t.refused_token},
                        {"pair_timeout", t.pair_timeouts},
                        {"idle", t.idle_closed}}}};
  details["paths"] = {{"relayed_ok", t.relayed_ok},
                      {"relayed_failed", t.relayed_failed},
                      {"punched_ok", t.punched_ok},
                      {"punched_failed", t.punched_failed},
                      {"punch_rate_refused", t.punch_refused_rate}};
  if (!std::isnan(o.train.loss)) details["loss"] = o.train.loss;
  if (o.train.test_loss.has_value()) details["test_loss"] = o.train.test_loss.value();
  if (o.train.test_accuracy.has_value()) details["test_accuracy"] = o.train.test_accuracy.value();
  return details;
}

namespace {

using Peers = std::vector<LabeledObservation>;

Labels with(Labels labels, const char* name, std::string value) {
  labels.emplace_back(name, std::move(value));
  return labels;
}

// A family whose samples are one number per peer.
void per_peer(Exposition& e, const Peers& peers, const char* name, const char* type,
              const char* help,
              const std::function<std::optional<double>(const PeerObservation&)>& get) {
  e.family(name, type, help);
  for (const auto& p : peers) {
    if (auto v = get(p.observation)) e.sample(name, p.labels, *v);
  }
}

// A family with one extra label whose values each peer reports.
template <size_t N>
void per_label(Exposition& e, const Peers& peers, const char* name, const char* type,
               const char* help, const char* label, const std::array<const char*, N>& values,
               const std::function<double(const PeerObservation&, size_t)>& get) {
  e.family(name, type, help);
  for (const auto& p : peers) {
    for (size_t i = 0; i < N; ++i) {
      e.sample(name, with(p.labels, label, values[i]), get(p.observation, i));
    }
  }
}

void histogram(Exposition& e, const Peers& peers, const char* name, const char* help,
               const std::function<const core::SecondsHistogram&(const PeerObservation&)>& get) {
  e.family(name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  for (const auto& p : peers) {
    const core::SecondsHistogram& h = get(p.observation);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.kBounds.size(); ++i) {
      cumulative += h.counts[i];
      e.sample(bucket, with(p.labels, "le", format_sample_value(h.kBounds[i])),
               static_cast<double>(cumulative));
    }
    e.sample(bucket, with(p.labels, "le", "+Inf"), static_cast<double>(h.count));
    e.sample(std::string(name) + "_sum", p.labels, h.sum);
    e.sample(std::string(name) + "_count", p.labels, static_cast<double>(h.count));
  }
}

double num(uint64_t v) {
  return static_cast<double>(v);
}

}  // namespace

std::string render_metrics(const Peers& peers) {
  Exposition e;
  e.family("gossip_build_info", "gauge",
           "Always 1; the labels say which build, model fingerprint and wire format the peer "
           "runs.");
  for (const auto& p : peers) {
    const PeerFacts& f = p.observation.facts;
    Labels l = with(p.labels, "version", f.version);
    l = with(std::move(l), "peer_id", f.peer_id);
    l = with(std::move(l), "model", f.model);
    l = with(std::move(l), "wire", f.wire);
    e.sample("gossip_build_info", l, 1);
  }
  per_peer(e, peers, "gossip_train_steps_total", "counter", "Training steps this process has run.",
           [](const PeerObservation& o) { return static_cast<double>(o.train.steps_run); });
  per_peer(e, peers, "gossip_train_step", "gauge",
           "The model's step, including steps resumed from a checkpoint or downloaded from the "
           "swarm.",
           [](const PeerObservation& o) { return static_cast<double>(o.train.step); });
  per_peer(e, peers, "gossip_train_loss", "gauge",
           "Loss of the last training step (NaN before the first).",
           [](const PeerObservation& o) { return o.train.loss; });
  per_label<3>(
      e, peers, "gossip_exchanges_total", "counter",
      "Averaging exchanges by result: ok (delta applied), busy (the partner was in "
      "another exchange), failed (timeout, closed, refused, bad blob).",
      "result", {"ok", "busy", "failed"}, [](const PeerObservation& o, size_t i) {
        return num(i == 0 ? o.exchanges_ok : i == 1 ? o.exchanges_busy : o.exchanges_failed);
      });
  histogram(e, peers, "gossip_exchange_duration_seconds",
            "Seconds from OFFER to both snapshots validated, for exchanges that applied.",
            [](const PeerObservation& o) -> const core::SecondsHistogram& { return o.exchange_s; });
  per_peer(e, peers, "gossip_last_delta_norm", "gauge",
           "L2 norm of the parameter change the last applied exchange made.",
           [](const PeerObservation& o) { return o.last_delta_norm; });
  per_label<2>(e, peers, "gossip_exchange_bytes_total", "counter",
               "Bytes of averaging snapshots and state downloads received (in) and sent (out).",
               "direction", {"in", "out"}, [](const PeerObservation& o, size_t i) {
                 return num(i == 0 ? o.exchange_bytes_in : o.exchange_bytes_out);
               });
  per_label<2>(e, peers, "gossip_bytes_total", "counter",
               "Bytes on the wire of all the peer's sessions (every protocol, framing and "
               "encryption included).",
               "direction", {"in", "out"}, [](const PeerObservation& o, size_t i) {
                 return num(i == 0 ? o.wire_bytes_in : o.wire_bytes_out);
               });
  per_label<4>(
      e, peers, "gossip_members", "gauge",
      "Swarm members as this peer sees them, by state (alive includes this peer).", "state",
      {"alive", "suspect", "dead", "left"},
      [](const PeerObservation& o, size_t i) { return static_cast<double>(o.members[i]); });
  per_peer(e, peers, "gossip_relay_circuits", "gauge",
           "Relay circuits this peer carries now (both halves paired).",
           [](const PeerObservation& o) { return num(o.traversal.circuits_active); });
  per_peer(e, peers, "gossip_relay_bytes_total", "counter",
           "Bytes this peer copied as a relay, both directions of every circuit.",
           [](const PeerObservation& o) { return num(o.traversal.relay_bytes); });
  per_label<6>(e, peers, "gossip_relay_refused_total", "counter",
               "What this peer refused as a relay, by cause.", "cause",
               {"disabled", "not_reserved", "cap", "token", "pair_timeout", "idle"},
               [](const PeerObservation& o, size_t i) {
                 const net::TraversalCounters& t = o.traversal;
                 const uint64_t v[] = {t.refused_disabled, t.refused_not_reserved, t.refused_cap,
                                       t.refused_token,    t.pair_timeouts,        t.idle_closed};
                 return num(v[i]);
               });
  per_label<4>(
      e, peers, "gossip_paths_total", "counter",
      "Sessions to members opened by a detour, and detours that failed.", "path",
      {"punched", "punch_failed", "relayed", "relay_failed"},
      [](const PeerObservation& o, size_t i) {
        const net::TraversalCounters& t = o.traversal;
        const uint64_t v[] = {t.punched_ok, t.punched_failed, t.relayed_ok, t.relayed_failed};
        return num(v[i]);
      });
  return e.take();
}

}  // namespace gossip::peer
