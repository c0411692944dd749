// SwarmMetrics: sim.metrics_http, one exposition for every simulated peer.
#include "metrics_endpoint.hpp"

#include <asio/ip/address.hpp>

#include "gossip/core/log.hpp"
#include "gossip/peer/observe.hpp"

namespace gossip::sim {

SwarmMetrics::SwarmMetrics() = default;

core::Result<std::unique_ptr<SwarmMetrics>> SwarmMetrics::start(const core::ServiceAddress& where) {
  asio::error_code ec;
  const auto address = asio::ip::make_address(where.endpoint.host, ec);
  if (ec) {
    return core::invalid_argument("sim.metrics_http: '" + where.endpoint.host +
                                  "' is not an IP address to bind: " + ec.message());
  }
  std::unique_ptr<SwarmMetrics> m(new SwarmMetrics());
  SwarmMetrics* raw = m.get();
  m->server_ = std::make_unique<net::MetricsHttpServer>(m->io_, [raw] { return raw->render(); });
  GOSSIP_RETURN_IF_ERROR(
      m->server_->listen({address, where.endpoint.port}).with_context("sim.metrics_http"));
  m->thread_ = std::thread([raw] { raw->io_.run(); });
  const auto bound = m->server_->local_endpoint();
  std::string line = "serving every peer's Prometheus metrics on http://" + where.endpoint.host +
                     ":" + std::to_string(bound.port()) + "/metrics";
  if (!where.host_given) line += " (sim.metrics_http gives no host: loopback only)";
  core::log_info("sim", line);
  return m;
}

SwarmMetrics::~SwarmMetrics() {
  server_->close();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

void SwarmMetrics::add(const SimPeer* peer) {
  std::lock_guard lock(mu_);
  peers_.push_back(peer);
}

std::string SwarmMetrics::render() {
  std::vector<peer::LabeledObservation> seen;
  {
    std::lock_guard lock(mu_);
    for (const SimPeer* p : peers_) {
      if (auto o = p->observe()) {
        seen.push_back({{{"peer", std::to_string(p->index())}}, std::move(*o)});
      }
    }
  }
  return peer::render_metrics(seen);
}

}  // namespace gossip::sim
