// Swarm sessions: how membership frames reach peers and come back. Incoming
// frames are decoded on the session's strand (a malformed one is counted and
// dropped there, the session stays open) and handed to the Swarm's strand
// with the session's authenticated peer id. Outgoing frames go over any open
// session with the peer (the Node's registry: averaging's sessions serve
// too), or wait in a small queue while one is dialed with
// the member's expected peer id; dials are coroutines of their own, capped
// at max_dials, with a per-peer backoff after failures. Sessions this Swarm
// dialed are closed when idle or beyond max_own_sessions. JOIN dials to
// seeds resolve host names here, so that a host that does not exist gives
// the seed up at once (as does a dial that reaches this peer's own identity
// key), and a seed that closes a fresh session before its first frame is
// reported as most likely using another swarm key.
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/net/frames.hpp"
#include "swarm_core.hpp"

namespace gossip::membership::detail {

using core::Status;

namespace {
constexpr Millis kForgetLink{600000};  // links with nothing open are forgotten after this
constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

Millis next_backoff(Millis now_backoff, const SwarmConfig& c) {
  return std::clamp(now_backoff.count() == 0 ? c.min_dial_backoff : now_backoff * 2,
                    c.min_dial_backoff, c.max_dial_backoff);
}
}  // namespace

// --- session strands ------------------------------------------------------

void SwarmCore::on_frame(net::Session& session, uint8_t type, std::span<const uint8_t> body) {
  if (stopped) return;
  frames_received++;
  bytes_received += net::kFrameHeaderBytes + body.size();
  auto message = decode(type, body);
  if (!message) {
    frames_rejected++;
    core::log_rate_limited(core::LogLevel::kWarn, "membership", "undecodable",
                           "frame from " + core::short_peer_id(session.peer_id()) +
                               " rejected: " + message.status().message());
    return;
  }
  asio::post(strand, [self = shared_from_this(), s = session.shared_from_this(),
                      m = std::move(*message)]() mutable { self->deliver(s, std::move(m)); });
}

void SwarmCore::on_closed(net::Session& session, const core::Status& /*reason*/) {
  asio::post(strand, [self = shared_from_this(), s = &session, id = session.peer_id()] {
    if (auto f = self->fresh_seed_sessions.find(s); f != self->fresh_seed_sessions.end()) {
      const std::string address = f->second;
      self->fresh_seed_sessions.erase(f);
      if (!self->stopped) self->seed_closed_fresh(address);
    }
    auto it = self->links.find(id);
    if (it == self->links.end()) return;
    Link& l = it->second;
    if (l.own.get() == s) l.own.reset();
  });
}

// --- strand -----------------------------------------------------------------

void SwarmCore::count_sent(const Frame& frame) {
  frames_sent++;
  bytes_sent += net::kFrameHeaderBytes + frame.body.size();
}

void SwarmCore::drop(std::deque<Frame>& queue) {
  frames_dropped += queue.size();
  queue.clear();
}

void SwarmCore::enqueue(std::deque<Frame>& queue, Frame frame) {
  if (queue.size() >= config.max_queued_frames) {
    queue.pop_front();
    frames_dropped++;
  }
  queue.push_back(std::move(frame));
}

std::shared_ptr<net::Session> SwarmCore::session_to(const std::string& peer_id) const {
  auto n = node.lock();
  return n ? n->session_to(peer_id) : nullptr;
}

bool SwarmCore::send_now(const std::string& peer_id, Link& link, const Frame& frame) {
  if (link.own && !link.own->is_open()) link.own.reset();
  auto session = session_to(peer_id);
  if (!session) return false;
  // A full send queue means the peer is not reading: the frame is lost, as
  // SWIM expects of a stalled peer.
  if (session->try_send_frame(frame.type, frame.body)) {
    count_sent(frame);
  } else {
    frames_dropped++;
  }
  return true;
}

void SwarmCore::send(Outgoing out) {
  Frame frame{static_cast<uint8_t>(out.message.type), encode(out.message)};
  const auto now = Clock::now();
  if (out.peer_id.empty()) {  // JOIN to a seed address
    SeedDial& d = seed_dials[out.address];
    if (d.given_up) {
      frames_dropped++;  // this seed can never answer
      return;
    }
    if (!d.dialing && now < d.retry_at) {
      frames_dropped++;  // backing off; the machine re-sends JOIN later
      return;
    }
    enqueue(d.queue, std::move(frame));
    if (!d.dialing) {
      d.dialing = true;
      asio::co_spawn(strand, dial_seed(out.address), asio::detached);
    }
    return;
  }
  Link& link = links[out.peer_id];
  // The machine's addresses were checked when they arrived (validate_address);
  // parsed here, where they leave it for a dial.
  if (auto ep = core::parse_endpoint(out.address); ep) {
    link.endpoint = std::move(*ep);
  } else {
    core::log_rate_limited(
        core::LogLevel::kWarn, "membership", "bad-address",
        "address of " + core::short_peer_id(out.peer_id) + ": " + ep.status().message());
  }
  link.last_used = now;
  if (send_now(out.peer_id, link, frame)) return;
  // A private member cannot be dialed (docs/design.md "Peers behind NAT"):
  // only a session it opened reaches it, so nobody waits on a dial.
  if (auto target = machine->find(out.peer_id); target && target->is_private()) {
    frames_dropped++;
    return;
  }
  if (!link.dialing && !link.waiting && now < link.retry_at) {
    frames_dropped++;  // the last dial failed moments ago
    return;
  }
  enqueue(link.queue, std::move(frame));
  want_dial(out.peer_id, link);
}

void SwarmCore::want_dial(const std::string& peer_id, Link& link) {
  if (link.dialing || link.waiting) return;
  if (dials_in_flight < config.max_dials) {
    link.dialing = true;
    ++dials_in_flight;
    asio::co_spawn(strand, dial_peer(peer_id, link.endpoint), asio::detached);
  } else {
    link.waiting = true;
    dial_queue.push_back(peer_id);
  }
}

void SwarmCore::start_dials() {
  while (dials_in_flight < config.max_dials && !dial_queue.empty() && !stopped) {
    const std::string id = std::move(dial_queue.front());
    dial_queue.pop_front();
    auto it = links.find(id);
    if (it == links.end() || !it->second.waiting) continue;
    Link& link = it->second;
    link.waiting = false;
    while (!link.queue.empty() && send_now(id, link, link.queue.front())) link.queue.pop_front();
    if (!link.queue.empty()) want_dial(id, link);
  }
}

asio::awaitable<void> SwarmCore::dial_peer(std::string peer_id, core::Endpoint endpoint) {
  auto self = shared_from_this();
  dials++;
  // (No co_await inside a conditional expression: GCC 12 destroys its
  // result too early.)
  core::Result<std::shared_ptr<net::Session>> result =
      Status(core::Code::kClosed, "the node is gone");
  if (auto n = node.lock()) result = co_await n->reach(endpoint, peer_id);
  --dials_in_flight;
  Link& link = links[peer_id];
  link.dialing = false;
  if (stopped) {
    if (result) (*result)->close(Status(core::Code::kClosed, "membership stopped"));
    co_return;
  }
  if (!result) {
    dial_failures++;
    link.backoff = next_backoff(link.backoff, config);
    link.retry_at = Clock::now() + link.backoff;
    drop(link.queue);
    core::log_debug("membership", "dial " + core::short_peer_id(peer_id) + " at " +
                                      endpoint.to_string() + ": " + result.status().to_string());
  } else {
    link.backoff = Millis(0);
    link.retry_at = TimePoint{};
    adopt_own(*result);
    while (!link.queue.empty() && send_now(peer_id, link, link.queue.front()))
      link.queue.pop_front();
  }
  start_dials();
}

asio::awaitable<core::Result<std::shared_ptr<net::Session>>> SwarmCore::dial_seed_address(
    const std::string& address, bool& permanent) {
  permanent = false;
  auto n = node.lock();
  if (!n) co_return Status(core::Code::kClosed, "the node is gone");
  auto ep = core::parse_endpoint(address);
  if (!ep) co_return ep.status();
  asio::error_code ec;
  (void)asio::ip::make_address(ep->host, ec);
  if (!ec) co_return co_await n->dial(*ep);  // an IP address: nothing to resolve
  asio::ip::tcp::resolver resolver(strand);
  auto [rec, results] =
      co_await resolver.async_resolve(ep->host, std::to_string(ep->port), use_nothrow);
  if (rec == asio::error::host_not_found) {
    permanent = true;
    co_return core::unavailable("resolve " + address + ": " + rec.message() +
                                " (check the address)");
  }
  if (rec || results.empty()) {
    co_return core::unavailable("resolve " + address + ": " +
                                (rec ? rec.message() : std::string("no address")));
  }
  co_return co_await n->dial(results.begin()->endpoint(), std::nullopt);
}

asio::awaitable<void> SwarmCore::dial_seed(std::string address) {
  auto self = shared_from_this();
  dials++;
  bool permanent = false;
  // (No co_await inside a conditional expression: GCC 12 destroys its
  // result too early.)
  core::Result<std::shared_ptr<net::Session>> result =
      co_await dial_seed_address(address, permanent);
  SeedDial& d = seed_dials[address];
  d.dialing = false;
  if (stopped) {
    if (result) (*result)->close(Status(core::Code::kClosed, "membership stopped"));
    co_return;
  }
  if (!result) {
    dial_failures++;
    join_errors[address] = result.status().message();
    d.backoff = next_backoff(d.backoff, config);
    d.retry_at = Clock::now() + d.backoff;
    drop(d.queue);
    // The dial reached a peer with this peer's own identity key: the same
    // answer comes every time.
    if (result.status().code() == core::Code::kAuth &&
        result.status().message().rfind("self-connection", 0) == 0) {
      permanent = true;
    }
    if (permanent) seed_given_up(address, result.status().message());
    co_return;
  }
  // (Once a fresh session to this seed was closed on us, that stays the
  // likely cause: the next one goes the same way.)
  if (!d.warned_closed) join_errors[address] = "session open, but no member list received";
  d.backoff = Millis(0);
  if (!(*result)->is_open()) {  // closed before this strand heard of it
    seed_closed_fresh(address);
  } else {
    fresh_seed_sessions[result->get()] = address;
  }
  adopt_own(*result);
  const std::string peer_id = (*result)->peer_id();
  Link& link = links[peer_id];
  if (link.endpoint.port == 0) {
    if (auto ep = core::parse_endpoint(address); ep) link.endpoint = std::move(*ep);
  }
  link.last_used = Clock::now();
  for (const Frame& f : d.queue) {
    if (!send_now(peer_id, link, f)) frames_dropped++;
  }
  d.queue.clear();
}

void SwarmCore::seed_given_up(const std::string& address, const std::string& why) {
  SeedDial& d = seed_dials[address];
  if (d.given_up) return;
  d.given_up = true;
  core::log_warn("membership", "giving up on seed " + address + ": " + why);
}

void SwarmCore::seed_closed_fresh(const std::string& address) {
  auto it = join_errors.find(address);
  // Only while the join still waits for this seed (a late close changes
  // nothing once the seed answered or the join ended).
  if (it == join_errors.end() || !machine || machine->joined()) return;
  it->second =
      "the member closed the connection right after the handshake: most likely a different "
      "swarm key (peer.swarm_key) or net.cipher";
  SeedDial& d = seed_dials[address];
  if (d.warned_closed) return;
  d.warned_closed = true;
  core::log_warn("membership", "seed " + address + ": " + it->second);
}

void SwarmCore::adopt_own(const std::shared_ptr<net::Session>& session) {
  if (!session->is_open()) return;
  Link& link = links[session->peer_id()];
  link.own = session;
  link.last_used = Clock::now();
}

void SwarmCore::close_idle(TimePoint now) {
  std::vector<std::pair<TimePoint, std::string>> own;
  for (auto it = links.begin(); it != links.end();) {
    Link& l = it->second;
    // A private peer keeps the sessions it dialed: they are the only way
    // the others reach it.
    const bool keep = machine && machine->self().is_private() && l.own && l.own->is_open();
    if (l.own && !keep && (!l.own->is_open() || now - l.last_used >= config.session_idle)) {
      fresh_seed_sessions.erase(l.own.get());
      l.own->close(Status(core::Code::kClosed, "membership: idle"));
      l.own.reset();
    }
    if (l.own) own.emplace_back(l.last_used, it->first);
    const bool empty = l.queue.empty() && !l.dialing && !l.waiting && !session_to(it->first);
    it = empty && now - l.last_used >= kForgetLink ? links.erase(it) : std::next(it);
  }
  if (own.size() <= config.max_own_sessions) return;
  std::sort(own.begin(), own.end());
  for (size_t i = 0; i + config.max_own_sessions < own.size(); ++i) {
    Link& l = links[own[i].second];
    fresh_seed_sessions.erase(l.own.get());
    l.own->close(Status(core::Code::kClosed, "membership: too many sessions"));
    l.own.reset();
  }
}

bool SwarmCore::flushed() const {
  if (dials_in_flight != 0 || !dial_queue.empty()) return false;
  for (const auto& [id, l] : links) {
    if (!l.queue.empty() || l.dialing) return false;
  }
  for (const auto& [a, d] : seed_dials) {
    if (!d.queue.empty() || d.dialing) return false;
  }
  return true;
}

}  // namespace gossip::membership::detail
