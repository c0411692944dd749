// Member helpers: state names and the strict checks applied to peer ids and
// addresses that arrive from the network (decode) or from the owner.
#include "gossip/membership/member.hpp"

#include <algorithm>

namespace gossip::membership {

namespace {

std::string quoted(std::string_view text) {
  constexpr size_t kShown = 80;
  std::string out = "\"";
  for (char c : text.substr(0, kShown)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  out += text.size() > kShown ? "...\"" : "\"";
  return out;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool is_v6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

}  // namespace

const char* state_name(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "unknown";
}

bool is_valid_peer_id(std::string_view id) {
  return id.size() == kPeerIdHexChars && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

core::Status validate_address(std::string_view address) {
  if (address.empty()) return core::protocol_error("address is empty (expected host:port)");
  if (address.size() > kMaxAddressChars) {
    return core::protocol_error("address " + quoted(address) + " is longer than " +
                                std::to_string(kMaxAddressChars) + " characters");
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    return core::protocol_error("address " + quoted(address) + " has no :port");
  }
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 4 || host.back() != ']' ||
        !std::all_of(host.begin() + 1, host.end() - 1, is_v6_char) ||
        host.substr(1, host.size() - 2).find(':') == std::string_view::npos) {
      return core::protocol_error("address " + quoted(address) + " has a malformed [IPv6] host");
    }
  } else if (host.empty() || host.size() > 253 ||
             !std::all_of(host.begin(), host.end(), is_host_char)) {
    return core::protocol_error("address " + quoted(address) +
                                " has an invalid host (letters, digits, '.', '-', '_'; 1..253)");
  }
  if (port.empty() || port.size() > 5 || port.front() == '0' ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(std::string(port)) > 65535) {
    return core::protocol_error("address " + quoted(address) + " has an invalid port (1..65535)");
  }
  return core::Status::ok();
}

std::string describe(const Member& member) {
  std::string id = member.id.size() > 12 ? member.id.substr(0, 8) + "…" : member.id;
  return id + " (" + member.address + ") " + state_name(member.state) + " #" +
         std::to_string(member.incarnation);
}

}  // namespace gossip::membership
