// MetricsHttpServer over real loopback TCP: a GET is answered with the
// rendered body, and every refusal the header promises happens as promised:
// an oversized head (431), a slow or dribbling client (408 and closed at the
// deadline), a malformed head (400), another method (405), another path
// (404), a connection over the cap (503, and the slot comes back), a render
// that throws (500). Clients are plain blocking sockets, as a scraper's are.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "gossip/net/http_metrics.hpp"
#include "http_client.hpp"
#include "net_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using gossip::net::HttpLimits;
using gossip::net::MetricsHttpServer;
using Clock = std::chrono::steady_clock;

using gossip::test::http_body;
using gossip::test::http_status_line;
using Client = gossip::test::HttpClient;

std::string status_line(const std::string& r) {
  return http_status_line(r);
}
std::string body_of(const std::string& r) {
  return http_body(r);
}

std::string get(int port, const std::string& request) {
  Client c(port);
  REQUIRE(c.connected());
  REQUIRE(c.send(request));
  return c.read_all();
}

struct Served {
  explicit Served(HttpLimits limits = {}, MetricsHttpServer::Render render = {})
      : server(
            io.io, render ? std::move(render) : [] { return std::string("up 1\n"); }, limits) {
    REQUIRE(server.listen({asio::ip::make_address("127.0.0.1"), 0}).is_ok());
    port = server.local_endpoint().port();
  }
  gossip::net::testing::IoThreads io;
  MetricsHttpServer server;
  int port = 0;
};

const std::string kGet = "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n";

}  // namespace

TEST_CASE("GET and HEAD /metrics are served with the Prometheus content type") {
  Served s;
  const std::string r = get(s.port, kGet);
  CHECK(status_line(r) == "HTTP/1.1 200 OK");
  CHECK(r.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(r.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(body_of(r) == "up 1\n");
  // A query string is the same resource; HTTP/1.0 needs no Host.
  CHECK(body_of(get(s.port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n")) == "up 1\n");
  const std::string head = get(s.port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_line(head) == "HTTP/1.1 200 OK");
  CHECK(head.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(body_of(head).empty());
  CHECK(s.server.counters().served == 3);
}

TEST_CASE("malformed requests get 400, other methods 405, other paths 404") {
  Served s;
  CHECK(status_line(get(s.port, "GARBAGE\r\n\r\n")) == "HTTP/1.1 400 Bad Request");
  CHECK(status_line(get(s.port, "GET /metrics HTTP/1.1\r\n\r\n")) ==
        "HTTP/1.1 400 Bad Request");  // HTTP/1.1 without Host
  CHECK(status_line(get(s.port, "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")) ==
        "HTTP/1.1 400 Bad Request");
  CHECK(status_line(get(s.port, "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n")) ==
        "HTTP/1.1 400 Bad Request");  // header without a colon
  CHECK(status_line(get(s.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n")) ==
        "HTTP/1.1 400 Bad Request");  // obsolete line folding
  const char nul[] = "GET /met\0rics HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(status_line(get(s.port, std::string(nul, sizeof nul - 1))) ==
        "HTTP/1.1 400 Bad Request");  // a NUL byte
  CHECK(status_line(get(s.port, "GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n")) ==
        "HTTP/1.1 400 Bad Request");
  CHECK(status_line(get(s.port, "GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) ==
        "HTTP/1.1 400 Bad Request");  // two spaces
  CHECK(s.server.counters().bad_request == 8);

  const std::string post = get(s.port, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_line(post) == "HTTP/1.1 405 Method Not Allowed");
  CHECK(post.find("Allow: GET, HEAD\r\n") != std::string::npos);
  CHECK(status_line(get(s.port, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")) ==
        "HTTP/1.1 405 Method Not Allowed");
  CHECK(status_line(get(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == "HTTP/1.1 404 Not Found");
  CHECK(status_line(get(s.port, "GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n")) ==
        "HTTP/1.1 404 Not Found");
  const auto c = s.server.counters();
  CHECK(c.bad_method == 2);
  CHECK(c.not_found == 2);
  CHECK(c.served == 0);
}

TEST_CASE("a request head over the limit gets 431") {
  HttpLimits limits;
  limits.max_head_bytes = 1024;
  Served s(limits);
  // Just under the limit is fine.
  const std::string fits =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(900, 'a') + "\r\n\r\n";
  CHECK(status_line(get(s.port, fits)) == "HTTP/1.1 200 OK");
  // 16 KiB of headers: the server answers after 1 KiB and reads the rest away.
  const std::string big =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(16 * 1024, 'a') + "\r\n\r\n";
  Client c(s.port);
  c.send(big);
  CHECK(status_line(c.read_all()) == "HTTP/1.1 431 Request Header Fields Too Large");
  CHECK(s.server.counters().head_too_large == 1);
}

TEST_CASE("a slow request is cut at the deadline, a dribbling one too") {
  HttpLimits limits;
  limits.request_deadline = 300ms;
  Served s(limits);
  {  // Half a request line, then nothing.
    Client c(s.port);
    const auto t0 = Clock::now();
    REQUIRE(c.send("GET /metr"));
    const std::string r = c.read_all();
    const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    CHECK(status_line(r) == "HTTP/1.1 408 Request Timeout");
    CHECK(waited >= 0.25);
    CHECK(waited < 2.5);
  }
  {  // One byte every 50 ms: each byte arrives in time, the whole never does.
    Client c(s.port);
    const auto t0 = Clock::now();
    std::atomic<bool> closed{false};
    std::thread dribble([&] {
      for (char ch : kGet) {
        if (closed || !c.send(std::string(1, ch))) break;
        std::this_thread::sleep_for(50ms);
      }
    });
    const std::string r = c.read_all();
    closed = true;
    dribble.join();
    const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    CHECK(status_line(r) == "HTTP/1.1 408 Request Timeout");
    CHECK(waited < 2.5);
  }
  CHECK(s.server.counters().timed_out == 2);
  // The server still serves.
  CHECK(status_line(get(s.port, kGet)) == "HTTP/1.1 200 OK");
}

TEST_CASE("connections over the cap are refused with 503; a closed one frees its slot") {
  HttpLimits limits;
  limits.max_connections = 2;
  Served s(limits);
  Client a(s.port), b(s.port);
  // Make sure both are accepted (and counted) before the third arrives.
  const auto wait_until = Clock::now() + 2s;
  Client c(s.port);
  REQUIRE(c.send(kGet));
  const std::string refused = c.read_all();
  // The 503 is written at once; a reset may overtake it, never a 200.
  CHECK(refused.find("200 OK") == std::string::npos);
  if (!refused.empty()) CHECK(status_line(refused) == "HTTP/1.1 503 Service Unavailable");
  CHECK(s.server.counters().over_capacity >= 1);
  a.close();
  // The slot comes back once the server has seen the close.
  std::string r;
  while (Clock::now() < wait_until + 3s) {
    r = get(s.port, kGet);
    if (status_line(r) == "HTTP/1.1 200 OK") break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(status_line(r) == "HTTP/1.1 200 OK");
  CHECK(b.send(kGet));
  CHECK(status_line(b.read_all()) == "HTTP/1.1 200 OK");
}

TEST_CASE("a render that throws gets 500 and the server goes on") {
  std::atomic<int> calls{0};
  Served s({}, [&] {
    if (calls++ == 0) throw std::runtime_error("no numbers yet");
    return std::string("ok 1\n");
  });
  CHECK(status_line(get(s.port, kGet)) == "HTTP/1.1 500 Internal Server Error");
  CHECK(body_of(get(s.port, kGet)) == "ok 1\n");
  CHECK(s.server.counters().render_failed == 1);
}

TEST_CASE("close() stops the listener") {
  Served s;
  CHECK(status_line(get(s.port, kGet)) == "HTTP/1.1 200 OK");
  s.server.close();
  std::this_thread::sleep_for(100ms);
  Client late(s.port);
  CHECK_FALSE(late.connected());
}
