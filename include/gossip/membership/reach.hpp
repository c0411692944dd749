// Reach: how a peer learns the address the others can dial it at, and
// whether they can at all (docs/design.md "Peers behind NAT").
//
// Frames 0x60..0x67 on the Router (JSON bodies, inside the Noise session):
//   0x60 OBSERVED         {"addr"}: the side that ACCEPTED a session tells the
//                         dialer the address it saw it come from (libp2p's
//                         identify, STUN): behind a NAT, the NAT's public side.
//   0x61 DIALBACK_REQ     {"addr", "nonce"}: "dial me at addr". The helper only
//                         dials an address whose IP is the one it sees this
//                         session come from (so it cannot be aimed at a third
//                         party), at most once per requester per
//                         requester_interval and max_dialbacks per 10 s in all.
//   0x62 DIALBACK         {"nonce"}: sent by the helper over the NEW session it
//                         dialed; only this, arriving on a session the
//                         requester accepted, confirms the address.
//   0x63 DIALBACK_RESULT  {"nonce", "ok", "reason"}: the helper's verdict on
//                         the requesting session.
//
// States of this peer: unknown (nothing learned yet), public (a dial-back
// reached it: its advertised address is now the confirmed one), private (the
// dial-back failed or none arrived by the deadline: membership carries
// kMemberPrivate, and nobody dials it). A private or unknown peer tries again
// every `retry`. An observed address is a hint only: the advertised address
// changes only after a dial-back confirmed it, and the dial-back is asked of
// a member other than the one that reported the observation when one with an
// open session exists (that member checks the IP against what it sees).
//
// Threads: every member function is safe from any thread.
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace gossip::net {
class Node;
class Router;
}  // namespace gossip::net

namespace gossip::membership {

class Swarm;

namespace detail {
struct ReachCore;
}

inline constexpr uint8_t kFirstReachFrame = 0x60;
inline constexpr uint8_t kLastReachFrame = 0x67;
enum ReachFrame : uint8_t {
  kObservedFrame = 0x60,
  kDialbackReqFrame = 0x61,
  kDialbackFrame = 0x62,
  kDialbackResultFrame = 0x63,
};

enum class Reachability { kUnknown, kPublic, kPrivate };
// "unknown", "public", "private".
const char* reachability_name(Reachability r);

struct ReachConfig {
  // False when the operator set peer.advertise: this peer's address is then
  // never changed (it still answers OBSERVED and DIALBACK_REQ of others).
  bool discover = true;
  uint16_t listen_port = 0;                // the port others dial (the Node's bound port)
  std::chrono::milliseconds retry{30000};  // a private/unknown peer asks again
  std::chrono::milliseconds dialback_deadline{8000};   // no DIALBACK by then: failed
  std::chrono::milliseconds requester_interval{5000};  // one dial-back per requester
  size_t max_dialbacks = 16;                           // per 10 s, all requesters
};

struct ReachStatus {
  Reachability state = Reachability::kUnknown;
  std::string observed;            // the last address a member saw this peer at ("" none)
  std::string observed_by;         // that member's id
  std::string address;             // the address this peer advertises now
  std::string confirmed_by;        // who dialed it back (public)
  std::string mapped;              // router port mapping in use ("" none)
  std::string last_failure;        // why the last dial-back failed
  uint64_t dialbacks_served = 0;   // dial-backs this peer made for others
  uint64_t dialbacks_refused = 0;  // requests it refused (rate, address)
};

class Reach {
 public:
  // `advertised` is the address membership starts with (peer.advertise or
  // the listening address). Nothing runs before attach().
  Reach(asio::io_context& io, std::shared_ptr<net::Node> node, Swarm& swarm, ReachConfig config,
        std::string advertised);
  ~Reach();  // stop()
  Reach(const Reach&) = delete;
  Reach& operator=(const Reach&) = delete;

  // Registers frames kFirstReachFrame..kLastReachFrame; before the Node
  // listens or dials.
  void attach(net::Router& router);
  // The bound port and the address membership advertises, once listening
  // (the config's port may be 0).
  void set_listen(uint16_t port, std::string advertised);
  // A port mapping the router granted ("ip:port"): the next dial-back asks
  // for it first, and a confirmed one is advertised with kMemberMapped.
  void set_mapped_address(std::string address);
  ReachStatus status() const;
  // Stops the timer; frames are ignored afterwards. Idempotent.
  void stop();

 private:
  std::shared_ptr<detail::ReachCore> core_;
};

}  // namespace gossip::membership
