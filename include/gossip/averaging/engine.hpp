// Engine: one peer's side of pairwise weighted gossip averaging (docs/design.md
// "Gossip averaging") and of state sync for joiners, over the Node's secure
// sessions (frames in protocol.hpp).
//
// Every interval (steps or milliseconds) the engine, if no exchange is in
// flight, picks a uniformly random live member from the PeerDirectory, takes
// a wire snapshot s_i and offers it; the partner streams its own snapshot s_j
// back at the same time. Each side validates the other's snapshot (element
// count, model fingerprint, every value finite), sends ACK, and applies
//     x_own += w_other / (w_own + w_other) * (s_other - s_own)
// computed from the two dequantized wire snapshots only, once it has both
// validated the peer's snapshot and received the peer's ACK. The weighted sum
// of all replicas is therefore unchanged, and local progress made while the
// exchange ran is kept. BUSY, REFUSE, a timeout, a dropped connection or a
// rejected blob apply nothing; the initiator then backs off (exponential,
// jittered) and tries again later, usually with another peer.
//
// Threads. The network (an asio::io_context shared with the Node; protocol
// state on one strand) never touches the live parameters. The trainer thread
// calls between_steps() after each step: that is where snapshots are taken
// and finished deltas applied, so training never waits on the network. The
// responder's snapshot is taken at its next between_steps(), which bounds how
// long its partner waits: keep exchange_timeout well above one step. For
// averaging without training, a loop alternates between_steps() and
// wait_for_work().
//
// Lifetime: the Node and the io_context must outlive the Engine; destroy (or
// stop()) the Engine before closing the Node.
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gossip/averaging/codec.hpp"
#include "gossip/averaging/directory.hpp"
#include "gossip/averaging/options.hpp"
#include "gossip/averaging/outer.hpp"
#include "gossip/core/histogram.hpp"
#include "gossip/core/status.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/router.hpp"
#include "gossip/train/backend.hpp"

namespace gossip::averaging {

namespace detail {
struct Core;
}

struct Options {
  int64_t interval_steps = 10;            // used when interval is 0
  std::chrono::milliseconds interval{0};  // > 0: time-based schedule (jittered +-25%)
  WireCodec wire;  // the codec this peer offers (responders use the initiator's)
  std::chrono::milliseconds exchange_timeout{10000};
  std::chrono::milliseconds backoff{200};          // base of the jittered exponential backoff
  std::chrono::milliseconds state_timeout{30000};  // per donor, for fetch_state
  double weight = 1.0;                             // w_i, finite and > 0
  uint64_t seed = 0;                               // peer choice and jitter; 0 = random
  // gossip.mode: kParams averages the parameters; kOuter makes every
  // exchange a sync point of the outer optimizer (outer.hpp). The schedule
  // is the same either way (options_from sets interval_steps to outer.steps).
  GossipMode mode = GossipMode::kParams;
  OuterOptions outer;
};

// Options from the config's gossip section; `shard_samples` is this peer's
// shard size (the weight in "samples" mode). Defined with the section's
// reader (src/averaging/options.cpp).
Options options_from(const GossipConfig& gossip, int64_t shard_samples);

// What must match between two peers that average or share state.
struct ModelIdentity {
  uint64_t fingerprint = 0;  // train::ModelSpec::fingerprint()
  size_t param_count = 0;
  size_t state_count = 0;  // optimizer state floats
};
ModelIdentity identity_of(const train::Backend& backend);

struct Counters {
  uint64_t exchanges_ok = 0;          // deltas applied (each side counts its own)
  uint64_t exchanges_busy = 0;        // our OFFER answered BUSY
  uint64_t exchanges_failed = 0;      // timeout, closed, refused, rejected blob
  uint64_t refused = 0;               // of which: model/size mismatch or bad blob
  uint64_t busy_answered = 0;         // OFFERs we answered BUSY
  uint64_t no_peer = 0;               // due, but the directory had nobody
  uint64_t bytes_in = 0;              // snapshot/state blob bytes received
  uint64_t bytes_out = 0;             // snapshot/state blob bytes sent
  double last_exchange_s = 0;         // OFFER to both-validated, last ok exchange
  double total_exchange_s = 0;        // sum over ok exchanges
  core::SecondsHistogram exchange_s;  // the same durations, for /metrics
  double last_delta_norm = 0;         // ||applied delta||_2 of the last exchange
  uint64_t states_served = 0;
  uint64_t state_fetch_failed = 0;             // donors that failed or were too slow
  std::string last_failure;                    // why the last exchange failed or was refused
  std::map<std::string, uint64_t> ok_by_peer;  // exchanges_ok by partner peer id
};

// Result of a state download.
struct FetchedState {
  std::string donor;  // peer id
  int64_t step = 0;
  int64_t optimizer_steps = 0;
};

class Engine {
 public:
  // `directory` yields partners; `model` is this peer's identity (every
  // OFFER / STATE is checked against it). Registers nothing by itself: call
  // attach() (or add handler() to a Router) before the Node carries sessions.
  Engine(asio::io_context& io, net::Node& node, std::shared_ptr<PeerDirectory> directory,
         ModelIdentity model, Options options);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Routes frame types 0x40-0x5f of `router` to this engine.
  void attach(net::Router& router);
  // The SessionHandler to route 0x40-0x5f to.
  std::shared_ptr<net::SessionHandler> handler() const;

  // Trainer thread, after each step (`step` = steps done): applies a finished
  // exchange's delta, takes a snapshot if the partner of an accepted OFFER is
  // waiting for ours, serves pending state requests, and starts an exchange
  // when one is due and none is in flight. Never waits on the network.
  void between_steps(train::Backend& backend, int64_t step);

  // Trainer thread: waits up to `max_wait` until between_steps() has work
  // (a delta, a snapshot or a state request). Returns whether it has.
  bool wait_for_work(std::chrono::milliseconds max_wait);

  // Trainer thread, before a graceful LEAVE: runs one exchange now (retrying
  // BUSY partners until `timeout`), then answers BUSY to every later OFFER.
  // Returns ok after the delta was applied, else why not (kTimeout,
  // kUnavailable when no partner is known).
  core::Status final_exchange(train::Backend& backend, int64_t step,
                              std::chrono::milliseconds timeout);

  // Trainer thread, before training starts: downloads parameters, optimizer
  // state (and in outer mode phi and v) and step from the candidates, in the given order (shuffle
  // them for a random live member), moving on when one fails, refuses or exceeds state_timeout;
  // writes the state into `backend`. kInvalidArgument when every donor refused this peer's model
  // (it can never average with them), else kUnavailable naming each failure when none could serve.
  core::Result<FetchedState> fetch_state(train::Backend& backend, std::vector<Member> candidates);

  // Outer mode, trainer thread: phi and v (empty until the first
  // between_steps() or fetch_state(), which start them from the parameters
  // and zeros). Checkpoints save them; a resumed peer hands them back with
  // set_outer_state() before training (kCorrupt when the sizes do not fit
  // the model or a value is not finite; an empty state starts afresh).
  const OuterState& outer_state() const;
  core::Status set_outer_state(OuterState state);

  // Starts/stops initiating exchanges (offers are still answered). Any thread.
  void set_initiating(bool on);
  // Starts one exchange at the next between_steps() whatever the schedule
  // (and even when not initiating), unless one is in flight. Any thread.
  void request_exchange();
  // No exchange in flight or waiting to be applied. Any thread.
  bool idle() const;
  Counters counters() const;

  // Stops initiating, aborts the exchange in flight (nothing applied) and
  // answers BUSY from now on. Idempotent; any thread except io threads.
  void stop();

 private:
  std::shared_ptr<detail::Core> core_;
};

}  // namespace gossip::averaging
