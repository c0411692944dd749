// PeerNetwork: everything a networked peer runs besides its trainer. It loads
// the keys, starts the network threads, the Node (listener and dialer), the
// Router, the membership Swarm and the averaging Engine, and offers the
// trainer loop a handful of calls at the points where the network meets
// training: before the first step (join, and download the swarm's state when
// nothing was resumed), between steps (gossip averaging), and at the end
// (one last exchange, then LEAVE).
//
// Threads: the network runs on its own io_context threads; every method here
// is called from the trainer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/core/status.hpp"
#include "gossip/net/link_filter.hpp"
#include "gossip/peer/metrics.hpp"
#include "gossip/peer/observe.hpp"
#include "gossip/peer/trainer.hpp"

namespace gossip::peer {

class PeerNetwork {
 public:
  // Loads peer.identity_key and peer.swarm_key (errors name the key and the
  // file; run_peer checks first that both exist), binds peer.listen
  // and starts the membership and averaging protocols for `trainer`'s model,
  // and, when metrics.http is set, serves GET /metrics there (errors name
  // metrics.http).
  // `weight` is this peer's averaging weight. With `link_filter`, a
  // net::LinkFilter sits between the Node and the protocols (fault
  // injection: partitions, slow links, dropped exchanges). The network runs
  // on `io_threads` threads of its own io_context.
  static core::Result<std::unique_ptr<PeerNetwork>> start(const config::Config& config,
                                                          Trainer& trainer, double weight,
                                                          bool link_filter = false,
                                                          int io_threads = 2);
  ~PeerNetwork();  // stops everything without a LEAVE (use leave() first)
  PeerNetwork(const PeerNetwork&) = delete;
  PeerNetwork& operator=(const PeerNetwork&) = delete;

  // Joins through peer.bootstrap (none: this peer founds the swarm). Fails
  // naming every address tried when none answers in time (30 s), or sooner
  // when no seed can ever answer (see membership::Swarm::join). With `stop`,
  // a stop request (*stop becoming true) ends the wait within ~20 ms with a
  // kClosed "stopped before joining the swarm"; fetch_swarm_state() then
  // finds nobody and leave() makes no final exchange.
  core::Status join(const std::atomic<bool>* stop = nullptr);

  // Downloads parameters, optimizer state and step from a random live member
  // (falling back to the others) into `trainer`. Returns false, doing
  // nothing, when no member is known (this peer is the first); an error when
  // members exist but none could serve.
  core::Result<bool> fetch_swarm_state(Trainer& trainer);

  // After each training step, before between_steps(): counts the step and
  // publishes its loss for observe().
  void count_step(const Trainer& trainer, float loss);
  // After each training step: applies finished averaging deltas, answers
  // partners waiting for our snapshot, starts an exchange when due.
  void between_steps(Trainer& trainer);
  // Averaging without training: waits up to `max_wait` for averaging work
  // that between_steps() would do.
  void wait_for_work(std::chrono::milliseconds max_wait);
  // Starts/stops starting exchanges of this peer's own; offers and state
  // requests are still answered (the simulator holds a cohort this way until
  // it starts together). Any thread.
  void set_initiating(bool on);

  // One last exchange (bounded wait; skipped with final_exchange false, for
  // parameters nobody should take: a diverged run, a model the swarm
  // refused), then LEAVE to every member.
  void leave(Trainer& trainer, bool final_exchange = true);

  // gossip.mode outer: phi and v as the engine holds them (empty in params
  // mode), for checkpoints.
  averaging::OuterState outer_state() const;
  // A resumed checkpoint's phi and v, before training. In params mode a
  // non-empty state is dropped with a log line; in outer mode an empty one
  // starts afresh from the parameters. kCorrupt when it does not fit.
  core::Status resume_outer_state(averaging::OuterState state);

  // Exchanges, bytes and members for metrics and progress lines.
  NetworkCounters counters() const;
  // The last evaluation (accuracy only for classification), published for
  // observe(). Trainer thread.
  void record_eval(double test_loss, std::optional<double> test_accuracy);
  // Everything an operator sees of this peer (STATUS, metrics.http; see
  // observe.hpp). Any thread; takes no lock the trainer holds.
  PeerObservation observe() const;
  // This peer's id (hex of its static key) and listening address.
  const std::string& peer_id() const;
  std::string listen_address() const;
  // The fault-injection filter (null unless started with link_filter).
  // Any thread.
  std::shared_ptr<net::LinkFilter> link_filter() const;
  // Member ids this peer currently sees alive (not itself). Any thread.
  std::vector<std::string> live_member_ids() const;

 private:
  struct Parts;
  explicit PeerNetwork(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace gossip::peer
