// Session: one authenticated, encrypted TCP connection to a peer, created by a
// Node (dial or accept) after a successful Noise_XXpsk3 handshake.
//
// Sending: control frames go through a bounded queue (send_frame waits while
// it is full; try_send_frame refuses instead). A blob is streamed straight
// from a caller-owned span in BLOB_CHUNKs; between two chunks the writer sends
// any queued control frames first, so control traffic is never stuck behind a
// long blob. Receiving: a reader decrypts blob data straight into the
// destination the handler supplied and everything else in place for a
// FrameDecoder; control frames and blobs reach the Node's SessionHandler on
// the session's strand.
//
// Threads: all state lives on the session's strand. The public member
// functions below may be called from any thread or coroutine unless stated.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "gossip/core/status.hpp"
#include "gossip/net/frames.hpp"

namespace gossip::net {

class Session;

// Who accepted a blob: the session that decodes it keeps this for the
// blob's stream, writes the data into `dest` and calls `on_end` exactly
// once, on its strand: ok when every byte arrived; otherwise (e.g.
// connection cut: kClosed "truncated ...") `dest` holds a partial blob that
// must not be used. on_end runs before the handler's on_closed, and the
// session drops the receiver (and what its callback holds) right after.
// `dest` must stay valid until then. A null on_end: nobody listens.
struct BlobReceiver {
  std::span<uint8_t> dest;
  std::function<void(const core::Status& status)> on_end;
};

// Upper-layer callbacks. Every call runs on the session's strand and must not
// block; hand work to your own strand with asio::post. One handler object
// serves every session of a Node.
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // The handshake succeeded; frames may arrive from now on.
  virtual void on_open(Session& session) { (void)session; }
  // A control frame (types other than BLOB_* and STATUS_REQ). `body` is valid
  // only during the call and is at most NetConfig::frames.max_control_body.
  virtual void on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) {
    (void)session, (void)type, (void)body;
  }
  // A blob opens. Return where it goes and who hears of its end (a
  // BlobReceiver: dest of exactly begin.total_bytes), or a non-ok Status to
  // refuse (counted; the blob's data is dropped). Default: refuse.
  virtual core::Result<BlobReceiver> on_blob_begin(Session& session, const BlobBegin& begin) {
    (void)session, (void)begin;
    return core::unavailable("no blob receiver installed");
  }
  // The session ended (after the on_end of a blob in flight), with why.
  virtual void on_closed(Session& session, const core::Status& reason) {
    (void)session, (void)reason;
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  virtual ~Session() = default;

  // Lowercase hex static key of the remote peer (its peer id).
  virtual const std::string& peer_id() const = 0;
  // Remote TCP endpoint at connect time.
  virtual asio::ip::tcp::endpoint remote_endpoint() const = 0;
  // True for the side that dialed.
  virtual bool is_initiator() const = 0;
  // False once the session started closing. Any thread.
  virtual bool is_open() const = 0;

  // Queues a control frame (`body` is copied before this returns the first
  // time it suspends) and waits while the queue is full. Returns ok once
  // queued, kClosed if the session is closed, kInvalidArgument for a blob
  // type or a body above the control limit.
  virtual asio::awaitable<core::Status> send_frame(uint8_t type, std::span<const uint8_t> body) = 0;
  // Same without waiting: false when the queue is full, the session closed or
  // the frame invalid. Use from handlers (callbacks cannot co_await).
  virtual bool try_send_frame(uint8_t type, std::span<const uint8_t> body) = 0;
  // Streams `data` as one blob with a small `header` (<= frames.max_blob_header,
  // copied). `data` must stay valid and unchanged until this completes: ok
  // after the last byte was handed to the kernel, kClosed if the session ended
  // first. Blobs of one session are sent one after another, in call order.
  virtual asio::awaitable<core::Status> send_blob(std::span<const uint8_t> header,
                                                  std::span<const uint8_t> data) = 0;
  // Sends STATUS_REQ and waits for the next STATUS body (JSON text), or
  // kTimeout / kClosed.
  virtual asio::awaitable<core::Result<std::string>> query_status(
      std::chrono::milliseconds timeout) = 0;
  // Closes the connection; `reason` reaches on_closed. Idempotent; any thread.
  virtual void close(core::Status reason) = 0;
};

}  // namespace gossip::net
