// Membership, second half: how updates change the view (SWIM precedence,
// refutation, Lifeguard suspicion confirmations) and how changes spread
// (piggyback queue, full-list slices, the outbox, relayed indirect probes).
//
// Precedence: a higher incarnation wins; at the same incarnation the later
// state wins (alive < suspect < dead < left). Members we never knew are
// learned only from alive/suspect records, so dead and left entries die out
// once every peer has expired them. In a full-list merge (JOIN_ACK, SYNC) a
// remote "dead" only makes a live local member *suspect*: the accused gets a
// suspicion period to refute, which is what lets two halves of a healed
// partition merge without declaring each other dead.
#include <algorithm>
#include <cmath>

#include "gossip/membership/swim.hpp"

namespace gossip::membership {

namespace {

bool is_active(MemberState s) {
  return s == MemberState::kAlive || s == MemberState::kSuspect;
}

}  // namespace

bool Membership::apply(const Update& u, Source source, std::string_view via, TimePoint now) {
  const Member& claim = u.member;
  if (claim.id == self_.id) {
    apply_self(claim, now);
    return false;
  }
  std::string accuser = u.accuser.empty() ? std::string(via) : u.accuser;
  auto it = members_.find(claim.id);
  if (it == members_.end()) {
    if (!is_active(claim.state)) return false;
    Entry& e = members_[claim.id];
    e.m = claim;
    e.since = now;
    if (claim.state == MemberState::kSuspect) {
      suspects_.insert(claim.id);
      e.accusers.push_back(accuser);
    }
    add_to_probe_order(claim.id);
    emit(EventKind::kJoined, claim);
    if (source != Source::kList)
      broadcast(Update{claim, claim.state == MemberState::kSuspect ? accuser : ""});
    return true;
  }
  Entry& e = it->second;
  Member incoming = claim;
  if (source == Source::kList && claim.state == MemberState::kDead && is_active(e.m.state)) {
    incoming.state = MemberState::kSuspect;
    accuser = std::string(via);
  }
  const bool newer = incoming.incarnation > e.m.incarnation ||
                     (incoming.incarnation == e.m.incarnation && incoming.state > e.m.state);
  if (!newer) {
    const bool confirmation =
        incoming.state == MemberState::kSuspect && e.m.state == MemberState::kSuspect &&
        incoming.incarnation == e.m.incarnation && !accuser.empty() &&
        std::find(e.accusers.begin(), e.accusers.end(), accuser) == e.accusers.end();
    if (confirmation) {
      e.accusers.push_back(accuser);
      broadcast(Update{e.m, accuser});
    }
    return false;
  }
  // Same incarnation: the address cannot change (a contradictory record).
  if (incoming.incarnation == e.m.incarnation) {
    incoming.address = e.m.address;
    incoming.flags = e.m.flags;
  }
  set_state(e, incoming, now);
  if (incoming.state == MemberState::kSuspect) e.accusers.assign(1, accuser);
  broadcast(Update{incoming, incoming.state == MemberState::kSuspect ? accuser : ""});
  return true;
}

void Membership::apply_self(const Member& claim, TimePoint now) {
  if (left_) return;
  const bool stale_alive =
      claim.state == MemberState::kAlive &&
      (claim.incarnation > self_.incarnation ||
       (claim.incarnation == self_.incarnation && claim.address != self_.address));
  const bool accused = claim.state != MemberState::kAlive && claim.incarnation >= self_.incarnation;
  if (stale_alive || accused) refute(claim.incarnation, now);
}

bool Membership::set_self_address(const std::string& address, uint8_t flags) {
  if (left_ || (address == self_.address && flags == self_.flags)) return false;
  if (!validate_address(address).is_ok() || (flags & ~kMemberFlagsMask) != 0) return false;
  if (self_.incarnation >= kMaxIncarnation) return false;
  self_.address = address;
  self_.flags = flags;
  ++self_.incarnation;  // a record at a new incarnation replaces the old address everywhere
  broadcast(Update{self_, ""});
  return true;
}

void Membership::refute(uint64_t at_least, TimePoint /*now*/) {
  if (at_least >= kMaxIncarnation) return;  // cannot go higher; stays as it is
  self_.incarnation = std::max(self_.incarnation, at_least) + 1;
  ++stats_.refutations;
  health_ = std::min(options_.max_local_health, health_ + 1);
  broadcast(Update{self_, ""});
}

void Membership::set_state(Entry& e, const Member& m, TimePoint now) {
  const MemberState old = e.m.state;
  e.m = m;
  e.since = now;
  if (m.state == MemberState::kSuspect) {
    suspects_.insert(m.id);
  } else {
    suspects_.erase(m.id);
    e.accusers.clear();
  }
  if (!is_active(old) && is_active(m.state)) add_to_probe_order(m.id);
  if (old == m.state) return;
  switch (m.state) {
    case MemberState::kAlive:
      emit(EventKind::kAlive, m);
      break;
    case MemberState::kSuspect:
      emit(EventKind::kSuspect, m);
      break;
    case MemberState::kDead:
      emit(EventKind::kDead, m);
      break;
    case MemberState::kLeft:
      emit(EventKind::kLeft, m);
      break;
  }
}

void Membership::suspect(const std::string& id, std::string_view accuser, TimePoint now) {
  auto it = members_.find(id);
  if (it == members_.end() || !is_active(it->second.m.state)) return;
  Member m = it->second.m;
  m.state = MemberState::kSuspect;
  apply(Update{m, std::string(accuser)}, Source::kGossip, accuser, now);
}

void Membership::broadcast(const Update& u) {
  Pending& p = pending_[u.member.id];
  p.update = u;
  p.transmits = 0;
  p.order = next_order_++;
}

int Membership::retransmit_limit() const {
  const double n = static_cast<double>(view_size());
  return std::max(1, static_cast<int>(std::ceil(options_.retransmit_mult * std::log2(n + 1))));
}

size_t Membership::view_size() const {
  size_t n = 1;
  for (const auto& [id, e] : members_) n += is_active(e.m.state) ? 1 : 0;
  return n;
}

Message Membership::make(MessageType type) const {
  Message m;
  m.type = type;
  m.from = self_.id;
  m.from_address = self_.address;
  m.from_incarnation = self_.incarnation;
  m.from_flags = self_.flags;
  return m;
}

void Membership::send(const std::string& peer_id, const std::string& address, Message m) {
  size_t budget = options_.piggyback_bytes;
  // A destination we hold as suspect/dead hears it first, so it can refute.
  if (auto it = members_.find(peer_id);
      it != members_.end() && it->second.m.state != MemberState::kAlive) {
    Update u{it->second.m, ""};
    budget -= std::min(budget, update_wire_bytes(u));
    m.updates.push_back(std::move(u));
  }
  std::vector<Pending*> queue;
  queue.reserve(pending_.size());
  for (auto& [id, p] : pending_) {
    if (id != peer_id || m.updates.empty()) queue.push_back(&p);
  }
  std::sort(queue.begin(), queue.end(), [](const Pending* a, const Pending* b) {
    return a->transmits != b->transmits ? a->transmits < b->transmits : a->order > b->order;
  });
  const int limit = retransmit_limit();
  std::vector<std::string> done;
  for (Pending* p : queue) {
    if (m.updates.size() >= kMaxUpdates) break;
    const size_t bytes = update_wire_bytes(p->update);
    if (bytes > budget) continue;
    budget -= bytes;
    m.updates.push_back(p->update);
    if (++p->transmits >= limit) done.push_back(p->update.member.id);
  }
  for (const auto& id : done) pending_.erase(id);
  outbox_.push_back(Outgoing{peer_id, address, std::move(m)});
}

void Membership::send_list(const std::string& peer_id, const std::string& address,
                           MessageType type) {
  std::vector<Member> all;
  all.reserve(members_.size() + 1);
  all.push_back(self_);
  all.back().state = MemberState::kAlive;
  for (const auto& [id, e] : members_) all.push_back(e.m);
  Message proto = make(type);
  const size_t overhead = header_wire_bytes(proto) + options_.piggyback_bytes;
  const size_t budget =
      options_.max_body_bytes > overhead ? options_.max_body_bytes - overhead : 1024;
  uint64_t slice = 0;
  size_t i = 0;
  while (i < all.size()) {
    Message m = proto;
    m.seq = slice++;
    size_t bytes = 0;
    while (i < all.size() && m.members.size() < kMaxListMembers) {
      const size_t b = member_wire_bytes(all[i]);
      if (!m.members.empty() && bytes + b > budget) break;
      bytes += b;
      m.members.push_back(std::move(all[i++]));
    }
    send(peer_id, address, std::move(m));
  }
}

void Membership::add_to_probe_order(const std::string& id) {
  // A random position among the members not yet probed this round.
  const size_t lo = std::min(probe_index_, probe_order_.size());
  std::uniform_int_distribution<size_t> pos(lo, probe_order_.size());
  probe_order_.insert(probe_order_.begin() + static_cast<std::ptrdiff_t>(pos(rng_)), id);
}

void Membership::emit(EventKind kind, const Member& m) {
  events_.push_back(Event{kind, m});
}

void Membership::on_ack(const Message& m, TimePoint /*now*/) {
  if (probe_.active && !probe_.acked && m.seq == probe_.seq && m.target == probe_.target &&
      (m.from == probe_.target ||
       std::find(probe_.helpers.begin(), probe_.helpers.end(), m.from) != probe_.helpers.end())) {
    probe_.acked = true;
    return;
  }
  auto it = relays_.find(m.seq);
  if (it != relays_.end() && m.from == it->second.target && m.target == it->second.target) {
    Message ack = make(MessageType::kAck);
    ack.seq = it->second.requester_seq;
    ack.target = it->second.target;
    send(it->second.requester, it->second.requester_address, std::move(ack));
    relays_.erase(it);
    return;
  }
  ++stats_.late_acks;
}

void Membership::on_ping_req(const Message& m, TimePoint now) {
  Relay r;
  r.requester = m.from;
  r.requester_address = m.from_address;
  r.requester_seq = m.seq;
  r.target = m.target;
  r.nack_at = now + options_.probe_timeout * 4 / 5;
  r.expires = now + options_.probe_interval;
  const uint64_t seq = next_seq_++;
  relays_.emplace(seq, std::move(r));
  std::string address = m.target_address;
  if (auto it = members_.find(m.target); it != members_.end() && is_active(it->second.m.state)) {
    address = it->second.m.address;
  }
  Message ping = make(MessageType::kPing);
  ping.seq = seq;
  ping.target = m.target;
  send(m.target, address, std::move(ping));
}

std::vector<Member> Membership::members() const {
  std::vector<Member> out;
  out.reserve(members_.size());
  for (const auto& [id, e] : members_) out.push_back(e.m);
  return out;
}

std::optional<Member> Membership::find(std::string_view id) const {
  if (id == self_.id) return self_;
  auto it = members_.find(id);
  if (it == members_.end()) return std::nullopt;
  return it->second.m;
}

std::vector<Member> Membership::live_members() const {
  std::vector<Member> out;
  for (const auto& [id, e] : members_) {
    if (e.m.state == MemberState::kAlive) out.push_back(e.m);
  }
  return out;
}

size_t Membership::live_count() const {
  size_t n = 0;
  for (const auto& [id, e] : members_) n += e.m.state == MemberState::kAlive ? 1 : 0;
  return n;
}

std::optional<Member> Membership::random_live_member(std::string_view exclude_id) {
  std::vector<const Member*> live;
  for (const auto& [id, e] : members_) {
    if (e.m.state == MemberState::kAlive && id != exclude_id) live.push_back(&e.m);
  }
  if (live.empty()) return std::nullopt;
  std::uniform_int_distribution<size_t> pick(0, live.size() - 1);
  return *live[pick(rng_)];
}

std::vector<Outgoing> Membership::take_outbox() {
  return std::exchange(outbox_, {});
}
std::vector<Event> Membership::take_events() {
  return std::exchange(events_, {});
}

}  // namespace gossip::membership
