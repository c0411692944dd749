// SwarmMetrics: gossip-sim's one /metrics for all its peers (sim.metrics_http),
// each peer's samples labelled peer="<index>". It runs a MetricsHttpServer on
// an io_context and a thread of its own, so scrapes never take a simulated
// peer's network threads; rendering asks each peer for its observation
// (SimPeer::observe, under that peer's lock, which its trainer thread holds
// only briefly). Private to the sim module.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gossip/core/endpoint.hpp"
#include "gossip/core/status.hpp"
#include "gossip/net/http_metrics.hpp"
#include "sim_peer.hpp"

namespace gossip::sim {

class SwarmMetrics {
 public:
  // Binds `where` and starts serving; errors name sim.metrics_http.
  static core::Result<std::unique_ptr<SwarmMetrics>> start(const core::ServiceAddress& where);
  ~SwarmMetrics();  // stops serving before the peers it borrows go away
  SwarmMetrics(const SwarmMetrics&) = delete;
  SwarmMetrics& operator=(const SwarmMetrics&) = delete;

  // A peer to include from now on; it must outlive this object. Any thread.
  void add(const SimPeer* peer);

 private:
  SwarmMetrics();
  std::string render();

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<net::MetricsHttpServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<const SimPeer*> peers_;  // guarded by mu_
};

}  // namespace gossip::sim
