// Membership: the SWIM-style failure detector and full-view member list of
// one peer, as a deterministic single-threaded state machine.
//
// The owner drives it: tick(now) at least every few tens of milliseconds (or
// at next_deadline()), on_message() for every membership frame received, and
// drains take_outbox() (messages to send, each with the destination's peer
// id and address) and take_events() (membership changes). It never touches a
// socket or a clock: time is a parameter and randomness comes from a seeded
// std::mt19937_64, so tests run thousands of probe periods in milliseconds
// over a simulated network (see simulation.hpp).
//
// Protocol (docs/design.md "Membership"): each period probes the next member of a
// shuffled round-robin list (PING); no ACK within probe_timeout -> PING_REQ
// through `indirect_probes` other members; still none at the period's end ->
// suspect. A suspect becomes dead after a suspicion timeout of
// suspicion_mult * log2(n+1) * probe_interval, shortened (Lifeguard) down to
// suspicion_min_fraction of that as independent members confirm the
// suspicion. A suspected member refutes by raising its incarnation. Updates
// ride on every message (fewest transmissions first, each sent at most
// retransmit_mult * ceil(log2(n+1)) times, within piggyback_bytes); a
// periodic push-pull SYNC with a random member repairs anything missed, and a
// SYNC to a random dead member heals partitions. Lifeguard local health:
// failed probes without NACKs and refutations stretch this peer's own probe
// period and timeout, successful probes shrink it back.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/membership/member.hpp"
#include "gossip/membership/messages.hpp"

namespace gossip::membership {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Millis = std::chrono::milliseconds;

// Tuning. Defaults detect a crash everywhere within ~10-13 s in a 16-peer swarm
// and spread a LEAVE within one network round trip.
struct Options {
  Millis probe_interval{1000};
  Millis probe_timeout{500};              // < probe_interval
  int indirect_probes = 3;                // PING_REQ helpers per failed probe
  double suspicion_mult = 4.0;            // lone suspicion: mult*log2(n+1)*interval
  double suspicion_min_fraction = 0.45;   // floor of the timeout, as a fraction
  int suspicion_confirmations = 3;        // independent accusers to reach the floor
  Millis sync_interval{10000};            // push-pull sync; x(ceil(log2(n/32))+1) above 32
  Millis reconnect_interval{10000};       // SYNC_REQ to a random dead member
  double retransmit_mult = 3.0;           // lambda
  size_t piggyback_bytes = 1024;          // per message
  size_t max_body_bytes = kMaxBodyBytes;  // list slices stay below this
  int max_local_health = 8;               // Lifeguard: period x (1 + health)
  Millis join_retry{2000};                // re-send JOIN while no seed answered
  Millis dead_retention{600000};          // dead members kept (for reconnects)
  Millis left_retention{120000};          // left members kept (so stale gossip dies)

  // Names the first bad field, e.g. "probe_timeout_ms must be < probe_interval_ms".
  core::Status validate() const;
};

enum class EventKind {
  kJoined,  // a member we did not know
  kAlive,   // a suspect, dead or left member is alive again (refuted / restarted)
  kSuspect,
  kDead,
  kLeft,
};
const char* event_kind_name(EventKind kind);

struct Event {
  EventKind kind;
  Member member;  // the member's record after the change
};

// A message to send. `peer_id` is empty only for JOIN to a seed address (the
// transport then accepts whoever answers there); otherwise the transport must
// refuse a session whose authenticated id differs.
struct Outgoing {
  std::string peer_id;
  std::string address;
  Message message;
};

struct Stats {
  uint64_t probes = 0;
  uint64_t probe_failures = 0;
  uint64_t indirect_rounds = 0;
  uint64_t refutations = 0;
  uint64_t rejected = 0;   // messages on_message refused
  uint64_t late_acks = 0;  // ACKs for probes already over
  uint64_t syncs = 0;
};

// Not thread-safe: call every member from one thread or strand.
class Membership {
 public:
  // Validates options and the own entry (id, address, incarnation <=
  // kMaxIncarnation). A restarted peer passes an incarnation above any it
  // used before (e.g. wall-clock milliseconds); it is raised further if the
  // swarm reports a higher one.
  static core::Result<Membership> create(const Options& options, std::string self_id,
                                         std::string self_address, uint64_t incarnation,
                                         uint64_t seed, TimePoint now);

  // Sends JOIN to every seed address (other than our own) and repeats every
  // join_retry until a JOIN_ACK arrives (a peer that joined through us does
  // not count: it may be as new as we are). With
  // no seeds this peer starts a swarm of its own.
  void join(const std::vector<std::string>& seed_addresses, TimePoint now);

  // Leaves gracefully: LEAVE to every alive or suspect member directly; then
  // the machine is inert (tick and on_message do nothing). Drain the outbox.
  void leave(TimePoint now);

  // Runs timers: probe periods, indirect probes, suspicion timeouts, syncs,
  // join retries, expiry of old dead/left entries. Call at next_deadline()
  // or more often; calling late only delays, never breaks, the protocol.
  void tick(TimePoint now);

  // Handles one decoded message from the peer authenticated as
  // `from_peer_id`. Returns ok, or kProtocol naming why the message was
  // rejected (sender claims another id, PING for someone else, ...); a
  // rejected message changes nothing in the view.
  core::Status on_message(std::string_view from_peer_id, const Message& message, TimePoint now);

  // Messages and events produced since the last call, oldest first.
  std::vector<Outgoing> take_outbox();
  std::vector<Event> take_events();

  // The earliest time tick() has work to do.
  TimePoint next_deadline() const;

  // Changes this peer's own advertised address and flags (NAT discovery:
  // a confirmed public address, or kMemberPrivate) under a new incarnation
  // and gossips it. False, changing nothing, when both are unchanged, the
  // address is invalid, the incarnation is at its maximum or the peer left.
  bool set_self_address(const std::string& address, uint8_t flags);

  const Member& self() const { return self_; }
  bool joined() const { return joined_; }
  bool has_left() const { return left_; }
  // Every known member except self, sorted by id, any state.
  std::vector<Member> members() const;
  std::optional<Member> find(std::string_view id) const;
  // Alive members except self (suspects excluded), sorted by id.
  std::vector<Member> live_members() const;
  size_t live_count() const;
  // A uniformly random alive member other than self and `exclude_id`.
  std::optional<Member> random_live_member(std::string_view exclude_id = {});
  int local_health() const { return health_; }
  const Stats& stats() const { return stats_; }
  // Suspicion timeout in the current view after `confirmations` accusers
  // beyond the first.
  Millis suspicion_timeout(int confirmations) const;

 private:
  struct Entry {
    Member m;
    TimePoint since;                    // last state change
    std::vector<std::string> accusers;  // suspect: distinct accusers
  };
  struct Probe {
    bool active = false;
    std::string target;
    std::string address;
    uint64_t seq = 0;
    TimePoint sent;
    TimePoint end;
    bool acked = false;
    bool indirect_sent = false;
    std::vector<std::string> helpers;
    int nacks = 0;
  };
  struct Relay {
    std::string requester;
    std::string requester_address;
    uint64_t requester_seq = 0;
    std::string target;
    TimePoint nack_at;
    TimePoint expires;
    bool nacked = false;
  };
  struct Pending {
    Update update;
    int transmits = 0;
    uint64_t order = 0;
  };
  enum class Source { kGossip, kList, kSender };

  Membership(const Options& options, Member self, uint64_t seed, TimePoint now);

  // swim.cpp: probing and timers.
  void start_probe(TimePoint now);
  void finish_probe(TimePoint now);
  void send_indirect(TimePoint now);
  void check_suspicions(TimePoint now);
  void run_sync(TimePoint now);
  void reap(TimePoint now);
  void on_ping(const Message& m, TimePoint now);
  void on_ping_req(const Message& m, TimePoint now);
  void on_ack(const Message& m, TimePoint now);
  Millis scaled(Millis base) const;
  // swim_state.cpp: view updates and dissemination.
  bool apply(const Update& u, Source source, std::string_view via, TimePoint now);
  void apply_self(const Member& claim, TimePoint now);
  void refute(uint64_t at_least, TimePoint now);
  void set_state(Entry& e, const Member& m, TimePoint now);
  void suspect(const std::string& id, std::string_view accuser, TimePoint now);
  void broadcast(const Update& u);
  void send(const std::string& peer_id, const std::string& address, Message m);
  void send_list(const std::string& peer_id, const std::string& address, MessageType type);
  Message make(MessageType type) const;
  int retransmit_limit() const;
  size_t view_size() const;  // alive + suspect members, self included
  void add_to_probe_order(const std::string& id);
  void emit(EventKind kind, const Member& m);

  Options options_;
  Member self_;
  std::mt19937_64 rng_;
  std::map<std::string, Entry, std::less<>> members_;
  std::set<std::string, std::less<>> suspects_;
  std::vector<std::string> probe_order_;
  size_t probe_index_ = 0;
  Probe probe_;
  std::map<uint64_t, Relay> relays_;
  std::map<std::string, Pending, std::less<>> pending_;
  uint64_t next_seq_ = 1;
  uint64_t next_order_ = 1;
  int health_ = 0;
  bool joined_ = false;
  bool left_ = false;
  std::vector<std::string> seeds_;
  TimePoint next_probe_;
  TimePoint next_sync_;
  TimePoint next_reconnect_;
  TimePoint next_join_;
  TimePoint next_reap_;
  std::vector<Outgoing> outbox_;
  std::vector<Event> events_;
  Stats stats_;
};

}  // namespace gossip::membership
