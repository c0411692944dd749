// Internal: how the net module opens a listening socket (the Node's accept
// loop and the metrics server), so that both bind the same way and name the
// address the same way when they cannot.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/socket_base.hpp>
#include <string>

#include "gossip/core/status.hpp"

namespace gossip::net::detail {

// "127.0.0.1:7400", "[::1]:7400".
inline std::string endpoint_text(const asio::ip::tcp::endpoint& e) {
  std::string text = e.address().to_string();
  if (e.address().is_v6()) text = '[' + text + ']';
  text += ':';
  text += std::to_string(e.port());
  return text;
}

// An acceptor on `executor`, opened, bound (SO_REUSEADDR) and listening on
// `endpoint`; kIo "listen on ADDRESS: why" otherwise.
template <typename Executor>
core::Result<asio::ip::tcp::acceptor> open_acceptor(const Executor& executor,
                                                    const asio::ip::tcp::endpoint& endpoint) {
  asio::ip::tcp::acceptor acceptor(executor);
  asio::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return core::io_error("listen on " + endpoint_text(endpoint) + ": " + ec.message());
  return acceptor;
}

}  // namespace gossip::net::detail
