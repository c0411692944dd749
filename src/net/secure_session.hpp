// Internal: the Session implementation. Coroutines per role, all on the
// session's strand: the handshake (then reader + writer), and a watchdog that
// enforces the handshake deadline, the idle timeout and keepalives. Control
// frames from other threads arrive through a small lock-protected mailbox;
// everything else is strand-only state.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gossip/crypto/noise.hpp"
#include "gossip/net/frames.hpp"
#include "gossip/net/link_filter.hpp"
#include "gossip/net/session.hpp"
#include "node_core.hpp"

namespace gossip::net::detail {

inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

class SecureSession final : public Session, private FrameSink {
 public:
  // `address` is the remote IP for inbound sessions (holding a pending slot),
  // empty for dials.
  // The strand all of this session's state lives on.
  const Strand& strand() const { return strand_; }
  SecureSession(std::shared_ptr<NodeCore> core, asio::ip::tcp::socket socket, Strand strand,
                crypto::Role role, std::string address);
  ~SecureSession() override;

  // Responder: handshake on the accepted socket, then run. On the strand.
  // Returns why it failed (ok once established).
  asio::awaitable<core::Status> run_responder();
  // Accepted by the listener: a connection that opens with a relay or punch
  // preamble goes to the Node's PreambleHandler instead of the handshake.
  void allow_preamble() { allow_preamble_ = true; }
  // Initiator over a socket already connected: handshake, start.
  asio::awaitable<core::Status> run_initiator_connected(std::optional<crypto::PublicKey> expected);
  // Initiator: connect, handshake, start. On the strand. Returns why it failed.
  asio::awaitable<core::Status> run_initiator(asio::ip::tcp::endpoint endpoint,
                                              std::optional<crypto::PublicKey> expected);
  // Initiator by name: resolve, then run_initiator.
  asio::awaitable<core::Status> run_initiator_named(std::string host, std::string port,
                                                    std::optional<crypto::PublicKey> expected);

  const std::string& peer_id() const override { return peer_id_.hex(); }
  asio::ip::tcp::endpoint remote_endpoint() const override { return remote_; }
  bool is_initiator() const override { return role_ == crypto::Role::kInitiator; }
  bool is_open() const override { return open_.load(); }
  asio::awaitable<core::Status> send_frame(uint8_t type, std::span<const uint8_t> body) override;
  bool try_send_frame(uint8_t type, std::span<const uint8_t> body) override;
  asio::awaitable<core::Status> send_blob(std::span<const uint8_t> header,
                                          std::span<const uint8_t> data) override;
  asio::awaitable<core::Result<std::string>> query_status(
      std::chrono::milliseconds timeout) override;
  void close(core::Status reason) override;

 private:
  struct BlobJob {
    uint32_t id = 0;
    std::span<const uint8_t> data;
    std::vector<uint8_t> begin_frame;
    uint64_t begin_mark = 0;  // ctrl_queued_ after its BLOB_BEGIN was queued
    uint64_t sent = 0;
    bool begun = false;
    bool done = false;
    core::Status status;
  };
  // One socket write, being filled or in flight: encrypted Noise messages
  // and the blob whose last bytes it carries (ok once the write completes).
  struct WireBatch {
    std::vector<uint8_t> bytes;
    size_t used = 0;
    BlobJob* finishes = nullptr;
  };
  struct StatusWaiter {
    asio::steady_timer* timer;
    std::optional<std::string> body;
  };

  // Handshake (handshake.cpp).
  asio::awaitable<core::Status> handshake(std::optional<crypto::PublicKey> expected);
  asio::awaitable<core::Status> write_noise(std::span<const uint8_t> message);
  asio::awaitable<core::Result<size_t>> read_noise(std::vector<uint8_t>& buf);
  void established();

  // Run phase (session.cpp / session_io.cpp).
  asio::awaitable<void> watchdog();
  asio::awaitable<void> reader();
  asio::awaitable<void> writer();
  asio::awaitable<core::Status> enqueue(std::vector<uint8_t> frame);
  asio::awaitable<core::Status> run_blob(std::vector<uint8_t> header,
                                         std::span<const uint8_t> data);
  asio::awaitable<std::pair<core::Status, std::string>> run_query(
      std::chrono::milliseconds timeout);
  core::Status check_frame(uint8_t type, size_t body_bytes) const;
  bool push_mail(std::vector<uint8_t> frame);
  void notify_writer();
  void take_mail();
  size_t fill_control(uint8_t* out, size_t max);
  bool seal(WireBatch& batch, std::span<const uint8_t> plain);
  bool fill_batch(WireBatch& batch, size_t max_chunk, size_t budget);
  void start_write(WireBatch& batch);
  // Link shaping (session_io.cpp): re-reads the shape when the filter's
  // installation changed; when shaped, the time the filled batch may leave.
  void refresh_shape();
  Clock::time_point shaped_release();
  void on_written(WireBatch& batch, const asio::error_code& ec, size_t n);
  void close_on_strand(core::Status reason);
  void setup_socket();
  std::string remote_address_string() const;

  // FrameSink (frames from the peer).
  core::Status on_control(uint8_t type, std::span<const uint8_t> body) override;
  core::Result<std::span<uint8_t>> on_blob_begin(const BlobBegin& begin) override;
  void on_blob_complete(uint32_t stream_id) override;
  // Calls the open blob's receiver (once) and forgets it.
  void end_blob(const core::Status& status);

  std::shared_ptr<NodeCore> core_;
  asio::ip::tcp::socket socket_;
  Strand strand_;
  const crypto::Role role_;
  std::string address_;     // non-empty while holding an inbound pending slot
  bool holds_slot_ = true;  // a session-cap slot (released on close)
  core::PeerId peer_id_;
  asio::ip::tcp::endpoint remote_;
  std::atomic<bool> open_{true};

  // Strand-only state.
  bool closed_ = false;
  bool established_ = false;
  core::Status close_reason_;
  std::shared_ptr<SessionHandler> handler_;
  crypto::TransportKeys keys_;
  FrameDecoder decoder_;
  // Who accepted the blob the decoder has open (one at a time); its on_end
  // runs once, on completion or at close.
  std::optional<BlobReceiver> blob_rx_;
  Clock::time_point deadline_;  // handshake deadline
  Clock::time_point last_rx_, last_tx_;
  Clock::time_point last_use_;  // a frame (not a keepalive) sent or received
  bool keepalive_due_ = false;
  bool watchdog_started_ = false;
  // The handshake message this side failed to read (1..3; 0: none), so that
  // the log rate-limits a protocol mismatch apart from a wrong swarm key.
  int failed_message_ = 0;
  bool allow_preamble_ = false;
  // The length of handshake message 1, read before the handshake to tell a
  // preamble from a handshake; read_noise takes it instead of reading.
  std::optional<uint16_t> first_length_;
  asio::steady_timer watchdog_timer_, writer_cv_, space_cv_, blob_cv_;
  std::deque<std::vector<uint8_t>> ctrl_pending_;
  size_t ctrl_off_ = 0;
  uint64_t ctrl_queued_ = 0, ctrl_sent_ = 0;  // control bytes queued / encrypted so far
  std::deque<BlobJob*> blob_q_;
  uint32_t next_stream_id_ = 1;
  std::list<StatusWaiter*> status_waiters_;
  WireBatch batches_[2];     // double buffering: fill one while the other is written
  bool write_busy_ = false;  // a socket write is in flight
  // Link shaping (see LinkShape): the filter (null when none), the shape of
  // the installation `shape_gen_`, whether the writer went idle since the
  // last write, and when the virtual paced link is free again.
  std::shared_ptr<LinkFilter> link_filter_;
  uint64_t shape_gen_ = 0;
  std::optional<LinkShape> shape_;
  bool link_idle_ = true;
  Clock::time_point link_free_{};
  asio::steady_timer shape_timer_;

  // Mailbox (any thread).
  std::mutex mail_mu_;
  std::deque<std::vector<uint8_t>> mailbox_;
  bool mail_closed_ = false;
  std::atomic<bool> wake_posted_{false};
};

}  // namespace gossip::net::detail
