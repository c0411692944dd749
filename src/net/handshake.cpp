// The Noise_XXpsk3 handshake of a session, in both roles, and the checks on
// the peer's static key: expected peer id (dialer), self-connection (both).
// Handshake messages use the same u16 BE length framing as transport
// messages. The watchdog closes the socket at the deadline, which makes any
// read or write here fail; the close reason then explains it.
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <utility>

#include "gossip/core/log.hpp"
#include "gossip/net/relay.hpp"
#include "secure_session.hpp"

namespace gossip::net::detail {

using core::Status;

namespace {
// The other way the remote static key can equal ours.
constexpr const char* kSameIdentity =
    ", or another peer uses the same identity key (peer.identity_key)";
}  // namespace

asio::awaitable<Status> SecureSession::write_noise(std::span<const uint8_t> message) {
  uint8_t len[2];
  put_be16(len, static_cast<uint16_t>(message.size()));
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(len),
                                               asio::buffer(message.data(), message.size())};
  auto [ec, n] = co_await asio::async_write(socket_, bufs, use_nothrow);
  if (ec) co_return core::Status(core::Code::kClosed, "handshake write: " + ec.message());
  core_->counters.bytes_sent += n;
  co_return Status::ok();
}

asio::awaitable<core::Result<size_t>> SecureSession::read_noise(std::vector<uint8_t>& buf) {
  size_t size = 0, n = 0;
  if (first_length_) {
    size = *std::exchange(first_length_, std::nullopt);
  } else {
    uint8_t len[2];
    auto [ec, got] = co_await asio::async_read(socket_, asio::buffer(len), use_nothrow);
    if (ec) co_return core::Status(core::Code::kClosed, "handshake read: " + ec.message());
    size = get_be16(len);
    n = got;
  }
  if (size == 0) co_return core::protocol_error("empty handshake message");
  buf.resize(size);  // <= 65535 by construction
  auto [ec2, n2] = co_await asio::async_read(socket_, asio::buffer(buf.data(), size), use_nothrow);
  if (ec2) co_return core::Status(core::Code::kClosed, "handshake read: " + ec2.message());
  core_->counters.bytes_received += n + n2;
  co_return size;
}

asio::awaitable<Status> SecureSession::handshake(std::optional<crypto::PublicKey> expected) {
  crypto::HandshakeConfig hc;
  hc.pattern = crypto::Pattern::kXXpsk3;
  hc.role = role_;
  hc.local_static = &core_->identity;
  hc.psk = &core_->swarm_key;
  hc.prologue = {reinterpret_cast<const uint8_t*>(crypto::kPrologue.data()),
                 crypto::kPrologue.size()};
  hc.cipher = core_->config.cipher;
  crypto::HandshakeState hs(hc);
  std::vector<uint8_t> buf;
  const auto fail = [this](Status s) {
    return closed_ && !close_reason_.is_ok() ? close_reason_ : s;
  };
  const std::string cipher(crypto::cipher_name(hc.cipher));
  int next_read = role_ == crypto::Role::kInitiator ? 2 : 1;  // handshake message number
  // What a failure to read message `n` most likely means: the Noise
  // protocol name (and so net.cipher) keys message 1 already, the swarm key
  // only message 3.
  const auto read_failure = [&](int n) -> std::string {
    switch (n) {
      case 1:
        return "it uses another Noise protocol: a different net.cipher (this peer uses " + cipher +
               ") or gossip-train version, or the message was corrupted";
      case 2:
        return "corrupted message or not a gossip-train peer";
      default:
        return "wrong swarm key or corrupted message";
    }
  };
  while (!hs.is_complete()) {
    if (hs.is_my_turn()) {
      if (const auto rs = hs.remote_static()) {  // initiator, before message 3
        if (*rs == core_->identity.public_key) {
          core_->refuse(core_->counters.self_connection, "self-connection",
                        "dialed " + remote_address_string() + " and reached this peer itself" +
                            kSameIdentity);
          co_return core::auth_error("self-connection: the remote peer is this peer (" +
                                     core_->peer_id.hex() + ")" + kSameIdentity);
        }
        if (expected && *rs != *expected) {
          const std::string got = crypto::peer_id(*rs);
          const std::string want = crypto::peer_id(*expected);
          core_->refuse(
              core_->counters.peer_id_mismatch, "peer-id-mismatch",
              "expected peer " + want + " at " + remote_address_string() + ", found " + got);
          co_return core::auth_error("peer id mismatch: expected " + want + ", remote is " + got);
        }
      }
      auto msg = hs.write_message({});
      if (!msg) co_return msg.status();
      if (Status s = co_await write_noise(*msg); !s) co_return fail(s);
    } else {
      auto got = co_await read_noise(buf);
      if (!got) {
        if (next_read == 2 && got.status().code() == core::Code::kClosed && !closed_) {
          // The responder hung up on our message 1.
          co_return core::Status(
              core::Code::kClosed,
              "handshake with " + remote_address_string() +
                  ": the peer closed the connection after our first message (" +
                  got.status().message() + "); it may use a different net.cipher (this peer uses " +
                  cipher + "), be at its handshake limit, or not be a gossip-train peer");
        }
        co_return fail(got.status());
      }
      auto payload = hs.read_message(std::span<const uint8_t>(buf.data(), *got));
      if (!payload) {
        failed_message_ = next_read;
        co_return fail(core::auth_error("handshake with " + remote_address_string() +
                                        " failed at message " + std::to_string(next_read) + " (" +
                                        read_failure(next_read) +
                                        "): " + payload.status().message()));
      }
      next_read += 2;
    }
  }
  const auto rs = hs.remote_static();
  if (!rs) co_return core::internal_error("handshake complete without a remote static key");
  if (*rs == core_->identity.public_key) {
    core_->refuse(core_->counters.self_connection, "self-connection",
                  "connection from " + remote_address_string() + " carries this peer's own key" +
                      kSameIdentity);
    co_return core::auth_error(std::string("self-connection: the remote peer is this peer") +
                               kSameIdentity);
  }
  peer_id_ = core::PeerId(crypto::peer_id(*rs));
  keys_ = hs.split();
  co_return Status::ok();
}

void SecureSession::established() {
  established_ = true;
  last_rx_ = last_tx_ = last_use_ = Clock::now();
  watchdog_timer_.cancel();  // re-plan: idle and keepalive deadlines from now on
  if (!address_.empty()) {
    core_->release_pending(address_);
    address_.clear();
  }
  {
    std::lock_guard lock(core_->mu);
    ++core_->established;
  }
  core_->counters.handshakes_ok++;
  // Findable by peer id before any handler hears of it.
  core_->sessions.opened(shared_from_this());
  handler_ = core_->handler();
  auto self = std::static_pointer_cast<SecureSession>(shared_from_this());
  asio::co_spawn(strand_, self->reader(), asio::detached);
  asio::co_spawn(strand_, self->writer(), asio::detached);
  if (handler_) handler_->on_open(*this);
}

asio::awaitable<Status> SecureSession::run_responder() {
  auto self = shared_from_this();
  asio::error_code ec;
  remote_ = socket_.remote_endpoint(ec);
  setup_socket();
  asio::co_spawn(strand_, watchdog(), asio::detached);
  if (allow_preamble_) {
    // A Noise message is never empty: two zero bytes open a preamble.
    std::array<uint8_t, kPreambleBytes> head{};
    auto [ec1, n1] = co_await asio::async_read(socket_, asio::buffer(head.data(), 2), use_nothrow);
    if (closed_) co_return close_reason_;
    if (ec1) {
      Status s(core::Code::kClosed, "handshake read: " + ec1.message());
      close_on_strand(s);
      co_return s;
    }
    core_->counters.bytes_received += n1;
    if (head[0] != 0 || head[1] != 0) {
      first_length_ = get_be16(head.data());
    } else {
      auto [ec2, n2] = co_await asio::async_read(
          socket_, asio::buffer(head.data() + 2, head.size() - 2), use_nothrow);
      if (closed_) co_return close_reason_;
      const auto preamble = ec2 ? std::nullopt : decode_preamble(head);
      const auto handler = core_->preamble_handler();
      if (!preamble || !handler) {
        Status s = core::protocol_error(
            preamble ? "preamble from " + remote_address_string() + " but no relay or punch here"
                     : "connection from " + remote_address_string() +
                           " opened with an empty handshake message and no valid preamble");
        core_->refuse(core_->counters.handshake_failed, "bad-preamble", s.to_string());
        close_on_strand(s);
        co_return s;
      }
      // The connection leaves this session: the relay or punch owns it now.
      asio::ip::tcp::socket taken = std::move(socket_);
      close_on_strand(Status(core::Code::kClosed, "handed to the relay or punch"));
      handler(std::move(taken), preamble->kind, preamble->token);
      co_return Status(core::Code::kClosed, "handed to the relay or punch");
    }
  }
  Status s = co_await handshake(std::nullopt);
  if (closed_) co_return close_reason_;
  if (!s) {
    if (s.code() != core::Code::kTimeout) {
      core_->refuse(core_->counters.handshake_failed,
                    "handshake-" + std::to_string(failed_message_), s.to_string());
    }
    close_on_strand(s);
    co_return s;
  }
  established();
  co_return Status::ok();
}

asio::awaitable<Status> SecureSession::run_initiator_connected(
    std::optional<crypto::PublicKey> expected) {
  auto self = shared_from_this();
  asio::error_code ec;
  remote_ = socket_.remote_endpoint(ec);
  watchdog_started_ = true;
  asio::co_spawn(strand_, watchdog(), asio::detached);
  setup_socket();
  Status s = co_await handshake(expected);
  if (closed_) co_return close_reason_;
  if (!s) {
    close_on_strand(s);
    co_return s;
  }
  established();
  co_return Status::ok();
}

asio::awaitable<Status> SecureSession::run_initiator(asio::ip::tcp::endpoint endpoint,
                                                     std::optional<crypto::PublicKey> expected) {
  auto self = shared_from_this();
  remote_ = endpoint;
  if (!watchdog_started_) {
    watchdog_started_ = true;
    asio::co_spawn(strand_, watchdog(), asio::detached);
  }
  auto [ec] = co_await socket_.async_connect(endpoint, use_nothrow);
  if (closed_) co_return close_reason_;
  if (ec) {
    Status s = core::unavailable("connect to " + remote_address_string() + ": " + ec.message());
    close_on_strand(s);
    co_return s;
  }
  setup_socket();
  Status s = co_await handshake(expected);
  if (closed_) co_return close_reason_;
  if (!s) {
    if (s.code() == core::Code::kAuth && s.message().rfind("handshake", 0) == 0) {
      core_->refuse(core_->counters.handshake_failed,
                    "handshake-" + std::to_string(failed_message_), s.to_string());
    }
    close_on_strand(s);
    co_return s;
  }
  established();
  co_return Status::ok();
}

asio::awaitable<Status> SecureSession::run_initiator_named(
    std::string host, std::string port, std::optional<crypto::PublicKey> expected) {
  auto self = shared_from_this();
  watchdog_started_ = true;
  asio::co_spawn(strand_, watchdog(), asio::detached);
  asio::ip::tcp::resolver resolver(strand_);
  auto [ec, results] = co_await resolver.async_resolve(host, port, use_nothrow);
  if (closed_) co_return close_reason_;
  if (ec || results.empty()) {
    Status s = core::unavailable("resolve " + host + ":" + port + ": " +
                                 (ec ? ec.message() : std::string("no address")));
    close_on_strand(s);
    co_return s;
  }
  co_return co_await run_initiator(*results.begin(), expected);
}

}  // namespace gossip::net::detail
