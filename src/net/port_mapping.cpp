// PortMapping over libnatpmp and libminiupnpc (see port_mapping.hpp).
#include "gossip/net/port_mapping.hpp"

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <natpmp.h>
#include <sys/select.h>

#include <memory>
#include <string>

namespace gossip::net {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for the answer to the pending NAT-PMP request (libnatpmp retries
// with its own backoff) until `deadline`.
int natpmp_wait(natpmp_t& n, natpmpresp_t& response, Clock::time_point deadline) {
  int r = NATPMP_TRYAGAIN;
  for (int round = 0; round < 64 && r == NATPMP_TRYAGAIN; ++round) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) break;
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(n.s, &fds);
    timeval tv{};
    getnatpmprequesttimeout(&n, &tv);
    const auto left_us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    if (tv.tv_sec * 1000000 + tv.tv_usec > left_us) {
      tv.tv_sec = static_cast<time_t>(left_us / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(left_us % 1000000);
    }
    ::select(n.s + 1, &fds, nullptr, nullptr, &tv);
    r = readnatpmpresponseorretry(&n, &response);
  }
  return r;
}

// libnatpmp's own strnatpmperr() is not in Debian's build of the library.
std::string natpmp_error(int r) {
  const char* what = "error";
  switch (r) {
    case NATPMP_TRYAGAIN:
      return "no answer from the gateway in time";
    case NATPMP_ERR_CANNOTGETGATEWAY:
      what = "no default gateway";
      break;
    case NATPMP_ERR_SOCKETERROR:
    case NATPMP_ERR_CONNECTERR:
    case NATPMP_ERR_SENDERR:
    case NATPMP_ERR_RECVFROM:
      what = "socket error";
      break;
    case NATPMP_ERR_UNSUPPORTEDVERSION:
      what = "the gateway does not speak NAT-PMP version 0";
      break;
    case NATPMP_ERR_UNSUPPORTEDOPCODE:
      what = "the gateway does not support this request";
      break;
    case NATPMP_ERR_NOTAUTHORIZED:
      what = "the gateway refused (not authorized)";
      break;
    case NATPMP_ERR_NETWORKFAILURE:
      what = "the gateway has no usable public address (network failure)";
      break;
    case NATPMP_ERR_OUTOFRESOURCES:
      what = "the gateway is out of resources";
      break;
    default:
      break;
  }
  return std::string(what) + " (" + std::to_string(r) + ")";
}

}  // namespace

PortMapping::PortMapping(uint16_t internal_port, std::chrono::seconds lifetime,
                         std::chrono::milliseconds timeout)
    : internal_port_(internal_port), lifetime_(lifetime), timeout_(timeout) {}

PortMapping::~PortMapping() {
  release();
}

core::Result<PortMappingResult> PortMapping::request() {
  auto pmp = try_natpmp();
  if (pmp) return pmp;
  auto upnp = try_upnp();
  if (upnp) return upnp;
  return core::unavailable("no port mapping: NAT-PMP: " + pmp.status().message() +
                           "; UPnP-IGD: " + upnp.status().message());
}

core::Result<PortMappingResult> PortMapping::try_natpmp() {
  natpmp_t n{};
  if (int r = initnatpmp(&n, 0, 0); r < 0) return core::unavailable(natpmp_error(r));
  std::unique_ptr<natpmp_t, int (*)(natpmp_t*)> guard(&n, closenatpmp);
  const auto deadline = Clock::now() + timeout_;
  natpmpresp_t response{};
  if (int r = sendpublicaddressrequest(&n); r < 0) return core::unavailable(natpmp_error(r));
  if (int r = natpmp_wait(n, response, deadline); r < 0) {
    return core::unavailable("public address: " + natpmp_error(r));
  }
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &response.pnu.publicaddress.addr, ip, sizeof ip);
  if (int r = sendnewportmappingrequest(&n, NATPMP_PROTOCOL_TCP, internal_port_, internal_port_,
                                        static_cast<uint32_t>(lifetime_.count()));
      r < 0) {
    return core::unavailable(natpmp_error(r));
  }
  if (int r = natpmp_wait(n, response, deadline); r < 0) {
    return core::unavailable("mapping: " + natpmp_error(r));
  }
  mapped_protocol_ = "nat-pmp";
  mapped_port_ = response.pnu.newportmapping.mappedpublicport;
  return PortMappingResult{std::string(ip) + ":" + std::to_string(mapped_port_), "nat-pmp",
                           std::chrono::seconds(response.pnu.newportmapping.lifetime)};
}

core::Result<PortMappingResult> PortMapping::try_upnp() {
  int error = 0;
  UPNPDev* devices = upnpDiscover(static_cast<int>(timeout_.count()), nullptr, nullptr,
                                  UPNP_LOCAL_PORT_ANY, 0, 2, &error);
  if (!devices) {
    return core::unavailable(
        "no Internet Gateway Device answered the SSDP search" +
        (error != 0 ? " (error " + std::to_string(error) + ")" : std::string()));
  }
  UPNPUrls urls{};
  IGDdatas data{};
  char lan[64] = {};
  const int igd = UPNP_GetValidIGD(devices, &urls, &data, lan, sizeof lan);
  freeUPNPDevlist(devices);
  if (igd == 0) return core::unavailable("no Internet Gateway Device among the UPnP devices");
  std::unique_ptr<UPNPUrls, void (*)(UPNPUrls*)> guard(&urls, FreeUPNPUrls);
  // 2 is also what libminiupnpc (since 2.2.0) answers for a connected gateway
  // whose external address is private or reserved (a router behind another
  // NAT, or one with a documentation address as in the NAT lab). Such a
  // mapping may still be reachable, and nothing trusts it unconfirmed: it is
  // only a dial-back candidate (membership::Reach), as a NAT-PMP answer is.
  if (igd == 2 && !UPNPIGD_IsConnected(&urls, &data)) {
    return core::unavailable("the gateway says it is not connected");
  }
  if (igd != 1 && igd != 2) return core::unavailable("the UPnP device found is not a gateway");
  char ext[40] = {};
  if (int r = UPNP_GetExternalIPAddress(urls.controlURL, data.first.servicetype, ext); r != 0) {
    return core::unavailable(std::string("GetExternalIPAddress: ") + strupnperror(r));
  }
  const std::string port = std::to_string(internal_port_);
  const std::string lease = std::to_string(lifetime_.count());
  if (int r = UPNP_AddPortMapping(urls.controlURL, data.first.servicetype, port.c_str(),
                                  port.c_str(), lan, "gossip-train", "TCP", nullptr, lease.c_str());
      r != 0) {
    return core::unavailable("AddPortMapping " + port + " -> " + lan + ":" + port + ": " +
                             (strupnperror(r) ? strupnperror(r) : "error") + " (" +
                             std::to_string(r) + ")");
  }
  mapped_protocol_ = "upnp-igd";
  mapped_port_ = internal_port_;
  upnp_control_url_ = urls.controlURL;
  upnp_service_type_ = data.first.servicetype;
  return PortMappingResult{std::string(ext) + ":" + port, "upnp-igd", lifetime_};
}

void PortMapping::release() {
  if (mapped_protocol_ == "nat-pmp") {
    natpmp_t n{};
    if (initnatpmp(&n, 0, 0) == 0) {
      natpmpresp_t response{};
      if (sendnewportmappingrequest(&n, NATPMP_PROTOCOL_TCP, internal_port_, mapped_port_, 0) >=
          0) {
        natpmp_wait(n, response, Clock::now() + std::chrono::milliseconds(500));
      }
      closenatpmp(&n);
    }
  } else if (mapped_protocol_ == "upnp-igd") {
    const std::string port = std::to_string(mapped_port_);
    UPNP_DeletePortMapping(upnp_control_url_.c_str(), upnp_service_type_.c_str(), port.c_str(),
                           "TCP", nullptr);
  }
  mapped_protocol_.clear();
}

}  // namespace gossip::net
