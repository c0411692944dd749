// Endpoint parsing: "host:port" and "[v6]:port", checked without touching DNS.
#include "gossip/core/endpoint.hpp"

#include <charconv>

namespace gossip::core {

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool Endpoint::is_wildcard() const {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "*";
}

core::Result<Endpoint> parse_endpoint(const std::string& text, bool allow_port_zero) {
  const std::string quoted = "\"" + text + "\"";
  std::string host;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return core::invalid_argument("expected \"[ipv6]:port\", got " + quoted);
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      return core::invalid_argument("expected \"host:port\", got " + quoted + " (no port)");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return core::invalid_argument("expected \"host:port\", got " + quoted +
                                    " (write IPv6 addresses as \"[::1]:7400\")");
    }
  }
  if (host.empty()) {
    return core::invalid_argument("expected \"host:port\", got " + quoted + " (no host)");
  }
  for (char c : host) {
    if (c == ' ' || c == '/' || c == '[' || c == ']' || static_cast<unsigned char>(c) < 0x21) {
      return core::invalid_argument("bad host in " + quoted);
    }
  }
  unsigned port = 0;
  const char* first = port_text.data();
  const char* last = first + port_text.size();
  const auto [end, ec] = std::from_chars(first, last, port);
  const unsigned min_port = allow_port_zero ? 0 : 1;
  if (port_text.empty() || ec != std::errc() || end != last || port > 65535 || port < min_port) {
    return core::invalid_argument("bad port in " + quoted + " (expected " +
                                  std::to_string(min_port) + "..65535)");
  }
  return Endpoint{host, static_cast<uint16_t>(port)};
}

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

}  // namespace gossip::core
