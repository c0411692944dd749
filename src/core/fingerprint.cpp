// Fingerprint text: format_fingerprint and its inverse.
#include "gossip/core/fingerprint.hpp"

#include <cinttypes>
#include <cstdio>

namespace gossip::core {

std::string format_fingerprint(uint64_t fingerprint) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, fingerprint);
  return buf;
}

std::optional<uint64_t> parse_fingerprint(std::string_view text) {
  if (text.size() != 18 || text[0] != '0' || text[1] != 'x') return std::nullopt;
  uint64_t v = 0;
  for (const char c : text.substr(2)) {
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace gossip::core
