// Internal: state a Node shares with its sessions (config, identity, counters,
// admission accounting, the handler) and the helpers for refusals. Sessions
// hold a shared_ptr to it, so it outlives the Node object while any session
// coroutine is still unwinding.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/strand.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/core/peer_id.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/net/limits.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/session.hpp"
#include "gossip/net/session_registry.hpp"

namespace gossip::net::detail {

class SecureSession;
using Strand = asio::strand<asio::io_context::executor_type>;

struct NodeCore {
  NodeCore(asio::io_context& io_, NetConfig config_, crypto::StaticKeypair identity_,
           crypto::SwarmKey swarm_key_);

  asio::io_context& io;
  const NetConfig config;
  const crypto::StaticKeypair identity;
  const crypto::SwarmKey swarm_key;
  const core::PeerId peer_id;
  NetCounters counters;
  Strand accept_strand;
  std::optional<asio::ip::tcp::acceptor> acceptor;  // touched on accept_strand only

  // Counts `counter`, logs `message` at most once per 10 s per `cause`.
  void refuse(std::atomic<uint64_t>& counter, std::string_view cause, const std::string& message);

  // Admission. Inbound: checks the session cap and the pending-handshake
  // caps (total, per address) and takes a slot of each; outbound: the session
  // cap only. A refusal is counted and logged.
  bool admit_inbound(const std::string& address);
  bool admit_outbound();
  void release_pending(const std::string& address);
  void release_session();

  // Every session, and the open ones by peer id (its own mutex, a leaf).
  SessionRegistry sessions;
  std::shared_ptr<SessionHandler> handler();
  PeerStatus status();
  // The Node's LinkFilter (null when none): session writers read their link
  // shape from it.
  std::shared_ptr<LinkFilter> link_filter();
  // Who takes an accepted connection that opened with a preamble
  // (relay.hpp) instead of a handshake; null: nobody (the connection closes).
  PreambleHandler preamble_handler();

  std::mutex mu;  // guards everything below
  bool closed = false;
  std::shared_ptr<SessionHandler> handler_;
  std::function<PeerStatus()> status_provider_;
  std::shared_ptr<LinkFilter> link_filter_;
  PreambleHandler preamble_handler_;
  ReachFunction reach_;
  size_t pending_total = 0;
  std::map<std::string, size_t> pending_by_address;
  size_t sessions_live = 0;
  size_t established = 0;
};

}  // namespace gossip::net::detail
