// Observe: everything a peer can tell about itself at one moment, gathered
// in one plain struct by one function, for whoever reports it: the STATUS
// answer (gossip-ctl reads it), and later other exporters. Gathering takes
// each module's own thread-safe snapshot (Node, Swarm, Engine counters, the
// training figures); nothing here blocks training or the protocols.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gossip/peer/metrics.hpp"

namespace gossip::averaging {
class Engine;
}
namespace gossip::membership {
class Swarm;
}
namespace gossip::net {
class Node;
}

namespace gossip::peer {

// The trainer thread's figures, published for observers. Any thread.
struct TrainingFigures {
  int64_t step = 0;
  std::optional<double> loss;           // the last step's batch loss
  std::optional<double> test_loss;      // the last evaluation's
  std::optional<double> test_accuracy;  // classification only
};
class TrainingBoard {
 public:
  void set_step(int64_t step);
  void set_loss(double loss);
  void set_eval(double test_loss, std::optional<double> test_accuracy);
  TrainingFigures get() const;

 private:
  mutable std::mutex mu_;  // a leaf
  TrainingFigures figures_;
};

// One member as this peer sees it.
struct MemberView {
  std::string id;  // peer id (hex)
  std::string address;
  std::string state;  // "alive", "suspect", "dead", "left"
  uint64_t incarnation = 0;
  // How this peer reaches it: "direct" (a session is open with it now),
  // "unreachable" (suspect or dead: probes to its address failed, no
  // session), "unknown" (no session open at this moment). NAT traversal
  // will add "mapped", "punched" and "relayed".
  std::string reached;
  uint64_t exchanges = 0;  // averaging exchanges applied with it
};

struct PeerObservation {
  std::string peer_id;
  std::string version;      // gossip-train's (meson's project version)
  int protocol = 1;         // wire protocol (prologue "gossip-train/1")
  std::string listen;       // "host:port" bound
  std::string model;        // fingerprint, "0x" + 16 hex digits
  std::string wire_format;  // "fp32", "bf16", "fp16"
  TrainingFigures training;
  NetworkCounters network;       // exchanges, bytes, members_alive (self included)
  uint64_t sessions = 0;         // sessions open now (any kind, STATUS queries included)
  std::vector<MemberView> view;  // every known member but self, sorted by id
};

// What observe() reads; borrowed for the call.
struct ObserveSources {
  const net::Node& node;
  const membership::Swarm& swarm;
  const averaging::Engine& engine;
  const TrainingBoard& training;
  std::string listen;
  std::string model;
  std::string wire_format;
};

// Gathers a PeerObservation. Any thread.
PeerObservation observe(const ObserveSources& sources);

// The STATUS body's fields beyond protocol v1's four (docs/protocol.md
// "STATUS"), with at most `max_view` members in "view" ("view_total" says
// how many there were), so that the answer fits one control frame.
nlohmann::json status_details(const PeerObservation& o, size_t max_view = 200);

// gossip-train's version, as --version prints it.
const char* gossip_version();

}  // namespace gossip::peer
