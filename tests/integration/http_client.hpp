// A blocking HTTP/1.x client over a plain loopback socket, as a scraper is:
// the tests of /metrics send exact bytes (well-formed or not) and read the
// answer until the server closes. Failures are doctest REQUIREs, so include
// this from test files only.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

namespace gossip::test {

// A connected socket to 127.0.0.1:port; reads time out after 5 s so a server
// that never answers fails the test instead of hanging it.
class HttpClient {
 public:
  explicit HttpClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~HttpClient() { close(); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Whether every byte was written (false once the server closed).
  bool send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Everything until the server closes (or resets, or 5 s pass).
  std::string read_all() {
    std::string out;
    char buf[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
  bool connected_ = false;
};

inline std::string http_status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

inline std::string http_body(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

// GET `target` with HTTP/1.0 (so no server answers in chunks); the whole
// response, "" when nobody listens.
inline std::string http_get(int port, const std::string& target) {
  HttpClient c(port);
  if (!c.connected()) return "";
  if (!c.send("GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")) return "";
  return c.read_all();
}

}  // namespace gossip::test
