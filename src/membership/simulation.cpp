// SimulatedSwarm: the in-memory network and simulated clock that drive many
// Membership machines in tests, and measure_swarm_figures() built on it.
#include "gossip/membership/simulation.hpp"

#include <cstdio>

namespace gossip::membership {

namespace {

constexpr Millis kStep{5};
constexpr uint64_t kWallClockBase = 1'700'000'000'000;  // ms, for incarnations

std::string random_id(std::mt19937_64& rng) {
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 64; ++i) id += kHex[rng() & 0x0f];
  return id;
}

}  // namespace

SimulatedSwarm::SimulatedSwarm(const Options& options, const NetworkModel& net, uint64_t seed)
    : options_(options), net_(net), rng_(seed), now_(TimePoint{} + std::chrono::hours(1)) {}

int SimulatedSwarm::add_peer() {
  const int i = static_cast<int>(nodes_.size());
  Node n;
  n.id = random_id(rng_);
  n.address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":7400";
  by_address_[n.address] = i;
  nodes_.push_back(std::move(n));
  return i;
}

void SimulatedSwarm::start(int i, const std::vector<int>& seeds) {
  Node& n = nodes_[static_cast<size_t>(i)];
  const auto wall_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<Millis>(now_.time_since_epoch()).count());
  auto m = Membership::create(options_, n.id, n.address, kWallClockBase + wall_ms, rng_(), now_);
  if (!m) {
    std::fprintf(stderr, "simulation: %s\n", m.status().to_string().c_str());
    std::abort();
  }
  n.machine.emplace(std::move(*m));
  n.running = true;
  n.stalled = false;
  n.events.clear();
  std::vector<std::string> addresses;
  for (int s : seeds) addresses.push_back(nodes_[static_cast<size_t>(s)].address);
  n.machine->join(addresses, now_);
  drain(i);
}

void SimulatedSwarm::crash(int i) {
  nodes_[static_cast<size_t>(i)].running = false;
}

void SimulatedSwarm::leave(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  if (!n.running) return;
  n.machine->leave(now_);
  drain(i);
  n.running = false;
}

void SimulatedSwarm::set_stalled(int i, bool stalled) {
  nodes_[static_cast<size_t>(i)].stalled = stalled;
}

void SimulatedSwarm::set_partition(const std::vector<int>& side) {
  for (auto& n : nodes_) n.side = false;
  for (int i : side) nodes_[static_cast<size_t>(i)].side = true;
  partitioned_ = true;
}

void SimulatedSwarm::heal() {
  partitioned_ = false;
}

void SimulatedSwarm::drain(int i) {
  Node& n = nodes_[static_cast<size_t>(i)];
  for (auto& e : n.machine->take_events()) n.events.emplace_back(now_, std::move(e));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int64_t> latency(net_.min_latency.count(),
                                                 net_.max_latency.count());
  for (auto& out : n.machine->take_outbox()) {
    std::vector<uint8_t> body = encode(out.message);
    const uint64_t bytes = body.size() + 5;
    frame_bytes_ += bytes;
    bytes_by_type_[out.message.type] += bytes;
    ++messages_;
    auto dest = by_address_.find(out.address);
    if (dest == by_address_.end() || unit(rng_) < net_.loss) continue;
    in_flight_.push(Delivery{now_ + Millis(latency(rng_)), order_++, dest->second, i,
                             std::move(out.peer_id), static_cast<uint8_t>(out.message.type),
                             std::move(body)});
  }
}

void SimulatedSwarm::step() {
  now_ += kStep;
  while (!in_flight_.empty() && in_flight_.top().at <= now_) {
    Delivery d = in_flight_.top();
    in_flight_.pop();
    Node& to = nodes_[static_cast<size_t>(d.to)];
    const Node& from = nodes_[static_cast<size_t>(d.from)];
    if (!to.running || to.stalled) continue;
    if (partitioned_ && to.side != from.side) continue;
    if (!d.expected_id.empty() && d.expected_id != to.id) continue;
    auto msg = decode(d.type, d.body);
    if (!msg) {
      ++undecodable_;
      continue;
    }
    if (!to.machine->on_message(from.id, *msg, now_).is_ok()) ++rejected_;
    drain(d.to);
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].running) continue;
    nodes_[i].machine->tick(now_);
    drain(static_cast<int>(i));
  }
}

void SimulatedSwarm::run_for(Millis duration) {
  const TimePoint end = now_ + duration;
  while (now_ < end) step();
}

std::optional<Millis> SimulatedSwarm::run_until(const std::function<bool()>& done, Millis limit) {
  const TimePoint start = now_;
  while (now_ - start <= limit) {
    if (done()) return std::chrono::duration_cast<Millis>(now_ - start);
    run_for(Millis(50));
  }
  return std::nullopt;
}

std::optional<MemberState> SimulatedSwarm::view(int observer, int subject) const {
  const Node& o = nodes_[static_cast<size_t>(observer)];
  if (!o.machine) return std::nullopt;
  auto m = o.machine->find(nodes_[static_cast<size_t>(subject)].id);
  if (!m) return std::nullopt;
  return m->state;
}

bool SimulatedSwarm::all_see(int subject, MemberState state) const {
  const bool unknown_ok = state == MemberState::kDead || state == MemberState::kLeft;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].running || static_cast<int>(i) == subject) continue;
    auto s = view(static_cast<int>(i), subject);
    if (s ? *s != state : !unknown_ok) return false;
  }
  return true;
}

bool SimulatedSwarm::converged() const {
  size_t live = 0;
  for (const auto& n : nodes_) live += n.running ? 1 : 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].running) continue;
    if (nodes_[i].machine->live_count() != live - 1) return false;
    for (size_t j = 0; j < nodes_.size(); ++j) {
      if (j == i || !nodes_[j].running) continue;
      if (view(static_cast<int>(i), static_cast<int>(j)) != MemberState::kAlive) return false;
    }
  }
  return true;
}

SwarmFigures measure_swarm_figures(int peers, const Options& options, uint64_t seed) {
  SwarmFigures f;
  f.peers = peers;
  SimulatedSwarm s(options, NetworkModel{}, seed);
  std::mt19937_64 rng(seed ^ 0x5eed);
  auto random_member = [&](int below) {
    return static_cast<int>(std::uniform_int_distribution<int>(0, below - 1)(rng));
  };
  for (int i = 0; i < peers - 1; ++i) {
    s.add_peer();
    s.start(i, i == 0 ? std::vector<int>{} : std::vector<int>{random_member(i)});
    s.run_for(Millis(100));
  }
  s.run_until([&] { return s.converged(); }, Millis(120000));
  s.run_for(Millis(20000));
  auto seconds = [](std::optional<Millis> t) {
    return t ? static_cast<double>(t->count()) / 1000.0 : -1.0;
  };

  const int joiner = s.add_peer();
  s.start(joiner, {random_member(joiner)});
  f.join_known_everywhere_s =
      seconds(s.run_until([&] { return s.all_see(joiner, MemberState::kAlive); }, Millis(60000)));
  s.run_for(Millis(20000));

  const uint64_t bytes0 = s.frame_bytes();
  const uint64_t sync0 =
      s.bytes_by_type().count(MessageType::kSync) ? s.bytes_by_type().at(MessageType::kSync) : 0;
  const uint64_t req0 = s.bytes_by_type().count(MessageType::kSyncReq)
                            ? s.bytes_by_type().at(MessageType::kSyncReq)
                            : 0;
  s.run_for(Millis(60000));
  const auto total = static_cast<double>(s.frame_bytes() - bytes0);
  f.bytes_per_peer_per_s = total / peers / 60.0;
  const uint64_t sync1 =
      s.bytes_by_type().count(MessageType::kSync) ? s.bytes_by_type().at(MessageType::kSync) : 0;
  const uint64_t req1 = s.bytes_by_type().count(MessageType::kSyncReq)
                            ? s.bytes_by_type().at(MessageType::kSyncReq)
                            : 0;
  f.sync_share = total > 0 ? static_cast<double>(sync1 - sync0 + req1 - req0) / total : 0;

  const int victim = 1 + random_member(peers - 1);
  s.crash(victim);
  f.crash_known_everywhere_s =
      seconds(s.run_until([&] { return s.all_see(victim, MemberState::kDead); }, Millis(60000)));
  s.run_for(Millis(5000));

  int leaver = 1 + random_member(peers - 1);
  if (leaver == victim) leaver = leaver == 1 ? 2 : leaver - 1;
  s.leave(leaver);
  f.leave_known_everywhere_s =
      seconds(s.run_until([&] { return s.all_see(leaver, MemberState::kLeft); }, Millis(60000)));
  return f;
}

}  // namespace gossip::membership
