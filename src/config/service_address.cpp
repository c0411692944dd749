// ServiceAddress: metrics.http and sim.metrics_http, "host:port" or a port
// alone (loopback), parsed without touching DNS or sockets.
#include "gossip/config/endpoint.hpp"

namespace gossip::config {

std::string ServiceAddress::to_string() const {
  if (host_given) return endpoint.to_string();
  std::string text(1, ':');
  text += std::to_string(endpoint.port);
  return text;
}

core::Result<ServiceAddress> parse_service_address(const std::string& text) {
  const bool port_only = text.find(':') == std::string::npos;
  if (port_only || text.front() == ':') {
    std::string with_host = "127.0.0.1";
    if (port_only) with_host += ':';
    with_host += text;
    auto parsed = parse_endpoint(with_host, true);
    if (!parsed) {
      return core::invalid_argument("expected \"host:port\", \":port\" or \"port\", got \"" + text +
                                    "\"");
    }
    return ServiceAddress{std::move(parsed).value(), false};
  }
  auto parsed = parse_endpoint(text, true);
  if (!parsed) return parsed.status();
  return ServiceAddress{std::move(parsed).value(), true};
}

}  // namespace gossip::config
