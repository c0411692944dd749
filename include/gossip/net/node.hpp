// Node: a peer's network endpoint. It listens for and dials secure sessions
// (Noise_XXpsk3_25519_ChaChaPoly_SHA256, prologue "gossip-train/1", PSK = the
// swarm key), enforces the NetConfig limits, answers STATUS_REQ, and hands
// every established session to one SessionHandler.
//
// Threads: one asio::io_context (any number of threads) may carry many Nodes.
// Each session runs on its own strand; the accept loop on another. Member
// functions are safe from any thread. Every session is in the Node's
// SessionRegistry (session_registry.hpp) from creation to close. The io_context must keep running
// until close() has taken effect (sessions finish on their strands).
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/core/endpoint.hpp"
#include "gossip/core/status.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/net/limits.hpp"
#include "gossip/net/session.hpp"

namespace gossip::net {

namespace detail {
struct NodeCore;
class SecureSession;
}  // namespace detail

class LinkFilter;  // link_filter.hpp

// Who takes an accepted connection that began with a relay or punch
// preamble (relay.hpp) instead of a Noise handshake: the socket, which kind,
// and the token it carried. Called on a session strand; must not block.
enum class PreambleKind : uint8_t;
using PreambleHandler = std::function<void(asio::ip::tcp::socket socket, PreambleKind kind,
                                           const std::array<uint8_t, 32>& token)>;
// How Node::reach finds a path to a member (Traversal installs one).
using ReachFunction = std::function<asio::awaitable<core::Result<std::shared_ptr<Session>>>(
    core::Endpoint endpoint, std::string peer_id)>;

// What STATUS reports besides the peer id (docs/protocol.md "STATUS").
struct PeerStatus {
  uint64_t step = 0;
  uint64_t members = 1;
  std::string model;  // architecture fingerprint
  // More fields for the STATUS body (a JSON object; null: none). Its keys
  // are added after the four above, which a key of the same name never
  // replaces, so a reader of protocol v1's STATUS keeps working.
  std::shared_ptr<const nlohmann::json> details;
};

class Node {
 public:
  // Takes the identity and swarm key (secrets stay in zeroing types).
  Node(asio::io_context& io, NetConfig config, crypto::StaticKeypair identity,
       crypto::SwarmKey swarm_key);
  ~Node();  // close()
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // This peer's id (lowercase hex of the static public key).
  const std::string& peer_id() const;
  const NetConfig& config() const;

  // The handler for every session (inbound and outbound). Set before
  // listen()/dial(); sessions opened without one only answer STATUS_REQ.
  void set_handler(std::shared_ptr<SessionHandler> handler);
  // Called on a session strand for each STATUS_REQ; must be thread-safe.
  // Default: step 0, members 1, model "".
  void set_status_provider(std::function<PeerStatus()> provider);
  // Fault injection: dials whose expected peer id `filter` blocks fail at once
  // (kUnavailable), and sessions pace what they send by its LinkShape. Install
  // the same filter as the handler (in front of the Router) so that accepted
  // and open sessions are cut too. Set before listen()/dial() (sessions read
  // it when they open); null removes it.
  void set_link_filter(std::shared_ptr<LinkFilter> filter);

  // Binds, listens and starts accepting. Errors name the address.
  core::Status listen(const asio::ip::tcp::endpoint& endpoint);
  // The bound address (port resolved when listening on port 0).
  asio::ip::tcp::endpoint local_endpoint() const;

  // Connects and runs the handshake as initiator within
  // config.handshake_timeout. With `expected_peer_id`, a responder presenting
  // another static key is refused (kAuth naming both ids); a responder with
  // our own key (self-dial) is refused too. Any executor may co_await this.
  asio::awaitable<core::Result<std::shared_ptr<Session>>> dial(
      asio::ip::tcp::endpoint endpoint, std::optional<std::string> expected_peer_id = {});
  // Same, for a host name or address and port (name resolution included in
  // the deadline).
  asio::awaitable<core::Result<std::shared_ptr<Session>>> dial(
      core::Endpoint endpoint, std::optional<std::string> expected_peer_id = {});

  // A session with member `peer_id` by the best path there is: a plain
  // dial(endpoint, peer_id) unless a ReachFunction is installed (Traversal:
  // direct, then punched, then relayed; docs/design.md "Peers behind NAT").
  // What membership and averaging call to reach a member. Any executor.
  asio::awaitable<core::Result<std::shared_ptr<Session>>> reach(core::Endpoint endpoint,
                                                                std::string peer_id);
  // Installs (or, null, removes) the function reach() uses. Any thread.
  void set_reach(ReachFunction reach);
  // Runs the handshake as initiator over `socket`, already connected (to a
  // relay's circuit or a punched peer), with the same checks as dial().
  asio::awaitable<core::Result<std::shared_ptr<Session>>> dial_over(
      asio::ip::tcp::socket socket, std::optional<std::string> expected_peer_id);
  // Runs the handshake as responder over `socket`, already connected; the
  // session then serves like an accepted one. Counts against max_sessions.
  asio::awaitable<core::Result<std::shared_ptr<Session>>> respond_over(
      asio::ip::tcp::socket socket);
  // Accepted connections whose first bytes are a preamble go to `handler`
  // (null: they are closed). Set before listen(). Any thread.
  void set_preamble_handler(PreambleHandler handler);

  // An open session with `peer_id` (the oldest, dialed or accepted), or
  // null: protocols reuse it before dialing. Any thread.
  std::shared_ptr<Session> session_to(std::string_view peer_id) const;

  // Whether the LinkFilter (if any) blocks the link to `peer_id`: a cut made
  // on purpose (the simulator's partitions), which no detour may undo. Any
  // thread.
  bool link_blocked(std::string_view peer_id) const;

  // Refusal/traffic counters. Any thread.
  CounterSnapshot counters() const;
  // Sessions established and not yet closed.
  size_t session_count() const;
  // The peer ids at the other end of those sessions, sorted, each once.
  std::vector<std::string> session_peer_ids() const;

  // Stops accepting and closes every session (asynchronously, on their
  // strands). Idempotent.
  void close();

 private:
  std::shared_ptr<detail::NodeCore> core_;
  std::shared_ptr<LinkFilter> link_filter_;  // read-only once dialing starts

  // Before a dial: the expected key, unless the id is malformed or its link
  // is blocked (counted).
  core::Result<std::optional<crypto::PublicKey>> check_dial(
      const std::optional<std::string>& expected_peer_id) const;
  // A registered initiator session on a strand of its own; null when the
  // session cap is reached or the node is closed.
  std::shared_ptr<detail::SecureSession> new_outbound_session();
};

}  // namespace gossip::net
