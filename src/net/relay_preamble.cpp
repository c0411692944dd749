// The small deterministic parts of NAT traversal: the preamble codec, path
// names and the per-key minute limiter.
#include <algorithm>
#include <cstring>

#include "gossip/net/relay.hpp"

namespace gossip::net {

namespace {
constexpr std::array<uint8_t, 8> kRelayMagic = {0, 0, 'g', 't', 'r', 'l', 'y', '1'};
constexpr std::array<uint8_t, 8> kPunchMagic = {0, 0, 'g', 't', 'p', 'u', 'n', '1'};
}  // namespace

std::array<uint8_t, kPreambleBytes> encode_preamble(PreambleKind kind, const Token& token) {
  std::array<uint8_t, kPreambleBytes> out{};
  const auto& magic = kind == PreambleKind::kRelay ? kRelayMagic : kPunchMagic;
  std::copy(magic.begin(), magic.end(), out.begin());
  std::copy(token.begin(), token.end(), out.begin() + magic.size());
  return out;
}

std::optional<Preamble> decode_preamble(std::span<const uint8_t, kPreambleBytes> bytes) {
  Preamble p{};
  if (std::equal(kRelayMagic.begin(), kRelayMagic.end(), bytes.begin())) {
    p.kind = PreambleKind::kRelay;
  } else if (std::equal(kPunchMagic.begin(), kPunchMagic.end(), bytes.begin())) {
    p.kind = PreambleKind::kPunch;
  } else {
    return std::nullopt;
  }
  std::copy(bytes.begin() + 8, bytes.end(), p.token.begin());
  return p;
}

const char* path_kind_name(PathKind kind) {
  switch (kind) {
    case PathKind::kDirect:
      return "direct";
    case PathKind::kPunched:
      return "punched";
    case PathKind::kRelayed:
      return "relayed";
    case PathKind::kUnreachable:
      return "unreachable";
  }
  return "unknown";
}

bool MinuteLimiter::allow(const std::string& key, std::chrono::steady_clock::time_point now) {
  auto& times = seen_[key];
  const auto horizon = now - std::chrono::minutes(1);
  times.erase(std::remove_if(times.begin(), times.end(), [&](auto t) { return t <= horizon; }),
              times.end());
  // Forget keys that went quiet, so a stream of new keys cannot grow the map.
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (it->first != key && (it->second.empty() || it->second.back() <= horizon)) {
      it = seen_.erase(it);
    } else {
      ++it;
    }
  }
  if (times.size() >= per_minute_) return false;
  times.push_back(now);
  return true;
}

}  // namespace gossip::net
