#include "relay_keeper.hpp"

#include <algorithm>
#include <asio/post.hpp>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"

namespace gossip::peer {

RelayKeeper::RelayKeeper(asio::io_context& io, net::Node& node, membership::Swarm& swarm,
                         membership::Reach& reach, net::Traversal& traversal,
                         std::vector<std::string> seeds)
    : io_(io),
      node_(node),
      swarm_(swarm),
      reach_(reach),
      traversal_(traversal),
      seeds_(std::move(seeds)),
      timer_(io) {}

void RelayKeeper::start() {
  asio::post(io_, [this] { tick(); });
}

void RelayKeeper::tick() {
  if (stop_) return;
  tend();
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec && !stop_) tick();
  });
}

void RelayKeeper::tend() {
  using Clock = std::chrono::steady_clock;
  // A reservation not granted within this long (the relay refuses, or its
  // address does not answer) gives way to another member for a minute.
  constexpr auto kReserveGrace = std::chrono::seconds(15);
  constexpr auto kShun = std::chrono::seconds(60);
  const net::RelayConfig& rc = node_.config().relay;
  const auto now = Clock::now();
  const auto reach_state = reach_.status().state;
  const bool forced = rc.reserve;
  const bool want =
      forced || (rc.auto_reserve && reach_state == membership::Reachability::kPrivate);
  if (want != reserving_) {
    if (want) {
      core::log_info("relay", forced ? "net.relay.reserve: reserving relays"
                                     : "this peer is private: reserving relays with public "
                                       "members so that other private peers reach it");
    } else {
      core::log_info("relay", "this peer is " +
                                  std::string(membership::reachability_name(reach_state)) +
                                  ": releasing its relay reservations");
    }
    reserving_ = want;
  }
  const auto members = swarm_.live_members();
  std::map<std::string, const membership::Member*> live;  // public live members by id
  for (const auto& m : members) {
    if (!m.is_private()) live[m.id] = &m;
  }
  const auto granted = traversal_.reserved_relays();
  auto is_granted = [&](const Reservation& r) {
    return r.id && std::find(granted.begin(), granted.end(), *r.id) != granted.end();
  };
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    Reservation& r = it->second;
    std::string why;
    if (!want) {
      why = "not needed";
    } else if (r.id && live.count(*r.id) == 0) {
      why = "the relay left the view or is no longer public";
    } else if (r.id && !is_granted(r) && now - r.since > kReserveGrace) {
      // (A bootstrap address named by net.relay.reserve is kept regardless.)
      why = "not granted within " + std::to_string(kReserveGrace.count()) + " s";
      shunned_[*r.id] = now + kShun;
    }
    if (why.empty()) {
      ++it;
      continue;
    }
    core::log_info("relay", "dropping the reservation with " + it->first + ": " + why);
    traversal_.release(r.endpoint);
    it = reservations_.erase(it);
  }
  if (!want || reservations_.size() >= rc.reserve_count) return;
  // Candidates: with net.relay.reserve the bootstrap addresses first (the
  // public members a person named), then public live members at random.
  std::vector<Reservation> candidates;
  if (forced) {
    for (const std::string& seed : seeds_) {
      if (auto ep = core::parse_endpoint(seed); ep) candidates.push_back({*ep, std::nullopt, now});
    }
  }
  std::vector<const membership::Member*> shuffled;
  for (const auto& [id, m] : live) {
    auto shun = shunned_.find(id);
    if (shun != shunned_.end() && shun->second > now) continue;
    shuffled.push_back(m);
  }
  std::shuffle(shuffled.begin(), shuffled.end(), rng_);
  // Members this peer holds a session with that no detour opened first: a
  // member not (yet) known to be private may be one; such a one is not.
  const auto paths = traversal_.paths();
  std::stable_partition(shuffled.begin(), shuffled.end(), [&](const membership::Member* m) {
    auto p = paths.find(m->id);
    const bool detour = p != paths.end() && p->second.kind != net::PathKind::kDirect;
    return node_.session_to(m->id) && !detour;
  });
  for (const auto* m : shuffled) {
    if (auto ep = core::parse_endpoint(m->address); ep) candidates.push_back({*ep, m->id, now});
  }
  for (auto& c : candidates) {
    if (reservations_.size() >= rc.reserve_count) break;
    const std::string address = c.endpoint.to_string();
    if (reservations_.count(address) != 0) continue;
    bool same_relay = false;
    for (const auto& [a, r] : reservations_) same_relay |= c.id && r.id == c.id;
    if (same_relay) continue;
    core::log_info("relay", "reserving with relay " + address +
                                (c.id ? " (" + core::short_peer_id(*c.id) + ")" : ""));
    traversal_.reserve_with(c.endpoint, c.id);
    reservations_.emplace(address, std::move(c));
  }
  if (reservations_.empty()) {
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "no-relay",
                           "no public member to reserve a relay with yet");
  }
}

}  // namespace gossip::peer
