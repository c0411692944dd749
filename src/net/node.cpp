// Node: the accept loop, dialing, admission control (pending-handshake and
// session caps); its SessionRegistry lets close() reach every session and the
// protocols find an open session to a peer.
#include "gossip/net/node.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <stdexcept>

#include "acceptor.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/net/link_filter.hpp"
#include "node_core.hpp"
#include "secure_session.hpp"

namespace gossip::net {

using core::Status;

namespace detail {

NodeCore::NodeCore(asio::io_context& io_, NetConfig config_, crypto::StaticKeypair identity_,
                   crypto::SwarmKey swarm_key_)
    : io(io_),
      config(std::move(config_)),
      identity(std::move(identity_)),
      swarm_key(std::move(swarm_key_)),
      peer_id(crypto::peer_id(identity.public_key)),
      accept_strand(asio::make_strand(io_)) {}

void NodeCore::refuse(std::atomic<uint64_t>& counter, std::string_view cause,
                      const std::string& message) {
  counter.fetch_add(1, std::memory_order_relaxed);
  core::log_rate_limited(core::LogLevel::kWarn, "net", cause, message);
}

bool NodeCore::admit_inbound(const std::string& address) {
  std::unique_lock lock(mu);
  if (closed) return false;
  if (sessions_live >= config.max_sessions) {
    lock.unlock();
    refuse(counters.refused_sessions, "session-cap",
           "refused " + address + ": " + std::to_string(config.max_sessions) + " sessions open");
    return false;
  }
  if (pending_total >= config.max_pending_handshakes) {
    lock.unlock();
    refuse(counters.refused_pending_total, "pending-cap",
           "refused " + address + ": " + std::to_string(config.max_pending_handshakes) +
               " handshakes already in progress");
    return false;
  }
  size_t& mine = pending_by_address[address];
  if (mine >= config.max_pending_per_address) {
    lock.unlock();
    refuse(counters.refused_pending_address, "pending-address-cap",
           "refused " + address + ": " + std::to_string(config.max_pending_per_address) +
               " handshakes from this address already in progress");
    return false;
  }
  ++mine;
  ++pending_total;
  ++sessions_live;
  return true;
}

bool NodeCore::admit_outbound() {
  std::unique_lock lock(mu);
  if (closed) return false;
  if (sessions_live >= config.max_sessions) {
    lock.unlock();
    refuse(counters.refused_sessions, "session-cap",
           "dial refused: " + std::to_string(config.max_sessions) + " sessions open");
    return false;
  }
  ++sessions_live;
  return true;
}

void NodeCore::release_pending(const std::string& address) {
  std::lock_guard lock(mu);
  --pending_total;
  auto it = pending_by_address.find(address);
  if (it != pending_by_address.end() && --it->second == 0) pending_by_address.erase(it);
}

void NodeCore::release_session() {
  std::lock_guard lock(mu);
  --sessions_live;
}

std::shared_ptr<SessionHandler> NodeCore::handler() {
  std::lock_guard lock(mu);
  return handler_;
}

std::shared_ptr<LinkFilter> NodeCore::link_filter() {
  std::lock_guard lock(mu);
  return link_filter_;
}

PreambleHandler NodeCore::preamble_handler() {
  std::lock_guard lock(mu);
  return preamble_handler_;
}

PeerStatus NodeCore::status() {
  std::function<PeerStatus()> f;
  {
    std::lock_guard lock(mu);
    f = status_provider_;
  }
  return f ? f() : PeerStatus{};
}

namespace {

asio::awaitable<void> accept_loop(std::shared_ptr<NodeCore> core) {
  while (true) {
    auto [ec, socket] = co_await core->acceptor->async_accept(use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !core->acceptor->is_open()) co_return;
      core::log_rate_limited(core::LogLevel::kWarn, "net", "accept", "accept: " + ec.message());
      asio::steady_timer pause(core->accept_strand, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_nothrow);  // e.g. out of file descriptors
      continue;
    }
    core->counters.accepted++;
    asio::error_code ec2;
    const auto remote = socket.remote_endpoint(ec2);
    if (ec2) continue;
    const std::string address = remote.address().to_string();
    if (!core->admit_inbound(address)) {
      socket.close(ec2);
      continue;
    }
    auto strand = asio::make_strand(core->io);
    auto session = std::make_shared<SecureSession>(core, std::move(socket), strand,
                                                   crypto::Role::kResponder, address);
    if (!core->sessions.track(session)) {  // the node closed meanwhile
      session->close(Status(core::Code::kClosed, "node shutting down"));
      continue;
    }
    session->allow_preamble();
    asio::co_spawn(strand, session->run_responder(), asio::detached);
  }
}

// A session over a TCP connection a relay or a punch already made (no
// dial): admitted against the outbound cap and tracked, or the reason not.
core::Result<std::shared_ptr<SecureSession>> session_over(const std::shared_ptr<NodeCore>& core,
                                                          asio::ip::tcp::socket socket,
                                                          crypto::Role role) {
  if (!core->admit_outbound()) return core::resource_limit("session cap reached or node closed");
  auto session = std::make_shared<SecureSession>(core, std::move(socket),
                                                 asio::make_strand(core->io), role, std::string());
  if (!core->sessions.track(session)) {
    session->close(Status(core::Code::kClosed, "node shutting down"));
    return Status(core::Code::kClosed, "node shutting down");
  }
  return session;
}

}  // namespace
}  // namespace detail

Node::Node(asio::io_context& io, NetConfig config, crypto::StaticKeypair identity,
           crypto::SwarmKey swarm_key) {
  // Here rather than at the first handshake, where it would throw on a strand.
  if (auto st = crypto::check_cipher_available(config.cipher); !st)
    throw std::invalid_argument(st.message());
  core_ = std::make_shared<detail::NodeCore>(io, std::move(config), std::move(identity),
                                             std::move(swarm_key));
}

Node::~Node() {
  close();
}

const std::string& Node::peer_id() const {
  return core_->peer_id.hex();
}
const NetConfig& Node::config() const {
  return core_->config;
}

void Node::set_handler(std::shared_ptr<SessionHandler> handler) {
  std::lock_guard lock(core_->mu);
  core_->handler_ = std::move(handler);
}

void Node::set_status_provider(std::function<PeerStatus()> provider) {
  std::lock_guard lock(core_->mu);
  core_->status_provider_ = std::move(provider);
}

void Node::set_link_filter(std::shared_ptr<LinkFilter> filter) {
  {
    std::lock_guard lock(core_->mu);
    core_->link_filter_ = filter;
  }
  link_filter_ = std::move(filter);
}

Status Node::listen(const asio::ip::tcp::endpoint& endpoint) {
  auto acceptor = detail::open_acceptor(core_->accept_strand, endpoint);
  if (!acceptor) return acceptor.status();
  core_->acceptor.emplace(std::move(acceptor).value());
  if (core_->config.punch.enabled) {
    // Punch dials bind the listening port. Set after bind, so that a second
    // process configured with this port still fails to bind it.
    using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    asio::error_code ec;
    core_->acceptor->set_option(ReusePort(true), ec);
  }
  asio::co_spawn(core_->accept_strand, detail::accept_loop(core_), asio::detached);
  return Status::ok();
}

asio::ip::tcp::endpoint Node::local_endpoint() const {
  asio::error_code ec;
  return core_->acceptor ? core_->acceptor->local_endpoint(ec) : asio::ip::tcp::endpoint{};
}

// The checks both dial() overloads make before opening a socket (plain
// functions: GCC 12 miscompiles shared coroutine bodies with such state).
core::Result<std::optional<crypto::PublicKey>> Node::check_dial(
    const std::optional<std::string>& expected_peer_id) const {
  if (!expected_peer_id) return std::optional<crypto::PublicKey>();
  auto k = crypto::parse_peer_id(*expected_peer_id);
  if (!k) return k.status().with_context("expected peer id");
  if (link_filter_ && link_filter_->is_blocked(*expected_peer_id)) {
    link_filter_->count_refused_dial();
    return core::unavailable("dial refused: link to peer " +
                             core::short_peer_id(*expected_peer_id) +
                             " blocked by the link filter");
  }
  return std::optional<crypto::PublicKey>(*k);
}

std::shared_ptr<detail::SecureSession> Node::new_outbound_session() {
  auto core = core_;
  if (!core->admit_outbound()) return nullptr;
  auto strand = asio::make_strand(core->io);
  auto session = std::make_shared<detail::SecureSession>(
      core, asio::ip::tcp::socket(strand), strand, crypto::Role::kInitiator, std::string());
  if (!core->sessions.track(session)) {  // the node closed meanwhile
    session->close(Status(core::Code::kClosed, "node shutting down"));
    return nullptr;
  }
  return session;
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Node::dial(
    asio::ip::tcp::endpoint endpoint, std::optional<std::string> expected_peer_id) {
  auto expected = check_dial(expected_peer_id);
  if (!expected) co_return expected.status();
  auto session = new_outbound_session();
  if (!session) co_return core::resource_limit("dial: session cap reached or node closed");
  auto strand = session->strand();
  Status s = co_await asio::co_spawn(strand, session->run_initiator(endpoint, *expected),
                                     asio::use_awaitable);
  if (!s) co_return s;
  co_return std::shared_ptr<Session>(session);
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Node::dial(
    core::Endpoint endpoint, std::optional<std::string> expected_peer_id) {
  auto expected = check_dial(expected_peer_id);
  if (!expected) co_return expected.status();
  auto session = new_outbound_session();
  if (!session) co_return core::resource_limit("dial: session cap reached or node closed");
  auto strand = session->strand();
  Status s = co_await asio::co_spawn(
      strand,
      session->run_initiator_named(std::move(endpoint.host), std::to_string(endpoint.port),
                                   *expected),
      asio::use_awaitable);
  if (!s) co_return s;
  co_return std::shared_ptr<Session>(session);
}

void Node::set_preamble_handler(PreambleHandler handler) {
  std::lock_guard lock(core_->mu);
  core_->preamble_handler_ = std::move(handler);
}

void Node::set_reach(ReachFunction reach) {
  std::lock_guard lock(core_->mu);
  core_->reach_ = std::move(reach);
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Node::reach(core::Endpoint endpoint,
                                                                    std::string peer_id) {
  ReachFunction reach;
  {
    std::lock_guard lock(core_->mu);
    reach = core_->reach_;
  }
  if (!reach) co_return co_await dial(std::move(endpoint), std::move(peer_id));
  co_return co_await reach(std::move(endpoint), std::move(peer_id));
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Node::dial_over(
    asio::ip::tcp::socket socket, std::optional<std::string> expected_peer_id) {
  auto expected = check_dial(expected_peer_id);
  if (!expected) co_return expected.status();
  auto session = detail::session_over(core_, std::move(socket), crypto::Role::kInitiator);
  if (!session) co_return session.status();
  Status s = co_await asio::co_spawn(
      (*session)->strand(), (*session)->run_initiator_connected(*expected), asio::use_awaitable);
  if (!s) co_return s;
  co_return std::shared_ptr<Session>(*session);
}

asio::awaitable<core::Result<std::shared_ptr<Session>>> Node::respond_over(
    asio::ip::tcp::socket socket) {
  auto session = detail::session_over(core_, std::move(socket), crypto::Role::kResponder);
  if (!session) co_return session.status();
  Status s = co_await asio::co_spawn((*session)->strand(), (*session)->run_responder(),
                                     asio::use_awaitable);
  if (!s) co_return s;
  co_return std::shared_ptr<Session>(*session);
}

bool Node::link_blocked(std::string_view peer_id) const {
  return link_filter_ && link_filter_->is_blocked(peer_id);
}

CounterSnapshot Node::counters() const {
  return core_->counters.snapshot();
}

size_t Node::session_count() const {
  std::lock_guard lock(core_->mu);
  return core_->established;
}

std::shared_ptr<Session> Node::session_to(std::string_view peer_id) const {
  return core_->sessions.find(peer_id);
}

std::vector<std::string> Node::session_peer_ids() const {
  return core_->sessions.peer_ids();
}

void Node::close() {
  {
    std::lock_guard lock(core_->mu);
    if (core_->closed) return;
    core_->closed = true;
  }
  auto core = core_;
  asio::post(core->accept_strand, [core] {
    asio::error_code ec;
    if (core->acceptor) core->acceptor->close(ec);
  });
  core->sessions.close_all(Status(core::Code::kClosed, "node shutting down"));
}

}  // namespace gossip::net
