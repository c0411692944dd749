// The "net" section of a config file: reading it into NetConfig and writing
// it back.
#include "gossip/net/options.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/options/reader.hpp"

namespace gossip::net {

namespace {

using std::chrono::milliseconds;

// A positive millisecond count at `key` into `out`.
void read_ms(options::Section& s, const char* key, milliseconds& out) {
  int64_t ms = out.count();
  if (s.positive(key, ms)) out = milliseconds(ms);
}

// A positive int at `key` into a size_t field.
void read_count(options::Section& s, const char* key, size_t& out) {
  int n = static_cast<int>(out);
  if (s.positive(key, n)) out = static_cast<size_t>(n);
}

}  // namespace

void read_net(options::Section& top, NetConfig& out) {
  options::Section s = top.child("net");
  read_ms(s, "handshake_timeout_ms", out.handshake_timeout);
  read_ms(s, "idle_timeout_ms", out.idle_timeout);
  out.keepalive_interval = std::min(out.keepalive_interval, out.idle_timeout / 3);
  int64_t unused = out.unused_timeout.count();
  if (s.non_negative("unused_timeout_ms", unused)) out.unused_timeout = milliseconds(unused);
  read_count(s, "max_sessions", out.max_sessions);
  read_count(s, "max_pending_handshakes", out.max_pending_handshakes);
  read_count(s, "max_pending_per_address", out.max_pending_per_address);
  if (out.max_pending_per_address > out.max_pending_handshakes) {
    s.error("max_pending_per_address", "must not exceed net.max_pending_handshakes (" +
                                           std::to_string(out.max_pending_handshakes) + "), got " +
                                           std::to_string(out.max_pending_per_address));
  }
  int64_t control = static_cast<int64_t>(out.frames.max_control_body);
  if (s.integer("max_control_frame", control, 1024, 16 << 20)) {
    out.frames.max_control_body = static_cast<size_t>(control);
  }
  std::vector<std::string> ciphers;
  for (const crypto::CipherName& n : crypto::kCipherNames) ciphers.emplace_back(n.config);
  std::string cipher(crypto::cipher_config_name(out.cipher));
  if (s.choice("cipher", ciphers, cipher)) out.cipher = *crypto::parse_cipher(cipher);
  s.finish();
}

nlohmann::json net_json(const NetConfig& n) {
  return {{"handshake_timeout_ms", n.handshake_timeout.count()},
          {"idle_timeout_ms", n.idle_timeout.count()},
          {"unused_timeout_ms", n.unused_timeout.count()},
          {"max_sessions", n.max_sessions},
          {"max_pending_handshakes", n.max_pending_handshakes},
          {"max_pending_per_address", n.max_pending_per_address},
          {"max_control_frame", n.frames.max_control_body},
          {"cipher", std::string(crypto::cipher_config_name(n.cipher))}};
}

}  // namespace gossip::net
