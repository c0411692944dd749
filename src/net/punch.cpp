// TCP hole punching. The coordinator answers PUNCH_REQUEST (rate-limited
// per requesting peer) by sending both ends PUNCH_SYNC: the other's address
// as the coordinator observes it (IP of its session, the port that peer
// listens on), a delay and a token. Each end then dials the other from its
// own listening port (SO_REUSEADDR + SO_REUSEPORT) until one connection
// stands: by simultaneous open, or because one end's listener accepted the
// other's SYN (it then arrives here as a punch preamble). Both ends send the
// punch preamble and check the other's token; the lower peer id runs the
// Noise handshake as initiator, expecting the other's id.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "gossip/core/endpoint.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/crypto/keys.hpp"
#include "socket_deadline.hpp"
#include "traversal_core.hpp"

namespace gossip::net::detail {

using core::Status;

namespace {

std::string text_of(const asio::ip::tcp::endpoint& e) {
  std::string a = e.address().to_string();
  if (e.address().is_v6()) a = '[' + a + ']';
  return a + ":" + std::to_string(e.port());
}

// One dial from `local` to `remote` that sends our punch preamble and reads
// the other end's, each step within `step`.
asio::awaitable<core::Result<asio::ip::tcp::socket>> punch_once(Strand strand,
                                                                asio::ip::tcp::endpoint local,
                                                                asio::ip::tcp::endpoint remote,
                                                                std::string token_text,
                                                                std::chrono::milliseconds step) {
  Token token = *parse_token(token_text);
  auto socket = std::make_shared<asio::ip::tcp::socket>(strand);
  asio::error_code ec;
  socket->open(remote.protocol(), ec);
  if (!ec) socket->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    socket->set_option(ReusePort(true), ec);
  }
  // Every punch between two peers has the same 4-tuple (both listening
  // ports): a closed punch connection left in TIME_WAIT would make the next
  // punch fail ("Cannot assign requested address") for a minute. A close
  // with a reset leaves none (bytes still unsent at close are dropped; the
  // session is over by then).
  if (!ec) socket->set_option(asio::socket_base::linger(true, 0), ec);
  if (!ec) socket->bind(local, ec);
  if (ec) co_return core::unavailable("bind " + text_of(local) + ": " + ec.message());
  SocketDeadline deadline(strand, socket);
  deadline.arm(step);
  auto [cec] = co_await socket->async_connect(remote, use_nothrow_t);
  deadline.disarm();
  if (cec) co_return core::unavailable("connect " + text_of(remote) + ": " + cec.message());
  const auto mine = encode_preamble(PreambleKind::kPunch, token);
  deadline.arm(step);
  auto [wec, wn] = co_await asio::async_write(*socket, asio::buffer(mine), use_nothrow_t);
  std::array<uint8_t, kPreambleBytes> theirs{};
  asio::error_code rec = wec;
  if (!rec) {
    auto [e2, rn] = co_await asio::async_read(*socket, asio::buffer(theirs), use_nothrow_t);
    rec = e2;
  }
  deadline.disarm();
  if (rec)
    co_return core::unavailable("punch preamble with " + text_of(remote) + ": " + rec.message());
  const auto p = decode_preamble(theirs);
  if (!p || p->kind != PreambleKind::kPunch || p->token != token) {
    co_return core::protocol_error(text_of(remote) + " answered without this punch's token");
  }
  co_return std::move(*socket);
}

}  // namespace

void TraversalCore::on_punch_request(const std::shared_ptr<Session>& s,
                                     const nlohmann::json& body) {
  const uint64_t rid = body.value("rid", uint64_t{0});
  const std::string target = body.value("target", std::string());
  const std::string& from = s->peer_id();
  const auto no = [&](const std::string& why) {
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "punch-refused",
                           "punch " + core::short_peer_id(from) + " -> " +
                               core::short_peer_id(target) + " refused: " + why);
    send(*s, kPunchSync, {{"rid", rid}, {"ok", false}, {"reason", why}});
  };
  if (!punch_cfg.enabled) return no("punching is disabled here");
  if (!punch_requests.allow(from, Clock::now())) {
    counters.punch_refused_rate++;
    return no("more than " + std::to_string(punch_cfg.max_per_minute) +
              " punch requests in a minute (net.punch.max_per_minute)");
  }
  auto other = node.session_to(target);
  if (!other || target == from) return no("no session with the target here");
  const uint16_t port = body.value("port", uint16_t{0});
  const uint16_t target_port = body.value("target_port", uint16_t{0});
  if (port == 0 || target_port == 0) return no("the request names no listening ports");
  Token token{};
  crypto::random_bytes(token);
  const std::string hex = token_hex(token);
  const auto delay = static_cast<int64_t>(punch_cfg.delay.count());
  const asio::ip::tcp::endpoint a(s->remote_endpoint().address(), port);
  const asio::ip::tcp::endpoint b(other->remote_endpoint().address(), target_port);
  send(*other, kPunchSync,
       {{"rid", 0},
        {"ok", true},
        {"peer", from},
        {"address", text_of(a)},
        {"delay_ms", delay},
        {"token", hex}});
  send(*s, kPunchSync,
       {{"rid", rid},
        {"ok", true},
        {"peer", target},
        {"address", text_of(b)},
        {"delay_ms", delay},
        {"token", hex}});
}

void TraversalCore::on_punch_sync(const std::shared_ptr<Session>& s, const nlohmann::json& body) {
  const std::string& coordinator = s->peer_id();
  if (!punch_cfg.enabled) return;
  if (!punch_syncs.allow(coordinator, Clock::now())) {
    counters.punch_refused_rate++;
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "punch-flood",
                           "PUNCH_SYNC from " + core::short_peer_id(coordinator) +
                               " ignored: more than " + std::to_string(punch_cfg.max_per_minute) +
                               " in a minute");
    return;
  }
  auto token = parse_token(body.value("token", nlohmann::json()));
  const std::string peer = body.value("peer", std::string());
  const std::string address = body.value("address", std::string());
  const auto delay =
      std::chrono::milliseconds(std::clamp<int64_t>(body.value("delay_ms", int64_t{0}), 0, 10000));
  if (!token || peer.empty() || address.empty()) return;
  asio::co_spawn(
      strand,
      [self = shared_from_this(), peer, address, token = token_hex(*token), delay,
       coordinator]() -> asio::awaitable<void> {
        auto r = co_await self->run_punch(peer, address, token, delay);
        if (r) {
          self->counters.punched_ok++;
          self->remember(peer, {PathKind::kPunched, coordinator, "", {}});
        } else if (r.status().code() != core::Code::kClosed || !self->node.session_to(peer)) {
          self->counters.punched_failed++;
          core::log_rate_limited(
              core::LogLevel::kInfo, "relay", "punch-failed",
              "punch with " + core::short_peer_id(peer) + ": " + r.status().message());
        }
      },
      asio::detached);
}

void TraversalCore::on_punch_half(asio::ip::tcp::socket socket, const Token& token) {
  auto it = punches.find(token);
  asio::error_code ec;
  if (it == punches.end() || it->second->accepted) {
    refuse(counters.refused_token, "punch-token",
           "punch connection from " + socket.remote_endpoint(ec).address().to_string() +
               " refused: no punch with its token in progress");
    socket.close(ec);
    return;
  }
  socket.set_option(asio::socket_base::linger(true, 0), ec);  // (see punch_once)
  const auto mine = encode_preamble(PreambleKind::kPunch, token);
  asio::write(socket, asio::buffer(mine), ec);  // 40 bytes into an empty send buffer
  if (ec) return;
  it->second->accepted.emplace(std::move(socket));
  if (it->second->wake) it->second->wake->cancel();
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> TraversalCore::run_punch(
    std::string peer, std::string address, std::string token_text,
    std::chrono::milliseconds delay) {
  auto self = shared_from_this();
  if (closed) co_return closed_error();
  Token token = *parse_token(token_text);
  auto ep = core::parse_endpoint(address);
  if (!ep) co_return ep.status().with_context("punch address");
  asio::error_code ec;
  const auto ip = asio::ip::make_address(ep->host, ec);
  if (ec) co_return core::invalid_argument("punch address " + address + " is not an IP address");
  const asio::ip::tcp::endpoint remote(ip, ep->port);
  const asio::ip::tcp::endpoint local = node.local_endpoint();
  PunchAttempt attempt;
  asio::steady_timer wake(strand);
  attempt.wake = &wake;
  punches[token] = &attempt;
  wake.expires_after(delay);
  co_await wake.async_wait(use_nothrow_t);
  const auto deadline = Clock::now() + punch_cfg.attempt;
  std::optional<asio::ip::tcp::socket> got;
  std::string why = "no connection within " + std::to_string(punch_cfg.attempt.count()) + " ms";
  while (!closed && !attempt.accepted && Clock::now() < deadline) {
    // Both peers may punch (or relay) to each other at once (two tokens,
    // one 4-tuple): once one session stands, this punch could only fail to
    // bind. The caller finds that session (its kind stays as remembered).
    if (auto open = node.session_to(peer); open && open->is_open()) {
      punches.erase(token);
      co_return Status(core::Code::kClosed,
                       "a session with " + core::short_peer_id(peer) + " opened meanwhile");
    }
    auto r = co_await punch_once(strand, {local.address(), local.port()}, remote, token_text,
                                 std::chrono::milliseconds(500));
    if (attempt.accepted) break;
    if (r) {
      got.emplace(std::move(*r));
      break;
    }
    why = r.status().message();
    wake.expires_after(std::chrono::milliseconds(100));
    co_await wake.async_wait(use_nothrow_t);
  }
  punches.erase(token);
  if (closed) co_return closed_error();
  if (attempt.accepted) got = std::move(attempt.accepted);
  if (!got) co_return core::unavailable("punch to " + address + ": " + why);
  got->set_option(asio::socket_base::linger(true, 0), ec);  // (see punch_once)
  core::Result<std::shared_ptr<Session>> r = core::internal_error("unset");
  if (node.peer_id() < peer) {
    r = co_await node.dial_over(std::move(*got), peer);
  } else {
    r = co_await node.respond_over(std::move(*got));
    if (r && (*r)->peer_id() != peer) {
      (*r)->close(core::auth_error("punched session from an unexpected peer"));
      r = core::auth_error("punched session: expected " + core::short_peer_id(peer) + ", got " +
                           core::short_peer_id((*r)->peer_id()));
    }
  }
  co_return r;
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> TraversalCore::dial_punched(
    std::shared_ptr<Session> coordinator, std::string target, uint16_t target_port) {
  auto self = shared_from_this();
  if (closed) co_return closed_error();
  const uint16_t port = node.local_endpoint().port();
  // (A braced list inside a co_await expression breaks GCC 12: name it.)
  nlohmann::json ask;
  ask["target"] = target;
  ask["port"] = port;
  ask["target_port"] = target_port;
  auto answer =
      co_await request(coordinator, kPunchRequest, std::move(ask), node.config().handshake_timeout);
  if (!answer) co_return answer.status();
  if (answer->first != kPunchSync || !answer->second.value("ok", false)) {
    co_return core::unavailable(
        "coordinator " + core::short_peer_id(coordinator->peer_id()) +
        " refused: " + answer->second.value("reason", std::string("no reason given")));
  }
  const std::string token = answer->second.value("token", std::string());
  const std::string address = answer->second.value("address", std::string());
  if (!parse_token(token) || address.empty())
    co_return core::protocol_error("PUNCH_SYNC without a valid token or address");
  const auto delay = std::chrono::milliseconds(
      std::clamp<int64_t>(answer->second.value("delay_ms", int64_t{0}), 0, 10000));
  co_return co_await run_punch(target, address, token, delay);  // checks `closed` itself
}

}  // namespace gossip::net::detail
