// Membership, first half: construction, the owner-facing driving calls
// (join, leave, tick, on_message) and the SWIM probe cycle with indirect
// probes, suspicion timeouts, periodic sync and reconnect attempts.
#include "gossip/membership/swim.hpp"

#include <algorithm>
#include <cmath>

namespace gossip::membership {

namespace {

bool is_active(MemberState s) {
  return s == MemberState::kAlive || s == MemberState::kSuspect;
}

Millis jittered(Millis base, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> f(lo, hi);
  return Millis(static_cast<int64_t>(static_cast<double>(base.count()) * f(rng)));
}

}  // namespace

const char* event_kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::kJoined:
      return "joined";
    case EventKind::kAlive:
      return "alive";
    case EventKind::kSuspect:
      return "suspect";
    case EventKind::kDead:
      return "dead";
    case EventKind::kLeft:
      return "left";
  }
  return "unknown";
}

core::Status Options::validate() const {
  auto bad = [](const std::string& m) { return core::invalid_argument("membership: " + m); };
  if (probe_interval.count() < 10) return bad("probe_interval_ms must be >= 10");
  if (probe_timeout.count() < 1 || probe_timeout >= probe_interval) {
    return bad("probe_timeout_ms must be >= 1 and < probe_interval_ms");
  }
  if (indirect_probes < 0 || indirect_probes > 16) return bad("indirect_probes must be 0..16");
  if (!(suspicion_mult >= 1.0 && suspicion_mult <= 100.0))
    return bad("suspicion_mult must be 1..100");
  if (!(suspicion_min_fraction > 0.0 && suspicion_min_fraction <= 1.0)) {
    return bad("suspicion_min_fraction must be in (0, 1]");
  }
  if (suspicion_confirmations < 1) return bad("suspicion_confirmations must be >= 1");
  if (sync_interval < probe_interval) return bad("sync_interval_ms must be >= probe_interval_ms");
  if (reconnect_interval < probe_interval)
    return bad("reconnect_interval_ms must be >= probe_interval_ms");
  if (!(retransmit_mult >= 1.0 && retransmit_mult <= 100.0))
    return bad("retransmit_mult must be 1..100");
  if (piggyback_bytes < 128 || piggyback_bytes > 16384)
    return bad("piggyback_bytes must be 128..16384");
  if (max_body_bytes < 4096 || max_body_bytes > kMaxBodyBytes) {
    return bad("max_body_bytes must be 4096.." + std::to_string(kMaxBodyBytes));
  }
  if (max_local_health < 0 || max_local_health > 64) return bad("max_local_health must be 0..64");
  if (join_retry.count() < 1) return bad("join_retry_ms must be >= 1");
  return core::Status::ok();
}

core::Result<Membership> Membership::create(const Options& options, std::string self_id,
                                            std::string self_address, uint64_t incarnation,
                                            uint64_t seed, TimePoint now) {
  GOSSIP_RETURN_IF_ERROR(options.validate());
  if (!is_valid_peer_id(self_id)) {
    return core::invalid_argument("membership: own peer id must be 64 lowercase hex characters");
  }
  if (auto st = validate_address(self_address); !st.is_ok()) {
    return core::invalid_argument("membership: own advertised address: " + st.message());
  }
  if (incarnation >= kMaxIncarnation) {
    return core::invalid_argument("membership: incarnation must be < 2^53 - 1");
  }
  return Membership(
      options,
      Member{std::move(self_id), std::move(self_address), incarnation, MemberState::kAlive}, seed,
      now);
}

Membership::Membership(const Options& options, Member self, uint64_t seed, TimePoint now)
    : options_(options), self_(std::move(self)), rng_(seed) {
  next_probe_ = now + jittered(options_.probe_interval, rng_, 0.0, 1.0);
  next_sync_ = now + jittered(options_.sync_interval, rng_, 0.5, 1.5);
  next_reconnect_ = now + jittered(options_.reconnect_interval, rng_, 0.5, 1.5);
  next_join_ = TimePoint::max();
  next_reap_ = now + Millis(1000);
  broadcast(Update{self_, ""});
}

void Membership::join(const std::vector<std::string>& seed_addresses, TimePoint now) {
  seeds_.clear();
  for (const auto& s : seed_addresses) {
    if (s != self_.address && validate_address(s).is_ok()) seeds_.push_back(s);
  }
  if (seeds_.empty()) {
    joined_ = true;
    return;
  }
  joined_ = false;
  for (const auto& s : seeds_) send("", s, make(MessageType::kJoin));
  next_join_ = now + options_.join_retry;
}

void Membership::leave(TimePoint /*now*/) {
  if (left_) return;
  for (const auto& [id, e] : members_) {
    if (is_active(e.m.state)) send(id, e.m.address, make(MessageType::kLeave));
  }
  self_.state = MemberState::kLeft;
  left_ = true;
  probe_.active = false;
}

Millis Membership::scaled(Millis base) const {
  return base * (1 + health_);
}

Millis Membership::suspicion_timeout(int confirmations) const {
  const double n = static_cast<double>(view_size());
  const double max_ms = options_.suspicion_mult * std::log2(n + 1) *
                        static_cast<double>(options_.probe_interval.count());
  const double min_ms = std::max(static_cast<double>(options_.probe_interval.count()),
                                 max_ms * options_.suspicion_min_fraction);
  const double k = options_.suspicion_confirmations;
  const double frac = std::min(1.0, std::log(confirmations + 1.0) / std::log(k + 1.0));
  return Millis(static_cast<int64_t>(std::max(min_ms, max_ms - (max_ms - min_ms) * frac)));
}

void Membership::tick(TimePoint now) {
  if (left_) return;
  for (auto it = relays_.begin(); it != relays_.end();) {
    Relay& r = it->second;
    if (!r.nacked && now >= r.nack_at) {
      r.nacked = true;
      Message n = make(MessageType::kNack);
      n.seq = r.requester_seq;
      n.target = r.target;
      send(r.requester, r.requester_address, std::move(n));
    }
    it = now >= r.expires ? relays_.erase(it) : std::next(it);
  }
  if (!joined_ && now >= next_join_) {
    for (const auto& s : seeds_) send("", s, make(MessageType::kJoin));
    next_join_ = now + options_.join_retry;
  }
  if (probe_.active) {
    if (!probe_.acked && !probe_.indirect_sent &&
        now >= probe_.sent + scaled(options_.probe_timeout)) {
      send_indirect(now);
    }
    if (now >= probe_.end) finish_probe(now);
  }
  if (now >= next_probe_ && !probe_.active) {
    start_probe(now);
    next_probe_ = now + scaled(options_.probe_interval);
  }
  check_suspicions(now);
  if (now >= next_sync_ || now >= next_reconnect_) run_sync(now);
  if (now >= next_reap_) {
    reap(now);
    next_reap_ = now + Millis(1000);
  }
}

TimePoint Membership::next_deadline() const {
  if (left_) return TimePoint::max();
  TimePoint t = std::min({next_probe_, next_sync_, next_reconnect_, next_reap_});
  if (!joined_) t = std::min(t, next_join_);
  if (probe_.active) {
    t = std::min(t, probe_.end);
    if (!probe_.acked && !probe_.indirect_sent)
      t = std::min(t, probe_.sent + scaled(options_.probe_timeout));
  }
  for (const auto& [seq, r] : relays_) t = std::min(t, r.nacked ? r.expires : r.nack_at);
  for (const auto& id : suspects_) {
    const Entry& e = members_.find(id)->second;
    t = std::min(t, e.since + suspicion_timeout(static_cast<int>(e.accusers.size()) - 1));
  }
  return t;
}

void Membership::start_probe(TimePoint now) {
  const size_t attempts = probe_order_.size() + 1;
  for (size_t a = 0; a < attempts; ++a) {
    if (probe_index_ >= probe_order_.size()) {
      probe_order_.clear();
      for (const auto& [id, e] : members_) {
        if (is_active(e.m.state)) probe_order_.push_back(id);
      }
      std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
      probe_index_ = 0;
      if (probe_order_.empty()) return;
    }
    const std::string& id = probe_order_[probe_index_++];
    auto it = members_.find(id);
    if (it == members_.end() || !is_active(it->second.m.state)) continue;
    probe_ = Probe{};
    probe_.active = true;
    probe_.target = id;
    probe_.address = it->second.m.address;
    probe_.seq = next_seq_++;
    probe_.sent = now;
    probe_.end = now + scaled(options_.probe_interval);
    ++stats_.probes;
    Message m = make(MessageType::kPing);
    m.seq = probe_.seq;
    m.target = id;
    send(id, probe_.address, std::move(m));
    return;
  }
}

void Membership::send_indirect(TimePoint /*now*/) {
  probe_.indirect_sent = true;
  std::vector<const Member*> helpers;
  for (const auto& [id, e] : members_) {
    if (e.m.state == MemberState::kAlive && id != probe_.target) helpers.push_back(&e.m);
  }
  std::shuffle(helpers.begin(), helpers.end(), rng_);
  helpers.resize(std::min(helpers.size(), static_cast<size_t>(options_.indirect_probes)));
  if (!helpers.empty()) ++stats_.indirect_rounds;
  for (const Member* h : helpers) {
    probe_.helpers.push_back(h->id);
    Message m = make(MessageType::kPingReq);
    m.seq = probe_.seq;
    m.target = probe_.target;
    m.target_address = probe_.address;
    send(h->id, h->address, std::move(m));
  }
}

void Membership::finish_probe(TimePoint now) {
  probe_.active = false;
  if (probe_.acked) {
    health_ = std::max(0, health_ - 1);
    return;
  }
  ++stats_.probe_failures;
  // Lifeguard: helpers that did not even NACK point at our own network.
  if (probe_.helpers.empty() || probe_.nacks < static_cast<int>(probe_.helpers.size())) {
    health_ = std::min(options_.max_local_health, health_ + 1);
  }
  suspect(probe_.target, self_.id, now);
}

void Membership::check_suspicions(TimePoint now) {
  std::vector<std::string> expired;
  for (const auto& id : suspects_) {
    const Entry& e = members_.find(id)->second;
    if (now >= e.since + suspicion_timeout(static_cast<int>(e.accusers.size()) - 1))
      expired.push_back(id);
  }
  for (const auto& id : expired) {
    Member m = members_.find(id)->second.m;
    m.state = MemberState::kDead;
    apply(Update{m, ""}, Source::kGossip, self_.id, now);
  }
}

void Membership::run_sync(TimePoint now) {
  auto pick = [&](auto pred) -> const Member* {
    std::vector<const Member*> c;
    for (const auto& [id, e] : members_) {
      if (pred(e.m.state)) c.push_back(&e.m);
    }
    if (c.empty()) return nullptr;
    std::uniform_int_distribution<size_t> d(0, c.size() - 1);
    return c[d(rng_)];
  };
  if (now >= next_sync_) {
    const double n = static_cast<double>(view_size());
    const int mult = n > 32 ? static_cast<int>(std::ceil(std::log2(n / 32.0))) + 1 : 1;
    next_sync_ = now + jittered(options_.sync_interval * mult, rng_, 0.75, 1.25);
    if (const Member* m = pick([](MemberState s) { return s == MemberState::kAlive; })) {
      ++stats_.syncs;
      send_list(m->id, m->address, MessageType::kSyncReq);
    }
  }
  if (now >= next_reconnect_) {
    next_reconnect_ = now + jittered(options_.reconnect_interval, rng_, 0.75, 1.25);
    if (const Member* m = pick([](MemberState s) { return s == MemberState::kDead; })) {
      ++stats_.syncs;
      send_list(m->id, m->address, MessageType::kSyncReq);
    }
  }
}

void Membership::reap(TimePoint now) {
  for (auto it = members_.begin(); it != members_.end();) {
    const Entry& e = it->second;
    const bool expired =
        (e.m.state == MemberState::kDead && now - e.since >= options_.dead_retention) ||
        (e.m.state == MemberState::kLeft && now - e.since >= options_.left_retention);
    it = expired ? members_.erase(it) : std::next(it);
  }
}

core::Status Membership::on_message(std::string_view from_peer_id, const Message& m,
                                    TimePoint now) {
  const char* type = message_type_name(m.type);
  auto reject = [&](const std::string& why) {
    ++stats_.rejected;
    return core::protocol_error(std::string("membership ") + type + ": " + why);
  };
  if (left_) return core::Status(core::Code::kClosed, "membership: this peer has left the swarm");
  if (m.from != from_peer_id) {
    return reject("sender claims id " + m.from.substr(0, 16) +
                  "… but the session is authenticated as " +
                  std::string(from_peer_id.substr(0, 16)) + "…");
  }
  if (m.from == self_.id) return reject("message claims to come from this peer's own id");
  if (!is_valid_peer_id(m.from) || !validate_address(m.from_address).is_ok() ||
      m.from_incarnation > kMaxIncarnation) {
    return reject("malformed sender fields");
  }
  for (const auto* list : {&m.updates}) {
    for (const auto& u : *list) {
      if (!is_valid_peer_id(u.member.id) || u.member.incarnation > kMaxIncarnation) {
        return reject("malformed update");
      }
    }
  }
  for (const auto& mm : m.members) {
    if (!is_valid_peer_id(mm.id) || mm.incarnation > kMaxIncarnation)
      return reject("malformed list entry");
  }
  if (m.type == MessageType::kPing && m.target != self_.id) {
    return reject("PING addressed to " + m.target.substr(0, 16) + "…, not to this peer");
  }
  if (m.type == MessageType::kPingReq && (m.target == self_.id || m.target == m.from)) {
    return reject("PING_REQ for this peer or for the sender itself");
  }
  const bool response =
      m.type == MessageType::kAck || m.type == MessageType::kNack || m.type == MessageType::kSync;
  if (response && members_.find(m.from) == members_.end()) {
    return reject("answer from a peer that is not in the member list");
  }
  if (m.type == MessageType::kPingReq && relays_.size() >= 256) {
    ++stats_.rejected;
    return core::resource_limit("membership PING_REQ: too many indirect probes in flight");
  }

  Update sender{
      Member{m.from, m.from_address, m.from_incarnation, MemberState::kAlive, m.from_flags}, ""};
  if (m.type == MessageType::kLeave) sender.member.state = MemberState::kLeft;
  apply(sender, Source::kSender, m.from, now);
  if (m.type == MessageType::kJoinAck) joined_ = true;
  for (const auto& u : m.updates) apply(u, Source::kGossip, m.from, now);

  switch (m.type) {
    case MessageType::kPing: {
      Message ack = make(MessageType::kAck);
      ack.seq = m.seq;
      ack.target = self_.id;
      send(m.from, m.from_address, std::move(ack));
      break;
    }
    case MessageType::kAck:
      on_ack(m, now);
      break;
    case MessageType::kNack:
      if (probe_.active && m.seq == probe_.seq && m.target == probe_.target &&
          std::find(probe_.helpers.begin(), probe_.helpers.end(), m.from) != probe_.helpers.end()) {
        ++probe_.nacks;
      }
      break;
    case MessageType::kPingReq:
      on_ping_req(m, now);
      break;
    case MessageType::kJoin:
      send_list(m.from, m.from_address, MessageType::kJoinAck);
      break;
    case MessageType::kJoinAck:
    case MessageType::kSync:
    case MessageType::kSyncReq:
      for (const auto& mm : m.members) apply(Update{mm, ""}, Source::kList, m.from, now);
      if (m.type == MessageType::kSyncReq && m.seq == 0)
        send_list(m.from, m.from_address, MessageType::kSync);
      break;
    case MessageType::kLeave:
      break;
  }
  return core::Status::ok();
}

}  // namespace gossip::membership
