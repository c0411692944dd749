// Endpoint: config's name for the net module's typed "host:port" address
// (gossip/net/endpoint.hpp), used by listen, advertise and bootstrap. One
// type from the config file to Node::dial.
#pragma once

#include "gossip/net/endpoint.hpp"

namespace gossip::config {

using net::Endpoint;
using net::parse_endpoint;

// The listen address of a local service (metrics.http, sim.metrics_http):
// "host:port", or a port alone (":9400" or "9400"), which binds loopback
// (127.0.0.1) only. Port 0: any free port.
struct ServiceAddress {
  Endpoint endpoint;       // empty host: the service is off
  bool host_given = true;  // false: the text had no host, endpoint.host is 127.0.0.1
  bool enabled() const { return !endpoint.host.empty(); }
  // As a config writes it: ":9400" when no host was given.
  std::string to_string() const;
  bool operator==(const ServiceAddress&) const = default;
};

// Parses a ServiceAddress; the error says what is wrong with the text,
// without naming a key (callers add it).
core::Result<ServiceAddress> parse_service_address(const std::string& text);

}  // namespace gossip::config
