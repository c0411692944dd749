// Internal: the state a Swarm shares with its coroutines and with the Node's
// session strands. Everything below `strand-only` is touched on the strand
// only; the snapshot and the counters are what other threads read.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gossip/membership/swarm.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/session.hpp"

namespace gossip::membership::detail {

using Strand = asio::strand<asio::io_context::executor_type>;

struct Frame {
  uint8_t type = 0;
  std::vector<uint8_t> body;
};

// What the Swarm knows about reaching one peer. Its open sessions are the
// Node's (net::Node::session_to); only the one this Swarm dialed is kept
// here, because membership owns that session's lifetime: it closes it when
// idle or beyond max_own_sessions, and never closes one it did not dial.
struct Link {
  std::shared_ptr<net::Session> own;  // the one we dialed
  net::Endpoint endpoint;             // where to dial it (port 0: not known)
  std::deque<Frame> queue;            // waiting for a session
  bool dialing = false;
  bool waiting = false;  // in dial_queue, for a dial slot
  TimePoint last_used{};
  TimePoint retry_at{};  // no dial before (backoff)
  Millis backoff{0};
};

// A JOIN dial to a seed address (the peer id there is not known yet).
struct SeedDial {
  std::deque<Frame> queue;
  bool dialing = false;
  // The last failure can never turn into success (this peer's own key at
  // the other end, a host that does not exist): no more dials to it until
  // the next join().
  bool given_up = false;
  bool warned_closed = false;  // "closed right after the handshake" logged
  TimePoint retry_at{};
  Millis backoff{0};
};

struct SwarmCore final : net::SessionHandler, std::enable_shared_from_this<SwarmCore> {
  SwarmCore(asio::io_context& io, std::shared_ptr<net::Node> node, SwarmConfig config);

  // SessionHandler (session strands): decode, then hand over to the strand.
  void on_frame(net::Session& session, uint8_t type, std::span<const uint8_t> body) override;
  void on_closed(net::Session& session, const core::Status& reason) override;

  // swarm.cpp (strand): driving the state machine.
  asio::awaitable<void> timer_loop();
  asio::awaitable<core::Status> join_on_strand(std::vector<std::string> seeds, Millis timeout,
                                               std::function<bool()> cancelled);
  asio::awaitable<void> leave_on_strand(Millis flush);
  void deliver(const std::shared_ptr<net::Session>& session, Message message);
  void pump();  // outbox -> sessions, events -> handler, snapshot, timer
  void update_snapshot();
  void stop_on_strand();

  // swarm_links.cpp (strand): sessions and dials.
  void send(Outgoing out);
  // Sends over any open session with the peer; false when there is none.
  bool send_now(const std::string& peer_id, Link& link, const Frame& frame);
  std::shared_ptr<net::Session> session_to(const std::string& peer_id) const;
  void enqueue(std::deque<Frame>& queue, Frame frame);
  void want_dial(const std::string& peer_id, Link& link);
  void start_dials();
  asio::awaitable<void> dial_peer(std::string peer_id, net::Endpoint endpoint);
  asio::awaitable<void> dial_seed(std::string address);
  // One dial to a seed: by name (resolved here, so that a host that does
  // not exist is told from a temporary resolver failure) or by IP address.
  asio::awaitable<core::Result<std::shared_ptr<net::Session>>> dial_seed_address(
      const std::string& address, bool& permanent);
  void seed_given_up(const std::string& address, const std::string& why);
  void seed_closed_fresh(const std::string& address);
  void adopt_own(const std::shared_ptr<net::Session>& session);  // one we dialed
  void close_idle(TimePoint now);
  bool flushed() const;  // nothing queued, no dial in flight
  void count_sent(const Frame& frame);
  void drop(std::deque<Frame>& queue);

  asio::io_context& io;
  Strand strand;
  // Weak: the Node's handler chain (Router) owns this core, so a strong
  // reference back would be a cycle. Dials lock it for their duration.
  const std::weak_ptr<net::Node> node;
  const SwarmConfig config;
  const std::string self_id;
  std::atomic<bool> stopped{false};
  std::atomic<bool> started{false};

  // Strand-only.
  std::optional<Membership> machine;
  Swarm::EventHandler on_event;
  asio::steady_timer timer;
  TimePoint timer_at = TimePoint::max();
  std::map<std::string, Link, std::less<>> links;  // by peer id
  std::map<std::string, SeedDial> seed_dials;      // by address
  std::deque<std::string> dial_queue;              // peer ids waiting for a slot
  size_t dials_in_flight = 0;
  std::map<std::string, std::string> join_errors;  // address -> why the last try failed
  // Sessions dialed to a seed from which no membership frame has come yet
  // (session -> seed address): a close by the seed before its first frame
  // most likely means the handshake failed on its side (XXpsk3: the swarm
  // key is checked on the responder's last read).
  std::map<const net::Session*, std::string> fresh_seed_sessions;
  TimePoint next_housekeeping{};

  // Snapshot (any thread, under mu).
  mutable std::mutex mu;
  Member self_snap;
  bool joined_snap = false;
  std::vector<Member> members_snap;
  std::mt19937_64 pick_rng;
  Stats protocol_snap;

  // Counters (any thread).
  std::atomic<uint64_t> bytes_sent{0}, bytes_received{0}, frames_sent{0}, frames_received{0},
      frames_rejected{0}, frames_dropped{0}, dials{0}, dial_failures{0};
};

}  // namespace gossip::membership::detail
