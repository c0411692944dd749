// Endpoint: a "host:port" network address, typed. Parsed once where text
// enters (config files, the command line, membership's wire messages) and
// passed as it is from there to Node::dial, which resolves the name.
//
// Kept as text plus port rather than a resolved socket address: config parsing
// must not touch DNS or sockets, and the Node resolves names when it dials or
// binds. A core type: every module that reads or passes addresses uses it.
#pragma once

#include <cstdint>
#include <string>

#include "gossip/core/status.hpp"

namespace gossip::core {

struct Endpoint {
  std::string host;   // "127.0.0.1", "::1", "node-3.example" (no brackets)
  uint16_t port = 0;  // 0 only for listen addresses: "any free port"

  // "127.0.0.1:7400", "[::1]:7400" (IPv6 literals in brackets).
  std::string to_string() const;
  // Whether host is a wildcard bind address (0.0.0.0, ::, empty).
  bool is_wildcard() const;
  bool operator==(const Endpoint&) const = default;
};

// Parses "host:port" or "[v6]:port". Port must be 0..65535, or 1..65535 when
// allow_port_zero is false (addresses to dial). The error says what is wrong
// with the text, without naming a key (callers add it).
core::Result<Endpoint> parse_endpoint(const std::string& text, bool allow_port_zero = false);

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

}  // namespace gossip::core
