// MetricsHttpServer: a minimal HTTP/1.1 server for one resource, GET /metrics,
// whose body a callback renders (the Prometheus text format; see
// peer/observe.hpp). It is what a Prometheus server scrapes.
//
// Built on the peer's own Asio machinery rather than a library: the peer
// already runs an io_context, and serving one read-only text needs a request
// head parser and a few refusals, not a general server. Everything runs on
// one strand of the given io_context (the accept loop, each connection, the
// render callback), so the server never takes a lock of the protocol or the
// trainer; the callback must itself read only atomics and snapshots.
//
// One request per connection ("Connection: close"). Refused, each counted:
//   a request head (request line and headers) over limits.max_head_bytes: 431;
//   a request not complete within limits.request_deadline (from accept to
//     the last byte of the response): 408 when it can be sent, then close;
//   a malformed head (request line, header syntax, control bytes, an
//     HTTP/1.1 request without Host, another HTTP version): 400;
//   a method other than GET and HEAD: 405; a path other than /metrics: 404;
//   a connection beyond limits.max_connections: 503, closed at once.
// After an error response the server stops sending and reads what the
// client still sends (up to 64 KiB, within the deadline) before it closes,
// so the client reads the answer instead of a reset.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gossip/core/status.hpp"

namespace gossip::net {

struct HttpLimits {
  size_t max_head_bytes = 8192;
  std::chrono::milliseconds request_deadline{5000};
  size_t max_connections = 8;
};

// What the server answered, since it started. Any thread.
struct HttpCounters {
  uint64_t served = 0;          // 200
  uint64_t bad_request = 0;     // 400
  uint64_t not_found = 0;       // 404
  uint64_t bad_method = 0;      // 405
  uint64_t timed_out = 0;       // 408 or closed at the deadline
  uint64_t head_too_large = 0;  // 431
  uint64_t over_capacity = 0;   // 503
  uint64_t render_failed = 0;   // 500: the callback threw
};

namespace detail {
struct HttpCore;
}

class MetricsHttpServer {
 public:
  // Called on the server's strand for each GET; returns the body. An
  // exception becomes a 500 (logged).
  using Render = std::function<std::string()>;

  // Nothing runs until listen(). The io_context must run until close() has
  // taken effect (a moment after it returns; the owner keeps it running as
  // it does for a Node).
  MetricsHttpServer(asio::io_context& io, Render render, HttpLimits limits = {});
  ~MetricsHttpServer();  // close()
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds `endpoint` (port 0: any free port) and starts accepting. kIo
  // naming the address when the bind fails. Once.
  core::Status listen(const asio::ip::tcp::endpoint& endpoint);
  // The bound address (after listen()).
  asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting, closes every connection; the render callback is not
  // called after the close has run on the strand. Idempotent; any thread.
  void close();
  HttpCounters counters() const;

 private:
  std::shared_ptr<detail::HttpCore> core_;
  asio::ip::tcp::endpoint bound_;
};

}  // namespace gossip::net
