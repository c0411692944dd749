// observe() and render_metrics(): the peer's numbers from its parts, and
// their Prometheus exposition (families, units and labels as
// docs/operations.md lists them).
#include "gossip/peer/observe.hpp"

#include <functional>

#ifndef GOSSIP_VERSION
#error "GOSSIP_VERSION must be defined (src/peer/meson.build passes meson's project version)"
#endif

namespace gossip::peer {

const char* build_version() {
  return GOSSIP_VERSION;
}

PeerObservation observe(const PeerFacts& facts, const TrainGauges::Reading& train,
                        const averaging::Counters& exchanges,
                        const std::vector<membership::Member>& members,
                        const net::CounterSnapshot& net) {
  PeerObservation o;
  o.facts = facts;
  o.train = train;
  o.exchanges_ok = exchanges.exchanges_ok;
  o.exchanges_busy = exchanges.exchanges_busy;
  o.exchanges_failed = exchanges.exchanges_failed;
  o.exchange_bytes_in = exchanges.bytes_in;
  o.exchange_bytes_out = exchanges.bytes_out;
  o.wire_bytes_in = net.bytes_received;
  o.wire_bytes_out = net.bytes_sent;
  o.members[static_cast<size_t>(membership::MemberState::kAlive)] = 1;  // this peer
  for (const auto& m : members) ++o.members[static_cast<size_t>(m.state)];
  o.exchange_s = exchanges.exchange_s;
  if (exchanges.exchanges_ok > 0) o.last_delta_norm = exchanges.last_delta_norm;
  return o;
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
  return e.take();
}

}  // namespace gossip::peer
