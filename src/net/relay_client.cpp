// The relayed peers' side. A private peer keeps a reservation with a relay
// on a session of its own (re-dialed with a backoff when it closes) and
// answers RELAY_INCOMING by connecting a half to the relay and running the
// handshake as responder over it. A peer that cannot dial a member asks a
// relay for a circuit (RELAY_CONNECT) and runs the handshake as initiator,
// expecting the member's peer id, over its own half.
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/write.hpp>

#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "socket_deadline.hpp"
#include "traversal_core.hpp"

namespace gossip::net::detail {

using core::Status;

namespace {

// A TCP connection to `relay` that has sent the relay preamble for `token`,
// within `deadline`.
asio::awaitable<core::Result<asio::ip::tcp::socket>> open_half(Strand strand,
                                                               asio::ip::tcp::endpoint relay,
                                                               std::string token_text,
                                                               std::chrono::milliseconds deadline) {
  // (Tokens travel into coroutines as hex: GCC 12 cannot copy a std::array
  // parameter into a coroutine frame.)
  Token token = *parse_token(token_text);
  auto socket = std::make_shared<asio::ip::tcp::socket>(strand);
  SocketDeadline timer(strand, socket);
  timer.arm(deadline);
  auto [ec] = co_await socket->async_connect(relay, use_nothrow_t);
  if (!ec) {
    auto pre = encode_preamble(PreambleKind::kRelay, token);
    auto [ec2, n] = co_await asio::async_write(*socket, asio::buffer(pre), use_nothrow_t);
    ec = ec2;
  }
  timer.disarm();
  const std::string where = relay.address().to_string() + ":" + std::to_string(relay.port());
  if (timer.expired()) co_return core::timeout_error("connect to relay " + where + ": timed out");
  if (ec) co_return core::unavailable("connect to relay " + where + ": " + ec.message());
  co_return std::move(*socket);
}

}  // namespace

asio::awaitable<void> TraversalCore::keep_reservation(core::Endpoint relay,
                                                      std::optional<std::string> id) {
  auto self = shared_from_this();
  const std::string address = relay.to_string();
  if (kept.count(address) != 0) co_return;  // already kept by another loop
  const uint64_t generation = next_keep++;
  kept[address] = generation;
  auto backoff = std::chrono::milliseconds(1000);
  const auto max_backoff = std::chrono::milliseconds(30000);
  asio::steady_timer timer(strand);
  const auto wanted = [&] {
    auto k = kept.find(address);
    return !closed && k != kept.end() && k->second == generation;
  };
  while (wanted()) {
    auto r = co_await node.dial(relay, id);
    if (r && !wanted()) {
      (*r)->close(Status(core::Code::kClosed, "reservation released"));
      break;
    }
    std::string why;
    if (r) {
      auto s = *r;
      auto answer = co_await request(s, kRelayReserve, nlohmann::json::object(),
                                     std::chrono::milliseconds(5000));
      if (answer && answer->first == kRelayReserved && answer->second.value("ok", false)) {
        held[s->peer_id()] = {s, true, address};
        publish_reserved();
        core::log_info("relay", "reachable through relay " + core::short_peer_id(s->peer_id()) +
                                    " at " + relay.to_string());
        backoff = std::chrono::milliseconds(1000);
        while (wanted() && s->is_open()) {  // hold it until it closes or is released
          timer.expires_after(std::chrono::milliseconds(500));
          co_await timer.async_wait(use_nothrow_t);
        }
        if (auto h = held.find(s->peer_id()); h != held.end() && h->second.session == s) {
          held.erase(h);
        }
        publish_reserved();
        if (!wanted()) {
          s->close(Status(core::Code::kClosed, "reservation released"));
          break;
        }
        why = "the relay's session closed";
      } else {
        why = answer ? answer->second.value("reason", std::string("refused"))
                     : answer.status().message();
        s->close(Status(core::Code::kClosed, "reservation refused"));
      }
    } else {
      why = r.status().message();
    }
    if (!wanted()) break;
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "reserve-" + relay.to_string(),
                           "reservation with relay " + relay.to_string() + ": " + why +
                               "; retrying in " + std::to_string(backoff.count()) + " ms");
    // Waits in short steps, so that a release() ends the loop promptly.
    for (auto waited = std::chrono::milliseconds(0); waited < backoff && wanted();
         waited += std::chrono::milliseconds(250)) {
      timer.expires_after(std::chrono::milliseconds(250));
      co_await timer.async_wait(use_nothrow_t);
    }
    backoff = std::min(backoff * 2, max_backoff);
  }
  // Only this loop's own entry: a later reserve_with may have started
  // another loop for the address while this one was winding down.
  if (auto k = kept.find(address); k != kept.end() && k->second == generation) kept.erase(k);
}

void TraversalCore::release(const std::string& address) {
  if (kept.erase(address) == 0) return;
  for (auto it = held.begin(); it != held.end(); ++it) {
    if (it->second.address != address) continue;
    it->second.session->close(Status(core::Code::kClosed, "reservation released"));
    held.erase(it);
    break;
  }
  publish_reserved();
  core::log_info("relay", "released the reservation with relay " + address);
}

void TraversalCore::on_incoming(const std::shared_ptr<Session>& s, const nlohmann::json& body) {
  // Only a relay this peer reserved with may make it connect somewhere.
  auto h = held.find(s->peer_id());
  if (h == held.end() || h->second.session != s) {
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "incoming-unasked",
                           "RELAY_INCOMING from " + core::short_peer_id(s->peer_id()) +
                               " ignored: no reservation with it on that session");
    return;
  }
  auto token = parse_token(body.value("token", nlohmann::json()));
  const std::string from = body.value("from", std::string());
  if (!token || from.empty()) {
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "incoming-bad",
                           "RELAY_INCOMING from " + core::short_peer_id(s->peer_id()) +
                               " without a valid token or peer; ignored");
    return;
  }
  auto relay = s->remote_endpoint();
  relay.port(body.value("port", relay.port()));
  asio::co_spawn(strand, answer_incoming(relay, token_hex(*token), from), asio::detached);
}

asio::awaitable<void> TraversalCore::answer_incoming(asio::ip::tcp::endpoint relay,
                                                     std::string token, std::string from) {
  auto self = shared_from_this();
  if (closed) co_return;
  auto half = co_await open_half(strand, relay, token, node.config().handshake_timeout);
  if (closed) co_return;
  if (!half) {
    core::log_rate_limited(
        core::LogLevel::kWarn, "relay", "incoming-connect",
        "relayed session from " + core::short_peer_id(from) + ": " + half.status().message());
    co_return;
  }
  auto r = co_await node.respond_over(std::move(*half));
  if (!r) {
    core::log_rate_limited(
        core::LogLevel::kWarn, "relay", "incoming-handshake",
        "relayed session from " + core::short_peer_id(from) + ": " + r.status().to_string());
    co_return;
  }
  if ((*r)->peer_id() != from) {
    // The relay announced one peer and another came: not what we agreed to.
    core::log_rate_limited(core::LogLevel::kWarn, "relay", "incoming-other",
                           "relayed session announced from " + core::short_peer_id(from) +
                               " came from " + core::short_peer_id((*r)->peer_id()) + "; closed");
    (*r)->close(core::auth_error("relayed session from an unannounced peer"));
    co_return;
  }
  remember(from, {PathKind::kRelayed, "", "", {}});
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> TraversalCore::dial_relayed(
    std::shared_ptr<Session> relay, std::string target) {
  auto self = shared_from_this();
  if (closed) co_return closed_error();
  const auto timeout = node.config().handshake_timeout;
  // (A braced list inside a co_await expression breaks GCC 12: name it.)
  nlohmann::json ask;
  ask["target"] = target;
  auto answer = co_await request(relay, kRelayConnect, std::move(ask), timeout);
  if (!answer) co_return answer.status();
  if (answer->first != kRelayReady) {
    co_return core::unavailable("relay " + core::short_peer_id(relay->peer_id()) + " refused: " +
                                answer->second.value("reason", std::string("no reason given")));
  }
  const std::string token = answer->second.value("token", std::string());
  if (!parse_token(token))
    co_return core::protocol_error("relay sent RELAY_READY without a valid token");
  auto where = relay->remote_endpoint();
  where.port(answer->second.value("port", where.port()));
  auto half = co_await open_half(strand, where, token, timeout);
  if (closed) co_return closed_error();
  if (!half) co_return half.status();
  co_return co_await node.dial_over(std::move(*half), target);
}

}  // namespace gossip::net::detail
