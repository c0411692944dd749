// PortMapping: asks the LAN's router to forward a public TCP port to this
// peer's listening port, with NAT-PMP (Debian's libnatpmp) and then
// UPnP-IGD (libminiupnpc), the way home routers offer it. Nothing here is a
// hand-written client: the libraries speak the protocols.
//
// request() blocks (both protocols wait on UDP/HTTP answers, bounded by the
// timeouts below), so the peer runs it on a thread of its own; renew()
// repeats the request before the lease ends, release() deletes the mapping.
//
// Threads: one caller at a time (the owner's mapping thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "gossip/core/status.hpp"

namespace gossip::net {

struct PortMappingResult {
  std::string external;  // "ip:port" the router forwards to us
  std::string protocol;  // "nat-pmp" or "upnp-igd"
  std::chrono::seconds lifetime{0};
};

class PortMapping {
 public:
  // Maps TCP `internal_port` of this host (the same port outside when the
  // router allows it). `lifetime` is the lease asked for. Each protocol
  // gets at most `timeout` (NAT-PMP retries, UPnP SSDP discovery + SOAP).
  PortMapping(uint16_t internal_port, std::chrono::seconds lifetime = std::chrono::seconds(3600),
              std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  ~PortMapping();  // release()
  PortMapping(const PortMapping&) = delete;
  PortMapping& operator=(const PortMapping&) = delete;

  // NAT-PMP first, then UPnP-IGD. kUnavailable names why each failed
  // ("NAT-PMP: ...; UPnP-IGD: ...").
  core::Result<PortMappingResult> request();
  // Deletes the mapping made by request(), if any (best effort).
  void release();

 private:
  core::Result<PortMappingResult> try_natpmp();
  core::Result<PortMappingResult> try_upnp();

  uint16_t internal_port_;
  std::chrono::seconds lifetime_;
  std::chrono::milliseconds timeout_;
  std::string mapped_protocol_;  // what to release
  uint16_t mapped_port_ = 0;
  std::string upnp_control_url_, upnp_service_type_;
};

}  // namespace gossip::net
