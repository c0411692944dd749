// Traversal: the frames of NAT traversal (0x68-0x6f) and where they go, the
// request/answer matching by rid, the path memory and the order of attempts
// Node::reach follows: direct, punched, relayed.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <cstring>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/net/router.hpp"
#include "traversal_core.hpp"

namespace gossip::net {
namespace detail {

using core::Status;

std::string token_hex(const Token& t) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : t) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::optional<Token> parse_token(const nlohmann::json& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() != 64) return std::nullopt;
  Token t{};
  for (size_t i = 0; i < 32; ++i) {
    int b = 0;
    for (int k = 0; k < 2; ++k) {
      const char c = s[2 * i + static_cast<size_t>(k)];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return std::nullopt;
      b = b * 16 + d;
    }
    t[i] = static_cast<uint8_t>(b);
  }
  return t;
}

TraversalCore::TraversalCore(asio::io_context& io_, Node& node_)
    : io(io_),
      node(node_),
      relay_cfg(node_.config().relay),
      punch_cfg(node_.config().punch),
      strand(asio::make_strand(io_)),
      punch_requests(node_.config().punch.max_per_minute),
      punch_syncs(node_.config().punch.max_per_minute) {}

void TraversalCore::refuse(std::atomic<uint64_t>& counter, const std::string& cause,
                           const std::string& message) {
  counter.fetch_add(1, std::memory_order_relaxed);
  core::log_rate_limited(core::LogLevel::kWarn, "relay", cause, message);
}

bool TraversalCore::send(Session& s, uint8_t type, const nlohmann::json& body) {
  const std::string text = body.dump();
  if (s.try_send_frame(type, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}))
    return true;
  core::log_rate_limited(core::LogLevel::kWarn, "relay", "send-dropped",
                         "frame " + std::to_string(type) + " to " +
                             core::short_peer_id(s.peer_id()) + " dropped: send queue full");
  return false;
}

void TraversalCore::on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) {
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "bad-frame",
                           "traversal frame " + std::to_string(type) + " from " +
                               core::short_peer_id(session.peer_id()) +
                               " is not a JSON object; dropped");
    return;
  }
  asio::post(strand,
             [self = shared_from_this(), s = session.shared_from_this(), type, j = std::move(j)] {
               if (!self->closed) self->handle(s, type, j);
             });
}

void TraversalCore::on_closed(Session& session, const Status& /*reason*/) {
  asio::post(strand, [self = shared_from_this(), id = session.peer_id(), s = &session] {
    auto r = self->reservations.find(id);
    if (r != self->reservations.end()) {
      auto held = r->second.lock();
      if (!held || held.get() == s || !held->is_open()) {
        self->reservations.erase(r);
        self->counters.reservations = self->reservations.size();
      }
    }
  });
}

void TraversalCore::handle(const std::shared_ptr<Session>& s, uint8_t type,
                           const nlohmann::json& body) {
  switch (type) {
    case kRelayReserve:
      on_reserve(s, body);
      return;
    case kRelayConnect:
      on_connect(s, body);
      return;
    case kRelayIncoming:
      on_incoming(s, body);
      return;
    case kPunchRequest:
      on_punch_request(s, body);
      return;
    case kPunchSync:
      if (body.value("rid", uint64_t{0}) == 0) {
        on_punch_sync(s, body);
        return;
      }
      break;
    default:
      break;
  }
  // An answer (RESERVED, READY, REFUSE, a PUNCH_SYNC for our request).
  const uint64_t rid = body.value("rid", uint64_t{0});
  answer(rid, type, body);
}

asio::awaitable<core::Result<std::pair<uint8_t, nlohmann::json>>> TraversalCore::request(
    std::shared_ptr<Session> s, uint8_t type, nlohmann::json body,
    std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  const uint64_t rid = next_rid++;
  body["rid"] = rid;
  if (!send(*s, type, body))
    co_return Status(core::Code::kClosed, "could not send to " + core::short_peer_id(s->peer_id()));
  asio::steady_timer timer(strand, timeout);
  Waiter w{&timer, std::nullopt, 0};
  waiters[rid] = &w;
  co_await timer.async_wait(use_nothrow_t);
  waiters.erase(rid);
  if (!w.reply) {
    co_return core::timeout_error("no answer from " + core::short_peer_id(s->peer_id()) +
                                  " within " + std::to_string(timeout.count()) + " ms");
  }
  co_return std::make_pair(w.reply_type, std::move(*w.reply));
}

void TraversalCore::answer(uint64_t rid, uint8_t type, const nlohmann::json& body) {
  auto it = waiters.find(rid);
  if (it == waiters.end()) return;  // late or unasked: nothing waits
  it->second->reply = body;
  it->second->reply_type = type;
  it->second->timer->cancel();
  waiters.erase(it);
}

void TraversalCore::publish_reserved() {
  std::vector<std::string> ids;
  for (const auto& [id, h] : held) {
    if (h.ok) ids.push_back(id);
  }
  std::lock_guard lock(mu);
  reserved = std::move(ids);
}

void TraversalCore::remember(const std::string& peer, PathInfo info) {
  info.when = Clock::now();
  std::lock_guard lock(mu);
  paths[peer] = std::move(info);
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> TraversalCore::reach(
    core::Endpoint endpoint, std::string peer_id) {
  auto self = shared_from_this();
  if (closed) co_return closed_error();
  // A session already open with the member (dialed, accepted, punched or
  // relayed) is the path: a second punch between the same listening ports
  // could not even bind while it stands.
  if (auto open = node.session_to(peer_id); open && open->is_open()) co_return open;
  std::optional<PathInfo> last;
  {
    std::lock_guard lock(mu);
    if (auto it = paths.find(peer_id); it != paths.end()) last = it->second;
  }
  // A member found only by a detour is not dialed directly again for a while.
  const bool skip_direct =
      last && last->kind != PathKind::kDirect && Clock::now() - last->when < relay_cfg.direct_retry;
  std::string why;
  if (!skip_direct) {
    auto r = co_await node.dial(endpoint, peer_id);
    if (r) {
      remember(peer_id, {PathKind::kDirect, "", "", {}});
      co_return r;
    }
    // A wrong key or our own key will not change with another path, and a
    // link the LinkFilter cuts is cut whatever the path (a punch or a relay
    // would be refused at the handshake anyway, after seconds of trying).
    if (r.status().code() == core::Code::kAuth || node.link_blocked(peer_id)) co_return r;
    if (closed) co_return closed_error();
    why = "direct: " + r.status().message();
  } else {
    why = "direct: skipped (not reachable within the last " +
          std::to_string(relay_cfg.direct_retry.count()) + " ms)";
  }
  // Candidates: the peers with an open session here, a remembered helper first.
  std::vector<std::string> helpers = node.session_peer_ids();
  std::erase(helpers, peer_id);
  if (last && !last->via.empty()) {
    if (auto it = std::find(helpers.begin(), helpers.end(), last->via); it != helpers.end()) {
      std::rotate(helpers.begin(), it, it + 1);
    }
  }
  constexpr size_t kMaxHelpers = 3;
  if (helpers.size() > kMaxHelpers) helpers.resize(kMaxHelpers);
  const bool relayed_before = last && last->kind == PathKind::kRelayed && skip_direct;
  if (punch_cfg.enabled && !relayed_before) {
    for (const std::string& h : helpers) {
      if (closed) co_return closed_error();
      auto s = node.session_to(h);
      if (!s) continue;
      // (A punch the other side started meanwhile may have opened one.)
      if (auto open = node.session_to(peer_id); open && open->is_open()) co_return open;
      auto r = co_await dial_punched(s, peer_id, endpoint.port);
      if (r) {
        counters.punched_ok++;
        remember(peer_id, {PathKind::kPunched, h, why, {}});
        core::log_rate_limited(core::LogLevel::kInfo, "relay", "punched-" + peer_id,
                               "reached " + core::short_peer_id(peer_id) +
                                   " punched (coordinator " + core::short_peer_id(h) + ")");
        co_return r;
      }
      counters.punched_failed++;
      why += "; punch via " + core::short_peer_id(h) + ": " + r.status().message();
    }
  }
  for (const std::string& h : helpers) {
    if (closed) co_return closed_error();
    auto s = node.session_to(h);
    if (!s) continue;
    if (auto open = node.session_to(peer_id); open && open->is_open()) co_return open;
    auto r = co_await dial_relayed(s, peer_id);
    if (r) {
      counters.relayed_ok++;
      remember(peer_id, {PathKind::kRelayed, h, why, {}});
      core::log_rate_limited(core::LogLevel::kInfo, "relay", "relayed-" + peer_id,
                             "reached " + core::short_peer_id(peer_id) + " relayed through " +
                                 core::short_peer_id(h) + " (" + why + ")");
      co_return r;
    }
    counters.relayed_failed++;
    why += "; relay via " + core::short_peer_id(h) + ": " + r.status().message();
  }
  if (helpers.empty()) why += "; no member to punch or relay through";
  // A session opened meanwhile by the other side's punch or relay is the
  // path, and its kind (remembered by whoever opened it) stays.
  if (closed) co_return closed_error();
  if (auto open = node.session_to(peer_id); open && open->is_open()) co_return open;
  remember(peer_id, {PathKind::kUnreachable, "", why, {}});
  core::log_rate_limited(core::LogLevel::kInfo, "relay", "unreachable-" + peer_id,
                         "no path to " + core::short_peer_id(peer_id) + ": " + why);
  co_return core::unavailable("no path to " + core::short_peer_id(peer_id) + " (" + why + ")");
}

void TraversalCore::close() {
  if (closed.exchange(true)) return;
  asio::post(strand, [self = shared_from_this()] {
    for (auto& [token, p] : self->pending) {
      if (p.timer) p.timer->cancel();
      asio::error_code ec;
      if (p.half) p.half->close(ec);
    }
    self->pending.clear();
    auto circuits = self->circuits;
    for (const auto& c : circuits) self->circuit_done(c);
    self->reservations.clear();
    for (auto& [id, h] : self->held) {
      if (h.session) h.session->close(Status(core::Code::kClosed, "traversal closed"));
    }
    self->held.clear();
    self->kept.clear();
    self->publish_reserved();
    for (auto& [rid, w] : self->waiters) w->timer->cancel();
    for (auto& [t, p] : self->punches) {
      if (p->wake) p->wake->cancel();
    }
  });
}

}  // namespace detail

namespace {
// co_spawn needs a default-constructible result; core::Result has none.
template <typename T>
asio::awaitable<std::optional<T>> optional_of(asio::awaitable<T> a) {
  co_return std::optional<T>(co_await std::move(a));
}
using SessionResult = core::Result<std::shared_ptr<Session>>;
// Runs `a` on the Traversal's strand and returns its result.
asio::awaitable<SessionResult> on_strand(const detail::Strand& strand,
                                         asio::awaitable<SessionResult> a) {
  auto r = co_await asio::co_spawn(strand, optional_of(std::move(a)), asio::use_awaitable);
  co_return std::move(*r);
}
}  // namespace

Traversal::Traversal(asio::io_context& io, Node& node)
    : core_(std::make_shared<detail::TraversalCore>(io, node)) {}

Traversal::~Traversal() {
  close();
}

void Traversal::install(Router& router) {
  router.add(kTraversalFirst, kTraversalLast, core_);
  std::weak_ptr<detail::TraversalCore> weak = core_;
  core_->node.set_preamble_handler(
      [weak](asio::ip::tcp::socket socket, PreambleKind kind, const Token& token) {
        if (auto c = weak.lock()) c->on_preamble(std::move(socket), kind, token);
      });
  core_->node.set_reach(
      [weak](core::Endpoint endpoint,
             std::string peer_id) -> asio::awaitable<core::Result<std::shared_ptr<Session>>> {
        auto c = weak.lock();
        if (!c) co_return core::Status(core::Code::kClosed, "traversal closed");
        co_return co_await on_strand(c->strand, c->reach(std::move(endpoint), peer_id));
      });
}

void detail::TraversalCore::on_preamble(asio::ip::tcp::socket socket, PreambleKind kind,
                                        const Token& token) {
  asio::post(strand, [self = shared_from_this(), sock = std::move(socket), kind, token]() mutable {
    if (self->closed) return;
    if (kind == PreambleKind::kRelay) {
      self->on_relay_half(std::move(sock), token);
    } else {
      self->on_punch_half(std::move(sock), token);
    }
  });
}

void Traversal::reserve_with(core::Endpoint relay, std::optional<std::string> relay_id) {
  asio::co_spawn(core_->strand, core_->keep_reservation(std::move(relay), std::move(relay_id)),
                 asio::detached);
}

void Traversal::release(const core::Endpoint& relay) {
  asio::post(core_->strand, [c = core_, address = relay.to_string()] { c->release(address); });
}

std::vector<std::string> Traversal::reserved_relays() const {
  std::lock_guard lock(core_->mu);
  return core_->reserved;
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Traversal::reach(core::Endpoint endpoint,
                                                                         std::string peer_id) {
  auto c = core_;
  co_return co_await on_strand(c->strand, c->reach(std::move(endpoint), std::move(peer_id)));
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Traversal::dial_relayed(
    std::shared_ptr<Session> relay, std::string target) {
  auto c = core_;
  co_return co_await on_strand(c->strand, c->dial_relayed(std::move(relay), std::move(target)));
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Traversal::dial_punched(
    std::shared_ptr<Session> coordinator, std::string target, uint16_t target_port) {
  auto c = core_;
  co_return co_await on_strand(
      c->strand, c->dial_punched(std::move(coordinator), std::move(target), target_port));
}

std::map<std::string, PathInfo> Traversal::paths() const {
  std::lock_guard lock(core_->mu);
  return core_->paths;
}

TraversalCounters Traversal::counters() const {
  const auto& a = core_->counters;
  auto g = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  return {g(a.reservations), g(a.circuits_active),  g(a.circuits_opened),
          g(a.relay_bytes),  g(a.refused_disabled), g(a.refused_not_reserved),
          g(a.refused_cap),  g(a.refused_token),    g(a.pair_timeouts),
          g(a.idle_closed),  g(a.relayed_ok),       g(a.relayed_failed),
          g(a.punched_ok),   g(a.punched_failed),   g(a.punch_refused_rate)};
}

void Traversal::close() {
  core_->close();
}

}  // namespace gossip::net
