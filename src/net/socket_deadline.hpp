// Internal: a deadline for the socket operation a traversal coroutine is
// awaiting (punch dials, relay halves). When it passes, the socket is closed,
// which ends the pending operation with an error.
//
// Why not a timer handler that captures the coroutine's socket by reference:
// the handler can be queued (the timer expired) at the moment the operation
// completes on its own. The coroutine then goes on, cancel() no longer stops
// the queued handler, and it runs later: during the next operation on the
// same socket (closing it for no reason), or after the coroutine has returned
// and its frame, socket included, is gone (a use after free). Here the
// handler holds the socket weakly and acts only if the deadline it belongs
// to is still the armed one.
//
// Threads: arm(), disarm() and the handler run on one strand (the timer's
// executor is the strand the coroutine runs on).
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>

namespace gossip::net::detail {

class SocketDeadline {
 public:
  template <typename Executor>
  SocketDeadline(const Executor& ex, std::shared_ptr<asio::ip::tcp::socket> socket)
      : socket_(std::move(socket)), timer_(ex), state_(std::make_shared<State>()) {}
  ~SocketDeadline() { disarm(); }
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  // Closes the socket `after` from now unless disarm() or arm() comes first.
  void arm(std::chrono::steady_clock::duration after) {
    const uint64_t mine = ++state_->generation;
    state_->expired = false;
    timer_.expires_after(after);
    timer_.async_wait([weak = std::weak_ptr<asio::ip::tcp::socket>(socket_), state = state_,
                       mine](const asio::error_code& ec) {
      if (ec || state->generation != mine) return;
      state->expired = true;
      if (auto s = weak.lock()) {
        asio::error_code ignored;
        s->close(ignored);
      }
    });
  }
  // The awaited operation finished: a handler already queued does nothing.
  void disarm() {
    ++state_->generation;
    timer_.cancel();
  }
  // Whether the last armed deadline passed (and closed the socket).
  bool expired() const { return state_->expired; }

 private:
  struct State {
    uint64_t generation = 0;
    bool expired = false;
  };
  std::shared_ptr<asio::ip::tcp::socket> socket_;
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace gossip::net::detail
