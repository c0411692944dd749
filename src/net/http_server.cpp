// MetricsHttpServer: the accept loop, one coroutine per connection with a
// deadline timer, the request head parser and the refusals (http_metrics.hpp).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <set>
#include <string_view>

#include "acceptor.hpp"
#include "gossip/core/log.hpp"
#include "gossip/net/http_metrics.hpp"

namespace gossip::net {
namespace detail {
namespace {

using asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kMaxDrainBytes = 64 * 1024;

struct Reply {
  int code = 200;
  const char* reason = "OK";
  std::string body;
  bool head_only = false;  // HEAD: headers without the body
};

Reply error_reply(int code, const char* reason, std::string why) {
  return {code, reason, std::move(why) + "\n", false};
}

// RFC 9110 token characters (methods, header names).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// What to answer to a complete request head (ending in CRLF CRLF).
// `render` null: the server is closing (503).
Reply answer(std::string_view head, const MetricsHttpServer::Render& render) {
  // Lines end in CRLF; any other control byte, or a lone CR or LF, is malformed.
  for (size_t i = 0; i < head.size(); ++i) {
    const auto c = static_cast<unsigned char>(head[i]);
    if (c == '\r' && i + 1 < head.size() && head[i + 1] == '\n') {
      ++i;
    } else if (c < 0x20 && c != '\t') {
      return error_reply(400, "Bad Request", "malformed request: control byte in the head");
    } else if (c == 0x7f) {
      return error_reply(400, "Bad Request", "malformed request: control byte in the head");
    }
  }
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return error_reply(400, "Bad Request", "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || target.front() != '/') {
    return error_reply(400, "Bad Request", "malformed request line");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return error_reply(400, "Bad Request", "only HTTP/1.0 and HTTP/1.1 are served");
  }
  int hosts = 0;
  for (size_t pos = line_end + 2; pos < head.size();) {
    const size_t end = head.find("\r\n", pos);
    const std::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) break;  // the blank line that ends the head
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) {
      return error_reply(400, "Bad Request", "malformed header line");
    }
    if (iequals(field.substr(0, colon), "host")) ++hosts;
  }
  if (hosts > 1 || (hosts == 0 && version == "HTTP/1.1")) {
    return error_reply(400, "Bad Request", "an HTTP/1.1 request needs exactly one Host header");
  }
  if (method != "GET" && method != "HEAD") {
    return error_reply(405, "Method Not Allowed", "only GET and HEAD are served");
  }
  if (target.substr(0, target.find('?')) != "/metrics") {
    return error_reply(404, "Not Found", "only /metrics is served");
  }
  if (!render) return error_reply(503, "Service Unavailable", "closing");
  Reply r;
  r.body = render();
  r.head_only = method == "HEAD";
  return r;
}

std::string response_text(const Reply& r) {
  std::string text = "HTTP/1.1 " + std::to_string(r.code) + " " + r.reason + "\r\n";
  text += r.code == 200 ? "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                        : "Content-Type: text/plain; charset=utf-8\r\n";
  text += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (r.code == 405) text += "Allow: GET, HEAD\r\n";
  text += "Connection: close\r\n\r\n";
  if (!r.head_only) text += r.body;
  return text;
}

// A short answer written at once without waiting (it fits an empty send
// buffer), for connections the server will not spend a coroutine on.
void write_now(tcp::socket& socket, const Reply& r) {
  const std::string text = response_text(r);
  asio::error_code ec;
  socket.non_blocking(true, ec);
  if (!ec) socket.write_some(asio::buffer(text), ec);
}

struct Connection {
  Connection(tcp::socket s, const Strand& strand) : socket(std::move(s)), deadline(strand) {}
  tcp::socket socket;
  asio::steady_timer deadline;
  bool timed_out = false;
};

}  // namespace

struct HttpCore : std::enable_shared_from_this<HttpCore> {
  HttpCore(asio::io_context& io, MetricsHttpServer::Render r, HttpLimits l)
      : strand(asio::make_strand(io)), render(std::move(r)), limits(l) {}

  Strand strand;
  MetricsHttpServer::Render render;  // strand only; null once closed
  const HttpLimits limits;
  std::optional<tcp::acceptor> acceptor;       // strand only
  std::set<std::shared_ptr<Connection>> live;  // strand only
  bool closed = false;                         // strand only

  struct Counters {
    std::atomic<uint64_t> served{0}, bad_request{0}, not_found{0}, bad_method{0}, timed_out{0},
        head_too_large{0}, over_capacity{0}, render_failed{0};
  } counters;

  void count(int code) {
    switch (code) {
      case 200:
        counters.served++;
        break;
      case 400:
        counters.bad_request++;
        break;
      case 404:
        counters.not_found++;
        break;
      case 405:
        counters.bad_method++;
        break;
      case 408:
        counters.timed_out++;
        break;
      case 431:
        counters.head_too_large++;
        break;
      case 500:
        counters.render_failed++;
        break;
      default:
        break;
    }
  }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Connection> c);
  Reply reply_to(std::string_view head);
};

asio::awaitable<void> HttpCore::accept_loop() {
  auto self = shared_from_this();
  while (!closed) {
    auto [ec, socket] = co_await acceptor->async_accept(use_nothrow);
    if (closed || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      core::log_rate_limited(core::LogLevel::kWarn, "metrics-http", "accept",
                             "accept: " + ec.message());
      asio::steady_timer pause(strand, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_nothrow);  // e.g. out of file descriptors
      continue;
    }
    if (live.size() >= limits.max_connections) {
      counters.over_capacity++;
      core::log_rate_limited(
          core::LogLevel::kWarn, "metrics-http", "capacity",
          "refused a connection: " + std::to_string(limits.max_connections) + " already open");
      write_now(socket, error_reply(503, "Service Unavailable", "too many connections"));
      asio::error_code ignored;
      socket.close(ignored);
      continue;
    }
    auto c = std::make_shared<Connection>(std::move(socket), strand);
    live.insert(c);
    asio::co_spawn(strand, serve(c), asio::detached);
  }
}

Reply HttpCore::reply_to(std::string_view head) {
  try {
    return answer(head, render);
  } catch (const std::exception& e) {
    core::log_rate_limited(core::LogLevel::kError, "metrics-http", "render",
                           std::string("rendering /metrics failed: ") + e.what());
    return error_reply(500, "Internal Server Error", "rendering the metrics failed");
  }
}

asio::awaitable<void> HttpCore::serve(std::shared_ptr<Connection> c) {
  auto self = shared_from_this();
  c->deadline.expires_after(limits.request_deadline);
  c->deadline.async_wait([c](asio::error_code ec) {
    if (ec) return;
    c->timed_out = true;
    asio::error_code ignored;
    c->socket.cancel(ignored);
  });

  std::string head;
  auto [ec, n] = co_await asio::async_read_until(
      c->socket, asio::dynamic_buffer(head, limits.max_head_bytes), "\r\n\r\n", use_nothrow);
  std::optional<Reply> reply;
  if (c->timed_out) {
    count(408);
    write_now(c->socket, error_reply(408, "Request Timeout", "request not complete in time"));
  } else if (ec == asio::error::not_found) {  // the buffer filled without a blank line
    reply = error_reply(431, "Request Header Fields Too Large",
                        "request head over " + std::to_string(limits.max_head_bytes) + " bytes");
  } else if (!ec) {
    reply = reply_to(std::string_view(head).substr(0, n));
  }  // else the client went away: nothing to answer

  if (reply) {
    const std::string text = response_text(*reply);
    auto [wec, written] = co_await asio::async_write(c->socket, asio::buffer(text), use_nothrow);
    (void)written;
    if (!wec) {
      count(reply->code);
    } else if (c->timed_out) {
      count(408);  // a client that does not read its answer
    }
  }
  // Stop sending, then read what the client still sends so that it sees the
  // answer rather than a reset; the deadline bounds this too.
  asio::error_code ignored;
  c->socket.shutdown(tcp::socket::shutdown_send, ignored);
  char sink[4096];
  for (size_t drained = 0; drained < kMaxDrainBytes && !c->timed_out && c->socket.is_open();) {
    auto [rec, got] = co_await c->socket.async_read_some(asio::buffer(sink), use_nothrow);
    if (rec) break;
    drained += got;
  }
  c->socket.close(ignored);
  c->deadline.cancel();
  live.erase(c);
}

}  // namespace detail

MetricsHttpServer::MetricsHttpServer(asio::io_context& io, Render render, HttpLimits limits)
    : core_(std::make_shared<detail::HttpCore>(io, std::move(render), limits)) {}

MetricsHttpServer::~MetricsHttpServer() {
  close();
}

core::Status MetricsHttpServer::listen(const asio::ip::tcp::endpoint& endpoint) {
  auto acceptor = detail::open_acceptor(core_->strand, endpoint);
  if (!acceptor) return acceptor.status();
  asio::error_code ec;
  bound_ = acceptor->local_endpoint(ec);
  core_->acceptor.emplace(std::move(acceptor).value());
  asio::co_spawn(core_->strand, core_->accept_loop(), asio::detached);
  return core::Status::ok();
}

asio::ip::tcp::endpoint MetricsHttpServer::local_endpoint() const {
  return bound_;
}

void MetricsHttpServer::close() {
  asio::post(core_->strand, [core = core_] {
    if (core->closed) return;
    core->closed = true;
    core->render = nullptr;
    asio::error_code ignored;
    if (core->acceptor) core->acceptor->close(ignored);
    for (const auto& c : core->live) {
      c->socket.close(ignored);
      c->deadline.cancel();
    }
  });
}

HttpCounters MetricsHttpServer::counters() const {
  const auto& k = core_->counters;
  return {k.served.load(),        k.bad_request.load(),  k.not_found.load(),
          k.bad_method.load(),    k.timed_out.load(),    k.head_too_large.load(),
          k.over_capacity.load(), k.render_failed.load()};
}

}  // namespace gossip::net
