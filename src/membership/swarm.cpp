// Swarm: the public API (snapshots, start/join/leave/stop) and the strand
// side of the state machine: the timer loop that ticks it at
// next_deadline(), delivery of decoded messages, and pump(), which moves
// the outbox onto sessions and the events to the owner after every step.
#include "gossip/membership/swarm.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/net/router.hpp"
#include "swarm_core.hpp"

namespace gossip::membership {

using core::Status;

namespace detail {

namespace {
constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr Millis kMaxTimerSleep{250};  // housekeeping cadence when the machine is quiet
constexpr Millis kWriterGrace{50};     // after LEAVE frames are queued on sessions

uint64_t wall_clock_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

SwarmCore::SwarmCore(asio::io_context& io_, std::shared_ptr<net::Node> node_, SwarmConfig config_)
    : io(io_),
      strand(asio::make_strand(io_)),
      node(node_),
      config(std::move(config_)),
      self_id(node_->peer_id()),
      timer(strand),
      pick_rng(config.seed != 0 ? config.seed ^ 0x9e3779b97f4a7c15ULL : std::random_device{}()) {}

asio::awaitable<void> SwarmCore::timer_loop() {
  auto self = shared_from_this();
  while (!stopped && machine && !machine->has_left()) {
    timer_at = std::min(machine->next_deadline(), Clock::now() + kMaxTimerSleep);
    timer.expires_at(timer_at);
    co_await timer.async_wait(use_nothrow);
    timer_at = TimePoint::max();
    if (stopped || !machine || machine->has_left()) break;
    machine->tick(Clock::now());
    pump();
  }
}

void SwarmCore::deliver(const std::shared_ptr<net::Session>& session, Message message) {
  if (stopped || !machine || machine->has_left()) return;
  fresh_seed_sessions.erase(session.get());  // the seed spoke: its handshake went through
  const auto now = Clock::now();
  if (auto it = links.find(session->peer_id()); it != links.end()) it->second.last_used = now;
  if (Status st = machine->on_message(session->peer_id(), message, now); !st) {
    frames_rejected++;
    core::log_rate_limited(
        core::LogLevel::kWarn, "membership", "rejected",
        "message from " + core::short_peer_id(session->peer_id()) + " rejected: " + st.message());
  }
  pump();
}

void SwarmCore::pump() {
  if (!machine) return;
  for (Outgoing& out : machine->take_outbox()) send(std::move(out));
  std::vector<Event> events = machine->take_events();
  update_snapshot();
  for (const Event& e : events) {
    core::log_debug("membership", std::string(event_kind_name(e.kind)) + ": " + describe(e.member));
    if (on_event) on_event(e);
  }
  const auto now = Clock::now();
  if (now >= next_housekeeping) {
    next_housekeeping = now + Millis(500);
    close_idle(now);
  }
  if (!machine->has_left() && machine->next_deadline() < timer_at) timer.cancel();
}

void SwarmCore::update_snapshot() {
  std::vector<Member> members = machine->members();
  std::lock_guard l(mu);
  self_snap = machine->self();
  joined_snap = machine->joined();
  members_snap = std::move(members);
  protocol_snap = machine->stats();
}

asio::awaitable<Status> SwarmCore::join_on_strand(std::vector<std::string> seeds, Millis timeout,
                                                  std::function<bool()> cancelled) {
  auto self = shared_from_this();
  if (!machine)
    co_return Status(core::Code::kClosed, "join: the swarm is not started (call start() first)");
  if (stopped || machine->has_left())
    co_return Status(core::Code::kClosed, "join: the swarm was stopped");
  std::vector<std::string> tried;
  for (const auto& s : seeds) {
    if (Status st = validate_address(s); !st) {
      co_return core::invalid_argument("join: bad seed address: " + st.message());
    }
    if (s != machine->self().address && std::find(tried.begin(), tried.end(), s) == tried.end())
      tried.push_back(s);
  }
  join_errors.clear();
  for (const auto& s : tried) {  // a fresh try for each
    SeedDial& d = seed_dials[s];
    d.retry_at = TimePoint{};
    d.given_up = false;
    d.warned_closed = false;
  }
  machine->join(tried, Clock::now());
  pump();
  const auto deadline = Clock::now() + timeout;
  // Every seed failed in a way that cannot change: waiting longer is useless.
  const auto all_given_up = [&] {
    return !tried.empty() && std::all_of(tried.begin(), tried.end(), [&](const std::string& s) {
      auto it = seed_dials.find(s);
      return it != seed_dials.end() && it->second.given_up;
    });
  };
  bool was_cancelled = false;
  asio::steady_timer wait(strand);
  while (!stopped && !machine->joined() && !machine->has_left() && Clock::now() < deadline &&
         !all_given_up()) {
    if (cancelled && cancelled()) {
      was_cancelled = true;
      break;
    }
    wait.expires_after(Millis(20));
    co_await wait.async_wait(use_nothrow);
  }
  if (machine->joined()) {
    core::log_debug("membership",
                    "joined: " + std::to_string(machine->live_count()) + " live members");
    co_return Status::ok();
  }
  if (was_cancelled)
    co_return Status(core::Code::kClosed, "join: cancelled before any seed answered");
  if (stopped || machine->has_left())
    co_return Status(core::Code::kClosed, "join: the swarm was stopped");
  std::string list;
  for (const auto& s : tried) {
    auto it = join_errors.find(s);
    list += (list.empty() ? "" : ", ") + s + " (" +
            (it != join_errors.end() ? it->second : std::string("no answer")) + ")";
  }
  if (all_given_up())
    co_return core::unavailable("could not join the swarm: no seed can be joined; tried " + list);
  co_return core::unavailable("could not join the swarm: no seed answered within " +
                              std::to_string(timeout.count()) + " ms; tried " + list);
}

asio::awaitable<void> SwarmCore::leave_on_strand(Millis flush) {
  auto self = shared_from_this();
  if (!machine || machine->has_left() || stopped) co_return;
  machine->leave(Clock::now());
  pump();
  timer.cancel();
  const auto deadline = Clock::now() + flush;
  asio::steady_timer wait(strand);
  while (!flushed() && Clock::now() < deadline) {
    wait.expires_after(Millis(5));
    co_await wait.async_wait(use_nothrow);
  }
  // The frames are on the sessions' queues; give their writers a moment.
  wait.expires_at(std::min(deadline, Clock::now() + kWriterGrace));
  co_await wait.async_wait(use_nothrow);
}

void SwarmCore::stop_on_strand() {
  timer.cancel();
  for (auto& [id, link] : links) {
    if (link.own) link.own->close(Status(core::Code::kClosed, "membership stopped"));
    link.own.reset();
    link.queue.clear();
  }
  seed_dials.clear();
  dial_queue.clear();
  fresh_seed_sessions.clear();
}

}  // namespace detail

Swarm::Swarm(asio::io_context& io, std::shared_ptr<net::Node> node, net::Router& router,
             SwarmConfig config)
    : core_(std::make_shared<detail::SwarmCore>(io, std::move(node), std::move(config))) {
  router.add(kFirstSwarmFrame, kLastSwarmFrame, core_);
}

Swarm::~Swarm() {
  stop();
}

void Swarm::set_event_handler(EventHandler handler) {
  core_->on_event = std::move(handler);
}

Status Swarm::start() {
  if (core_->started.exchange(true))
    return core::invalid_argument("membership: start() called twice");
  std::string address = core_->config.advertise;
  if (address.empty()) {
    auto node = core_->node.lock();
    const auto ep = node ? node->local_endpoint() : asio::ip::tcp::endpoint{};
    if (ep.port() == 0 || ep.address().is_unspecified()) {
      return core::invalid_argument(
          "membership: no address to advertise: the node listens on " + ep.address().to_string() +
          ":" + std::to_string(ep.port()) +
          ", which other peers cannot dial; set the address they can reach this peer at "
          "(peer.advertise)");
    }
    address = ep.address().is_v6()
                  ? "[" + ep.address().to_string() + "]:" + std::to_string(ep.port())
                  : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  const uint64_t incarnation =
      core_->config.incarnation != 0 ? core_->config.incarnation : detail::wall_clock_ms();
  const uint64_t seed = core_->config.seed != 0 ? core_->config.seed : std::random_device{}();
  auto m = Membership::create(core_->config.protocol, core_->self_id, address, incarnation, seed,
                              Clock::now());
  if (!m) return m.status();
  {
    std::lock_guard l(core_->mu);
    core_->self_snap = m->self();
  }
  auto core = core_;
  asio::post(core->strand, [core, m = std::move(*m)]() mutable {
    if (core->stopped) return;
    core->machine.emplace(std::move(m));
    core->update_snapshot();
    asio::co_spawn(core->strand, core->timer_loop(), asio::detached);
  });
  return Status::ok();
}

asio::awaitable<Status> Swarm::join(std::vector<std::string> seeds, Millis timeout,
                                    std::function<bool()> cancelled) {
  auto core = core_;
  co_return co_await asio::co_spawn(
      core->strand, core->join_on_strand(std::move(seeds), timeout, std::move(cancelled)),
      asio::use_awaitable);
}

Status Swarm::join_wait(std::vector<std::string> seeds, Millis timeout,
                        std::function<bool()> cancelled) {
  return asio::co_spawn(core_->strand,
                        core_->join_on_strand(std::move(seeds), timeout, std::move(cancelled)),
                        asio::use_future)
      .get();
}

asio::awaitable<void> Swarm::leave(Millis flush) {
  auto core = core_;
  co_await asio::co_spawn(core->strand, core->leave_on_strand(flush), asio::use_awaitable);
}

void Swarm::leave_wait(Millis flush) {
  asio::co_spawn(core_->strand, core_->leave_on_strand(flush), asio::use_future).get();
}

void Swarm::set_self_address(std::string address, uint8_t flags) {
  auto core = core_;
  asio::post(core->strand, [core, address = std::move(address), flags] {
    if (core->stopped || !core->machine) return;
    if (core->machine->set_self_address(address, flags)) {
      core::log_info("membership", "this peer is now " + describe(core->machine->self()) +
                                       ((flags & kMemberPrivate) ? " (private)" : ""));
      core->pump();
    }
  });
}

void Swarm::stop() {
  if (core_->stopped.exchange(true)) return;
  auto core = core_;
  asio::post(core->strand, [core] { core->stop_on_strand(); });
}

const std::string& Swarm::peer_id() const {
  return core_->self_id;
}

Member Swarm::self() const {
  std::lock_guard l(core_->mu);
  return core_->self_snap;
}

bool Swarm::joined() const {
  std::lock_guard l(core_->mu);
  return core_->joined_snap;
}

std::vector<Member> Swarm::members() const {
  std::lock_guard l(core_->mu);
  return core_->members_snap;
}

std::vector<Member> Swarm::live_members() const {
  std::vector<Member> out;
  std::lock_guard l(core_->mu);
  for (const Member& m : core_->members_snap) {
    if (m.state == MemberState::kAlive) out.push_back(m);
  }
  return out;
}

size_t Swarm::live_count() const {
  std::lock_guard l(core_->mu);
  return static_cast<size_t>(
      std::count_if(core_->members_snap.begin(), core_->members_snap.end(),
                    [](const Member& m) { return m.state == MemberState::kAlive; }));
}

std::optional<MemberState> Swarm::state_of(std::string_view peer_id) const {
  std::lock_guard l(core_->mu);
  const auto& v = core_->members_snap;
  auto it = std::lower_bound(v.begin(), v.end(), peer_id,
                             [](const Member& m, std::string_view id) { return m.id < id; });
  if (it == v.end() || it->id != peer_id) return std::nullopt;
  return it->state;
}

std::optional<Member> Swarm::random_live_member(std::string_view exclude_id) {
  std::lock_guard l(core_->mu);
  std::vector<const Member*> live;
  for (const Member& m : core_->members_snap) {
    if (m.state == MemberState::kAlive && m.id != exclude_id) live.push_back(&m);
  }
  if (live.empty()) return std::nullopt;
  std::uniform_int_distribution<size_t> pick(0, live.size() - 1);
  return *live[pick(core_->pick_rng)];
}

SwarmStats Swarm::stats() const {
  SwarmStats s;
  const auto& c = *core_;
  s.bytes_sent = c.bytes_sent;
  s.bytes_received = c.bytes_received;
  s.frames_sent = c.frames_sent;
  s.frames_received = c.frames_received;
  s.frames_rejected = c.frames_rejected;
  s.frames_dropped = c.frames_dropped;
  s.dials = c.dials;
  s.dial_failures = c.dial_failures;
  std::lock_guard l(c.mu);
  s.protocol = c.protocol_snap;
  return s;
}

}  // namespace gossip::membership
