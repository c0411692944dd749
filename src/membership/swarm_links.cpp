// Swarm sessions: how membership frames reach peers and come back. Incoming
// frames are decoded on the session's strand (a malformed one is counted and
// dropped there, the session stays open) and handed to the Swarm's strand
// with the session's authenticated peer id. Outgoing frames go over any open
// session with the peer, or wait in a small queue while one is dialed with
// the member's expected peer id; dials are coroutines of their own, capped
// at max_dials, with a per-peer backoff after failures. Sessions this Swarm
// dialed are closed when idle or beyond max_own_sessions.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <algorithm>

#include "gossip/core/log.hpp"
#include "gossip/net/frames.hpp"
#include "swarm_core.hpp"

namespace gossip::membership::detail {

using core::Status;

namespace {
constexpr Millis kForgetLink{600000};  // links with nothing open are forgotten after this

Millis next_backoff(Millis now_backoff, const SwarmConfig& c) {
  return std::clamp(now_backoff.count() == 0 ? c.min_dial_backoff : now_backoff * 2,
                    c.min_dial_backoff, c.max_dial_backoff);
}
}  // namespace

// --- session strands ------------------------------------------------------

void SwarmCore::on_open(net::Session& session) {
  if (stopped) return;
  asio::post(strand, [self = shared_from_this(), s = session.shared_from_this()] {
    if (!self->stopped) self->add_session(s, false);
  });
}

void SwarmCore::on_frame(net::Session& session, uint8_t type, std::span<const uint8_t> body) {
  if (stopped) return;
  frames_received++;
  bytes_received += net::kFrameHeaderBytes + body.size();
  auto message = decode(type, body);
  if (!message) {
    frames_rejected++;
    core::log_rate_limited(core::LogLevel::kWarn, "membership", "undecodable",
                           "frame from " + session.peer_id().substr(0, 12) + " rejected: " +
                               message.status().message());
    return;
  }
  asio::post(strand, [self = shared_from_this(), s = session.shared_from_this(),
                      m = std::move(*message)]() mutable { self->deliver(s, std::move(m)); });
}

void SwarmCore::on_closed(net::Session& session, const core::Status& /*reason*/) {
  asio::post(strand, [self = shared_from_this(), s = &session, id = session.peer_id()] {
    auto it = self->links.find(id);
    if (it == self->links.end()) return;
    Link& l = it->second;
    std::erase_if(l.sessions, [s](const auto& p) { return p.get() == s; });
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

bool SwarmCore::send_now(Link& link, const Frame& frame) {
  std::erase_if(link.sessions, [](const auto& s) { return !s->is_open(); });
  if (link.own && !link.own->is_open()) link.own.reset();
  if (link.sessions.empty()) return false;
  // A full send queue means the peer is not reading: the frame is lost, as
  // SWIM expects of a stalled peer.
  if (link.sessions.front()->try_send_frame(frame.type, frame.body)) {
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
  link.address = out.address;
  link.last_used = now;
  if (send_now(link, frame)) return;
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
    asio::co_spawn(strand, dial_peer(peer_id, link.address), asio::detached);
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
    while (!link.queue.empty() && send_now(link, link.queue.front())) link.queue.pop_front();
    if (!link.queue.empty()) want_dial(id, link);
  }
}

asio::awaitable<void> SwarmCore::dial_peer(std::string peer_id, std::string address) {
  auto self = shared_from_this();
  dials++;
  // (No co_await inside a conditional expression: GCC 12 destroys its
  // result too early.)
  core::Result<std::shared_ptr<net::Session>> result =
      Status(core::Code::kClosed, "the node is gone");
  if (auto n = node.lock()) result = co_await n->dial(address, peer_id);
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
    core::log_debug("membership", "dial " + peer_id.substr(0, 12) + " at " + address + ": " +
                                      result.status().to_string());
  } else {
    link.backoff = Millis(0);
    link.retry_at = TimePoint{};
    add_session(*result, true);
    while (!link.queue.empty() && send_now(link, link.queue.front())) link.queue.pop_front();
  }
  start_dials();
}

asio::awaitable<void> SwarmCore::dial_seed(std::string address) {
  auto self = shared_from_this();
  dials++;
  // (No co_await inside a conditional expression: GCC 12 destroys its
  // result too early.)
  core::Result<std::shared_ptr<net::Session>> result =
      Status(core::Code::kClosed, "the node is gone");
  if (auto n = node.lock()) result = co_await n->dial(address);
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
    co_return;
  }
  join_errors[address] = "session open, but no member list received";
  d.backoff = Millis(0);
  add_session(*result, true);
  Link& link = links[(*result)->peer_id()];
  if (link.address.empty()) link.address = address;
  link.last_used = Clock::now();
  for (const Frame& f : d.queue) {
    if (!send_now(link, f)) frames_dropped++;
  }
  d.queue.clear();
}

void SwarmCore::add_session(const std::shared_ptr<net::Session>& session, bool own) {
  if (!session->is_open()) return;
  Link& link = links[session->peer_id()];
  if (std::find(link.sessions.begin(), link.sessions.end(), session) == link.sessions.end()) {
    link.sessions.push_back(session);
  }
  if (own) {
    link.own = session;
    link.last_used = Clock::now();
  }
}

void SwarmCore::close_idle(TimePoint now) {
  std::vector<std::pair<TimePoint, std::string>> own;
  for (auto it = links.begin(); it != links.end();) {
    Link& l = it->second;
    if (l.own && (!l.own->is_open() || now - l.last_used >= config.session_idle)) {
      l.own->close(Status(core::Code::kClosed, "membership: idle"));
      std::erase(l.sessions, l.own);
      l.own.reset();
    }
    if (l.own) own.emplace_back(l.last_used, it->first);
    const bool empty = l.sessions.empty() && l.queue.empty() && !l.dialing && !l.waiting;
    it = empty && now - l.last_used >= kForgetLink ? links.erase(it) : std::next(it);
  }
  if (own.size() <= config.max_own_sessions) return;
  std::sort(own.begin(), own.end());
  for (size_t i = 0; i + config.max_own_sessions < own.size(); ++i) {
    Link& l = links[own[i].second];
    l.own->close(Status(core::Code::kClosed, "membership: too many sessions"));
    std::erase(l.sessions, l.own);
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
