// Helpers for the net integration tests: an io_context on two threads, a
// recording SessionHandler, and a real TCP relay between a dialer and a
// listener that parses the u16-length-prefixed Noise messages in each
// direction and can flip, drop, replay, reorder them or cut the connection.
// The relay is the fault injector: both peers run the real stack.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "gossip/crypto/keys.hpp"
#include "gossip/crypto/noise.hpp"
#include "gossip/net/node.hpp"

namespace gossip::net::testing {

using namespace std::chrono_literals;

// An io_context run by `threads` threads for the lifetime of the object.
class IoThreads {
 public:
  explicit IoThreads(int threads = 2) : guard_(asio::make_work_guard(io)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io.run(); });
  }
  ~IoThreads() {
    guard_.reset();
    io.stop();
    for (auto& t : threads_) t.join();
  }
  // Runs `aw` on the io_context and waits for its result.
  template <typename T>
  T run(asio::awaitable<T> aw) {
    return *spawn(std::move(aw)).get();
  }
  // Starts `aw` on the io_context; the future yields its result (wrapped in
  // optional because co_spawn needs a default-constructible result and
  // core::Result has none).
  template <typename T>
  std::future<std::optional<T>> spawn(asio::awaitable<T> aw) {
    auto wrap = [](asio::awaitable<T> a) -> asio::awaitable<std::optional<T>> {
      co_return std::optional<T>(co_await std::move(a));
    };
    return asio::co_spawn(io, wrap(std::move(aw)), asio::use_future);
  }
  asio::io_context io;

 private:
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// Records everything a Node's sessions deliver.
class Recorder : public SessionHandler {
 public:
  void on_open(Session& s) override {
    std::lock_guard l(mu);
    sessions.push_back(s.shared_from_this());
    cv.notify_all();
  }
  void on_frame(Session&, uint8_t type, std::span<const uint8_t> body) override {
    std::lock_guard l(mu);
    frames.emplace_back(type, std::string(body.begin(), body.end()));
    cv.notify_all();
  }
  core::Result<BlobReceiver> on_blob_begin(Session&, const BlobBegin& b) override {
    std::lock_guard l(mu);
    blob_headers.emplace_back(b.header.begin(), b.header.end());
    if (b.total_bytes != expected_blob) return core::invalid_argument("unexpected blob size");
    blob.assign(b.total_bytes, 0);
    return receive_into(blob);
  }
  // A receiver writing into `dest` whose end is recorded in blob_ends.
  BlobReceiver receive_into(std::span<uint8_t> dest) {
    return {dest, [this](const core::Status& st) {
              std::lock_guard l(mu);
              blob_ends.push_back(st);
              cv.notify_all();
            }};
  }
  void on_closed(Session&, const core::Status& reason) override {
    std::lock_guard l(mu);
    closes.push_back(reason);
    cv.notify_all();
  }
  // Waits until pred() (under the lock) or the timeout; returns pred().
  bool wait(const std::function<bool()>& pred, std::chrono::milliseconds t = 10s) {
    std::unique_lock l(mu);
    return cv.wait_for(l, t, pred);
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::shared_ptr<Session>> sessions;
  std::vector<std::pair<uint8_t, std::string>> frames;
  std::vector<std::string> blob_headers;
  std::vector<uint8_t> blob;
  uint64_t expected_blob = 0;
  std::vector<core::Status> blob_ends;
  std::vector<core::Status> closes;
};

inline NetConfig test_config() {
  NetConfig c;
  c.handshake_timeout = 2s;
  return c;
}

inline std::unique_ptr<Node> make_node(asio::io_context& io, const crypto::SwarmKey& swarm,
                                       std::shared_ptr<SessionHandler> handler,
                                       NetConfig cfg = test_config(),
                                       const crypto::StaticKeypair* identity = nullptr) {
  auto node = std::make_unique<Node>(
      io, cfg, identity ? *identity : crypto::StaticKeypair::generate(), swarm);
  node->set_handler(std::move(handler));
  auto st = node->listen({asio::ip::make_address("127.0.0.1"), 0});
  if (!st) throw std::runtime_error(st.to_string());
  return node;
}

// What the relay does with one Noise message (direction 0 = dialer to
// listener, 1 = back; index counts messages per direction, handshake
// included: dir 0 has handshake messages 0 and 1, dir 1 has message 0).
enum class Action { kForward, kDrop, kDuplicate, kHoldForSwap };
// `conn` numbers the relayed connections from 0.
using Tamper = std::function<Action(size_t conn, int dir, size_t index, std::vector<uint8_t>& msg)>;

class Relay {
 public:
  // Listens on 127.0.0.1:0 and forwards each accepted connection to `target`.
  // `cut_after` (bytes per direction 0) closes both sides once exceeded.
  Relay(asio::ip::tcp::endpoint target, Tamper tamper, size_t cut_after = SIZE_MAX)
      : target_(target),
        tamper_(std::move(tamper)),
        cut_after_(cut_after),
        acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~Relay() {
    stop_ = true;
    asio::error_code ec;
    {
      asio::ip::tcp::socket poke(io_);
      poke.connect(acceptor_.local_endpoint(), ec);
    }
    accept_thread_.join();
    std::lock_guard l(mu_);
    for (auto& c : conns_) {
      ::shutdown(c->a.native_handle(), SHUT_RDWR);
      ::shutdown(c->b.native_handle(), SHUT_RDWR);
    }
    for (auto& c : conns_) {
      c->t0.join();
      c->t1.join();
    }
  }
  asio::ip::tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

 private:
  struct Conn {
    explicit Conn(asio::io_context& io) : a(io), b(io) {}
    asio::ip::tcp::socket a, b;  // a: dialer side, b: listener side
    size_t number = 0;
    std::thread t0, t1;
  };
  void accept_loop() {
    while (!stop_) {
      auto c = std::make_unique<Conn>(io_);
      asio::error_code ec;
      acceptor_.accept(c->a, ec);
      if (ec || stop_) return;
      c->b.connect(target_, ec);
      if (ec) continue;
      Conn* raw = c.get();
      raw->number = next_conn_++;
      raw->t0 = std::thread([this, raw] { pump(raw, 0); });
      raw->t1 = std::thread([this, raw] { pump(raw, 1); });
      std::lock_guard l(mu_);
      conns_.push_back(std::move(c));
    }
  }
  void pump(Conn* c, int dir) {
    auto& from = dir == 0 ? c->a : c->b;
    auto& to = dir == 0 ? c->b : c->a;
    size_t index = 0, bytes = 0;
    std::vector<uint8_t> held;
    asio::error_code ec;
    while (true) {
      uint8_t len[2];
      asio::read(from, asio::buffer(len), ec);
      if (ec) break;
      std::vector<uint8_t> msg(2 + ((len[0] << 8) | len[1]));
      msg[0] = len[0];
      msg[1] = len[1];
      asio::read(from, asio::buffer(msg.data() + 2, msg.size() - 2), ec);
      if (ec) break;
      std::vector<uint8_t> body(msg.begin() + 2, msg.end());
      const Action act = tamper_ ? tamper_(c->number, dir, index++, body) : Action::kForward;
      std::copy(body.begin(), body.end(), msg.begin() + 2);
      if (dir == 0 && bytes + msg.size() > cut_after_) {
        asio::write(to, asio::buffer(msg.data(), cut_after_ - bytes), ec);
        break;
      }
      bytes += msg.size();
      if (act == Action::kDrop) continue;
      if (act == Action::kHoldForSwap) {
        held = msg;
        continue;
      }
      asio::write(to, asio::buffer(msg), ec);
      if (!ec && act == Action::kDuplicate) asio::write(to, asio::buffer(msg), ec);
      if (!ec && !held.empty()) {
        asio::write(to, asio::buffer(held), ec);
        held.clear();
      }
      if (ec) break;
    }
    ::shutdown(c->a.native_handle(), SHUT_RDWR);
    ::shutdown(c->b.native_handle(), SHUT_RDWR);
  }

  asio::io_context io_;
  asio::ip::tcp::endpoint target_;
  Tamper tamper_;
  size_t cut_after_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  size_t next_conn_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

// A hand-driven initiator on a blocking socket: runs the real Noise
// handshake with chosen keys, then sends arbitrary plaintext encrypted as
// transport messages (to reach the frame decoder with hostile frames).
class RawNoiseClient {
 public:
  explicit RawNoiseClient(asio::ip::tcp::endpoint target) : sock_(io_) {
    sock_.connect(target);
    timeval tv{3, 0};
    ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  // Runs the handshake as initiator; returns its status.
  core::Status handshake(const crypto::StaticKeypair& me, const crypto::SwarmKey& psk,
                         const crypto::StaticKeypair* ephemeral = nullptr) {
    crypto::HandshakeConfig hc;
    hc.role = crypto::Role::kInitiator;
    hc.local_static = &me;
    hc.psk = &psk;
    hc.prologue = bytes_of_prologue();
    hc.fixed_ephemeral = ephemeral;
    crypto::HandshakeState hs(hc);
    while (!hs.is_complete()) {
      if (hs.is_my_turn()) {
        auto m = hs.write_message({});
        if (!m) return m.status();
        send_raw(*m);
      } else {
        std::vector<uint8_t> m;
        if (!read_raw(m)) return core::Status(core::Code::kClosed, "closed during handshake");
        auto p = hs.read_message(m);
        if (!p) return p.status();
      }
    }
    keys_ = hs.split();
    return core::Status::ok();
  }
  void send_plain(std::span<const uint8_t> plain) {
    std::vector<uint8_t> c(plain.size() + crypto::kTagBytes);
    auto n = keys_.send.encrypt({}, plain, c);
    c.resize(*n);
    send_raw(c);
  }
  void send_raw(std::span<const uint8_t> msg) {
    uint8_t len[2] = {static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size())};
    asio::error_code ec;
    asio::write(
        sock_,
        std::array<asio::const_buffer, 2>{asio::buffer(len), asio::buffer(msg.data(), msg.size())},
        ec);
  }
  bool read_raw(std::vector<uint8_t>& out) {
    uint8_t len[2];
    asio::error_code ec;
    asio::read(sock_, asio::buffer(len), ec);
    if (ec) return false;
    out.resize((len[0] << 8) | len[1]);
    asio::read(sock_, asio::buffer(out), ec);
    return !ec;
  }
  // True when the peer closes the connection within the receive timeout
  // (anything it sends before is read and dropped).
  bool closed_by_peer() {
    uint8_t buf[4096];
    asio::error_code ec;
    while (true) {
      sock_.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
      if (ec) return false;  // timeout
    }
  }
  static std::span<const uint8_t> bytes_of_prologue() {
    return {reinterpret_cast<const uint8_t*>(crypto::kPrologue.data()), crypto::kPrologue.size()};
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket sock_;
  crypto::TransportKeys keys_;
};

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v[i] = static_cast<uint8_t>(x);
  }
  return v;
}

inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace gossip::net::testing
