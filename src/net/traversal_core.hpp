// Internal: the state of a Traversal (relay.hpp). Protocol state lives on
// `strand` (frames and preamble connections are posted there); counters are
// atomics; the path memory has a leaf mutex so STATUS can read it from any
// thread. Circuits (relay_server.cpp) copy bytes on strands of their own.
#pragma once

#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "gossip/net/limits.hpp"
#include "gossip/net/relay.hpp"

namespace gossip::net::detail {

using Strand = asio::strand<asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;
inline constexpr auto use_nothrow_t = asio::experimental::as_tuple(asio::use_awaitable);

struct AtomicTraversalCounters {
  std::atomic<uint64_t> reservations{0}, circuits_active{0}, circuits_opened{0}, relay_bytes{0},
      refused_disabled{0}, refused_not_reserved{0}, refused_cap{0}, refused_token{0},
      pair_timeouts{0}, idle_closed{0}, relayed_ok{0}, relayed_failed{0}, punched_ok{0},
      punched_failed{0}, punch_refused_rate{0};
};

struct Circuit;

struct TraversalCore final : SessionHandler, std::enable_shared_from_this<TraversalCore> {
  TraversalCore(asio::io_context& io_, Node& node_);

  asio::io_context& io;
  // Borrowed: the owner closes the Traversal before it destroys the Node,
  // and a coroutine that resumes after close() (its Node may be gone by
  // then, where the io_context outlives the peer) must not touch it: each
  // checks `closed` after every suspension before using `node`.
  Node& node;
  const RelayConfig relay_cfg;
  const PunchConfig punch_cfg;
  Strand strand;
  std::atomic<bool> closed{false};
  AtomicTraversalCounters counters;
  static core::Status closed_error() {
    return core::Status(core::Code::kClosed, "traversal closed");
  }

  // SessionHandler: frames 0x68-0x6f (decoded here, handled on the strand).
  void on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) override;
  void on_closed(Session& session, const core::Status& reason) override;
  // The Node's PreambleHandler.
  void on_preamble(asio::ip::tcp::socket socket, PreambleKind kind, const Token& token);

  // Strand: one decoded frame.
  void handle(const std::shared_ptr<Session>& s, uint8_t type, const nlohmann::json& body);
  // Sends a JSON frame without waiting (dropped, and logged, on a full queue).
  static bool send(Session& s, uint8_t type, const nlohmann::json& body);
  // Refusal bookkeeping: count + rate-limited log under `cause`.
  static void refuse(std::atomic<uint64_t>& counter, const std::string& cause,
                     const std::string& message);

  // --- relay server (relay_server.cpp), strand ----------------------------
  struct Pending {
    std::string from, to;
    std::optional<asio::ip::tcp::socket> half;  // the first half to arrive
    std::shared_ptr<asio::steady_timer> timer;  // pair timeout
  };
  std::map<std::string, std::weak_ptr<Session>, std::less<>> reservations;
  std::map<Token, Pending> pending;
  std::set<std::shared_ptr<Circuit>> circuits;
  void on_reserve(const std::shared_ptr<Session>& s, const nlohmann::json& body);
  void on_connect(const std::shared_ptr<Session>& s, const nlohmann::json& body);
  void on_relay_half(asio::ip::tcp::socket socket, const Token& token);
  void start_circuit(asio::ip::tcp::socket a, asio::ip::tcp::socket b, const Pending& p);
  void circuit_done(const std::shared_ptr<Circuit>& c);
  size_t circuits_in_use() const { return pending.size() + circuits.size(); }

  // --- requests and their answers (traversal.cpp), strand -----------------
  struct Waiter {
    asio::steady_timer* timer = nullptr;
    std::optional<nlohmann::json> reply;
    uint8_t reply_type = 0;
  };
  uint64_t next_rid = 1;
  std::map<uint64_t, Waiter*> waiters;
  // Sends `type` {rid, ...body} on `s` and waits (on the strand) for the
  // frame answering that rid, or `timeout`.
  asio::awaitable<core::Result<std::pair<uint8_t, nlohmann::json>>> request(
      std::shared_ptr<Session> s, uint8_t type, nlohmann::json body,
      std::chrono::milliseconds timeout);
  void answer(uint64_t rid, uint8_t type, const nlohmann::json& body);

  // --- relay client (relay_client.cpp) ------------------------------------
  struct Held {
    std::shared_ptr<Session> session;  // the reservation's own session
    bool ok = false;
    std::string address;  // the relay's address as reserve_with named it
  };
  std::map<std::string, Held> held;  // relay peer id -> reservation (strand)
  // Relay addresses reserve_with keeps, each with the generation of the
  // loop that keeps it (a release and a new reserve_with start another).
  std::map<std::string, uint64_t> kept;
  uint64_t next_keep = 1;
  void release(const std::string& address);
  void publish_reserved();  // copies held's ids into `reserved` (strand)
  asio::awaitable<void> keep_reservation(core::Endpoint relay, std::optional<std::string> id);
  void on_incoming(const std::shared_ptr<Session>& s, const nlohmann::json& body);
  // (Tokens enter coroutines as hex: GCC 12 cannot copy a std::array
  // parameter into a coroutine frame.)
  asio::awaitable<void> answer_incoming(asio::ip::tcp::endpoint relay, std::string token,
                                        std::string from);
  asio::awaitable<core::Result<std::shared_ptr<Session>>> dial_relayed(
      std::shared_ptr<Session> relay, std::string target);

  // --- punching (punch.cpp) ------------------------------------------------
  MinuteLimiter punch_requests{0}, punch_syncs{0};
  struct PunchAttempt {
    std::optional<asio::ip::tcp::socket> accepted;  // delivered by our listener
    asio::steady_timer* wake = nullptr;
  };
  std::map<Token, PunchAttempt*> punches;
  void on_punch_request(const std::shared_ptr<Session>& s, const nlohmann::json& body);
  void on_punch_sync(const std::shared_ptr<Session>& s, const nlohmann::json& body);
  void on_punch_half(asio::ip::tcp::socket socket, const Token& token);
  asio::awaitable<core::Result<std::shared_ptr<Session>>> run_punch(
      std::string peer, std::string address, std::string token, std::chrono::milliseconds delay);
  asio::awaitable<core::Result<std::shared_ptr<Session>>> dial_punched(
      std::shared_ptr<Session> coordinator, std::string target, uint16_t target_port);

  // --- paths (traversal.cpp) -----------------------------------------------
  mutable std::mutex mu;  // leaf: guards `paths` and `reserved` only
  std::map<std::string, PathInfo> paths;
  std::vector<std::string> reserved;  // relays holding a reservation now
  void remember(const std::string& peer, PathInfo info);
  asio::awaitable<core::Result<std::shared_ptr<Session>>> reach(core::Endpoint endpoint,
                                                                std::string peer_id);

  void close();
};

std::string token_hex(const Token& t);
std::optional<Token> parse_token(const nlohmann::json& v);

}  // namespace gossip::net::detail
