// The relay's side: reservations (peers that asked to be reached through
// this one), RELAY_CONNECT (a token for a pair of halves), the halves that
// arrive at the listener with a relay preamble, and circuits, which copy
// ciphertext both ways within net.relay's caps (circuits, bytes/s per
// direction, idle timeout) and count every byte.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <vector>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/crypto/keys.hpp"
#include "traversal_core.hpp"

namespace gossip::net::detail {

using core::Status;

// Two spliced connections on one strand: a pump per direction and a
// watchdog for the idle timeout. Whatever ends first ends both.
struct Circuit : std::enable_shared_from_this<Circuit> {
  Circuit(asio::io_context& io, asio::ip::tcp::socket a_, asio::ip::tcp::socket b_)
      : strand(asio::make_strand(io)),
        a(std::move(a_)),
        b(std::move(b_)),
        idle_timer(strand),
        last(Clock::now()) {}
  Strand strand;
  asio::ip::tcp::socket a, b;
  asio::steady_timer idle_timer;
  Clock::time_point last;
  bool ended = false;
  std::string what;  // "A -> B" for the log

  void end() {
    if (ended) return;
    ended = true;
    asio::error_code ec;
    a.shutdown(asio::socket_base::shutdown_both, ec);
    b.shutdown(asio::socket_base::shutdown_both, ec);
    a.close(ec);
    b.close(ec);
    idle_timer.cancel();
  }
};

namespace {

asio::awaitable<void> pump(std::shared_ptr<Circuit> c, asio::ip::tcp::socket& from,
                           asio::ip::tcp::socket& to, std::shared_ptr<TraversalCore> core) {
  std::vector<uint8_t> buf(64 * 1024);
  const double rate = static_cast<double>(core->relay_cfg.max_bytes_per_s);
  // Pacing: the virtual link is free again at `free_at`; a burst of up to
  // 50 ms of data (at least one buffer) passes without waiting.
  Clock::time_point free_at = Clock::now();
  const auto burst = std::chrono::milliseconds(50);
  asio::steady_timer pace(c->strand);
  while (!c->ended) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), use_nothrow_t);
    if (ec || c->ended) break;
    c->last = Clock::now();
    if (rate > 0) {
      free_at = std::max(free_at, c->last - burst) +
                std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(static_cast<double>(n) / rate));
      if (free_at > c->last + burst) {
        pace.expires_at(free_at - burst);
        co_await pace.async_wait(use_nothrow_t);
        if (c->ended) break;
      }
    }
    auto [ec2, m] = co_await asio::async_write(to, asio::buffer(buf.data(), n), use_nothrow_t);
    if (ec2) break;
    core->counters.relay_bytes += m;
    c->last = Clock::now();
  }
  c->end();
  co_return;
}

asio::awaitable<void> watch_idle(std::shared_ptr<Circuit> c, std::shared_ptr<TraversalCore> core) {
  const auto idle = core->relay_cfg.idle_timeout;
  while (!c->ended) {
    const auto now = Clock::now();
    if (now - c->last >= idle) {
      TraversalCore::refuse(
          core->counters.idle_closed, "circuit-idle",
          "circuit " + c->what + " closed: idle for " + std::to_string(idle.count()) + " ms");
      c->end();
      break;
    }
    c->idle_timer.expires_at(c->last + idle);
    co_await c->idle_timer.async_wait(use_nothrow_t);
  }
}

}  // namespace

void TraversalCore::on_reserve(const std::shared_ptr<Session>& s, const nlohmann::json& body) {
  const uint64_t rid = body.value("rid", uint64_t{0});
  const std::string& id = s->peer_id();
  if (!relay_cfg.enabled) {
    refuse(counters.refused_disabled, "reserve-disabled",
           "reservation from " + core::short_peer_id(id) + " refused: relaying is off here");
    send(*s, kRelayReserved, {{"rid", rid}, {"ok", false}, {"reason", "relaying is disabled"}});
    return;
  }
  // Forget reservations whose session closed before counting against the cap.
  for (auto it = reservations.begin(); it != reservations.end();) {
    auto held = it->second.lock();
    it = held && held->is_open() ? std::next(it) : reservations.erase(it);
  }
  if (!reservations.contains(id) && reservations.size() >= relay_cfg.max_reservations) {
    refuse(counters.refused_cap, "reserve-cap",
           "reservation from " + core::short_peer_id(id) +
               " refused: " + std::to_string(relay_cfg.max_reservations) + " reservations held");
    send(*s, kRelayReserved,
         {{"rid", rid},
          {"ok", false},
          {"reason", "relay holds its maximum of " + std::to_string(relay_cfg.max_reservations) +
                         " reservations"}});
    return;
  }
  reservations[id] = s;
  counters.reservations = reservations.size();
  core::log_info("relay", "peer " + core::short_peer_id(id) + " reachable through this relay");
  send(*s, kRelayReserved, {{"rid", rid}, {"ok", true}});
}

void TraversalCore::on_connect(const std::shared_ptr<Session>& s, const nlohmann::json& body) {
  const uint64_t rid = body.value("rid", uint64_t{0});
  const std::string target = body.value("target", std::string());
  const std::string& from = s->peer_id();
  const auto no = [&](std::atomic<uint64_t>& counter, const char* cause, const std::string& why) {
    refuse(counter, cause,
           "relay from " + core::short_peer_id(from) + " to " + core::short_peer_id(target) +
               " refused: " + why);
    send(*s, kRelayRefuse, {{"rid", rid}, {"reason", why}});
  };
  if (!relay_cfg.enabled) return no(counters.refused_disabled, "relay-disabled", "relaying is off");
  auto r = reservations.find(target);
  std::shared_ptr<Session> to = r == reservations.end() ? nullptr : r->second.lock();
  if (!to || !to->is_open()) {
    return no(counters.refused_not_reserved, "relay-not-reserved",
              "the target never asked to be reached through this relay (or its session closed)");
  }
  if (target == from) return no(counters.refused_not_reserved, "relay-self", "target is the asker");
  if (circuits_in_use() >= relay_cfg.max_circuits) {
    return no(counters.refused_cap, "relay-cap",
              std::to_string(relay_cfg.max_circuits) + " circuits in use (net.relay.max_circuits)");
  }
  Token token{};
  crypto::random_bytes(token);
  Pending p{from, target, std::nullopt, std::make_shared<asio::steady_timer>(strand)};
  p.timer->expires_after(relay_cfg.pair_timeout);
  p.timer->async_wait([self = shared_from_this(), token](const asio::error_code& ec) {
    if (ec) return;
    auto it = self->pending.find(token);
    if (it == self->pending.end()) return;
    refuse(self->counters.pair_timeouts, "relay-pair-timeout",
           "circuit " + core::short_peer_id(it->second.from) + " -> " +
               core::short_peer_id(it->second.to) + ": the other half did not connect within " +
               std::to_string(self->relay_cfg.pair_timeout.count()) + " ms");
    asio::error_code e;
    if (it->second.half) it->second.half->close(e);
    self->pending.erase(it);
  });
  pending.emplace(token, std::move(p));
  const std::string hex = token_hex(token);
  // The halves come to this peer's listening port (the session may have
  // been dialed from the other side, from a port nobody listens on).
  const uint16_t port = node.local_endpoint().port();
  send(*to, kRelayIncoming, {{"from", from}, {"token", hex}, {"port", port}});
  send(*s, kRelayReady, {{"rid", rid}, {"token", hex}, {"port", port}});
}

void TraversalCore::on_relay_half(asio::ip::tcp::socket socket, const Token& token) {
  asio::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  auto it = pending.find(token);
  if (it == pending.end()) {
    refuse(counters.refused_token, "relay-token",
           "relay half from " + remote.address().to_string() +
               " refused: its token was never handed out (or expired)");
    socket.close(ec);
    return;
  }
  if (!it->second.half) {
    it->second.half.emplace(std::move(socket));
    return;
  }
  Pending p = std::move(it->second);
  pending.erase(it);
  p.timer->cancel();
  start_circuit(std::move(*p.half), std::move(socket), p);
}

void TraversalCore::start_circuit(asio::ip::tcp::socket a, asio::ip::tcp::socket b,
                                  const Pending& p) {
  auto c = std::make_shared<Circuit>(io, std::move(a), std::move(b));
  c->what = core::short_peer_id(p.from) + " <-> " + core::short_peer_id(p.to);
  asio::error_code ec;
  c->a.set_option(asio::ip::tcp::no_delay(true), ec);
  c->b.set_option(asio::ip::tcp::no_delay(true), ec);
  circuits.insert(c);
  counters.circuits_opened++;
  counters.circuits_active = circuits.size();
  core::log_info("relay", "circuit " + c->what + " open");
  auto self = shared_from_this();
  // Each pump ends the circuit; the last to finish reports it done.
  auto ends = std::make_shared<std::atomic<int>>(3);
  auto done = [self, c, ends](std::exception_ptr) {
    if (--*ends == 0) asio::post(self->strand, [self, c] { self->circuit_done(c); });
  };
  asio::co_spawn(c->strand, pump(c, c->a, c->b, self), done);
  asio::co_spawn(c->strand, pump(c, c->b, c->a, self), done);
  asio::co_spawn(c->strand, watch_idle(c, self), done);
}

void TraversalCore::circuit_done(const std::shared_ptr<Circuit>& c) {
  if (!circuits.erase(c)) return;
  counters.circuits_active = circuits.size();
  asio::post(c->strand, [c] { c->end(); });
  core::log_debug("relay", "circuit " + c->what + " closed");
}

}  // namespace gossip::net::detail
