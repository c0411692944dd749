// Observe (include/gossip/peer/observe.hpp): the one place that gathers what
// a peer reports about itself, and its STATUS form.
#include "gossip/peer/observe.hpp"

#include <nlohmann/json.hpp>

#include "gossip/averaging/engine.hpp"
#include "gossip/membership/swarm.hpp"
#include "gossip/net/node.hpp"

#ifndef GOSSIP_VERSION
#error "GOSSIP_VERSION must be defined (src/peer/meson.build passes meson's project version)"
#endif

namespace gossip::peer {
namespace {

nlohmann::json optional_number(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

const char* gossip_version() {
  return GOSSIP_VERSION;
}

void TrainingBoard::set_step(int64_t step) {
  std::lock_guard lock(mu_);
  figures_.step = step;
}
void TrainingBoard::set_loss(double loss) {
  std::lock_guard lock(mu_);
  figures_.loss = loss;
}
void TrainingBoard::set_eval(double test_loss, std::optional<double> test_accuracy) {
  std::lock_guard lock(mu_);
  figures_.test_loss = test_loss;
  figures_.test_accuracy = test_accuracy;
}
TrainingFigures TrainingBoard::get() const {
  std::lock_guard lock(mu_);
  return figures_;
}

PeerObservation observe(const ObserveSources& src) {
  PeerObservation o;
  o.peer_id = src.node.peer_id();
  o.version = gossip_version();
  o.listen = src.listen;
  o.model = src.model;
  o.wire_format = src.wire_format;
  o.training = src.training.get();

  const auto c = src.engine.counters();
  o.network.exchanges_ok = static_cast<int64_t>(c.exchanges_ok);
  o.network.exchanges_busy = static_cast<int64_t>(c.exchanges_busy);
  o.network.exchanges_failed = static_cast<int64_t>(c.exchanges_failed);
  o.network.bytes_in = static_cast<int64_t>(c.bytes_in);
  o.network.bytes_out = static_cast<int64_t>(c.bytes_out);
  o.network.members_alive = static_cast<int64_t>(src.swarm.live_count()) + 1;
  o.network.exchange_s_total = c.total_exchange_s;
  if (c.exchanges_ok > 0) o.network.last_delta_norm = c.last_delta_norm;

  o.sessions = src.node.session_count();
  const std::vector<std::string> open = src.node.session_peer_ids();  // sorted
  for (const auto& m : src.swarm.members()) {
    MemberView v;
    v.id = m.id;
    v.address = m.address;
    v.state = membership::state_name(m.state);
    v.incarnation = m.incarnation;
    if (std::binary_search(open.begin(), open.end(), m.id)) {
      v.reached = "direct";
    } else if (m.state == membership::MemberState::kSuspect ||
               m.state == membership::MemberState::kDead) {
      v.reached = "unreachable";
    } else {
      v.reached = "unknown";
    }
    if (auto it = c.ok_by_peer.find(m.id); it != c.ok_by_peer.end()) v.exchanges = it->second;
    o.view.push_back(std::move(v));
  }
  return o;
}

nlohmann::json status_details(const PeerObservation& o, size_t max_view) {
  nlohmann::json view = nlohmann::json::array();
  for (size_t i = 0; i < o.view.size() && i < max_view; ++i) {
    const MemberView& m = o.view[i];
    view.push_back({{"id", m.id},
                    {"address", m.address},
                    {"state", m.state},
                    {"incarnation", m.incarnation},
                    {"reached", m.reached},
                    {"exchanges", m.exchanges}});
  }
  const auto& n = o.network;
  return {{"version", o.version},
          {"protocol", o.protocol},
          {"listen", o.listen},
          {"wire_format", o.wire_format},
          {"loss", optional_number(o.training.loss)},
          {"test_loss", optional_number(o.training.test_loss)},
          {"test_accuracy", optional_number(o.training.test_accuracy)},
          {"exchanges",
           {{"ok", n.exchanges_ok}, {"busy", n.exchanges_busy}, {"failed", n.exchanges_failed}}},
          {"bytes", {{"in", n.bytes_in}, {"out", n.bytes_out}}},
          {"sessions", o.sessions},
          {"view", std::move(view)},
          {"view_total", o.view.size()}};
}

}  // namespace gossip::peer
