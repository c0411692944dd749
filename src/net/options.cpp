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

// A positive millisecond count at `key` into `out`; whether it was there.
bool read_ms(options::Section& s, const char* key, milliseconds& out) {
  int64_t ms = out.count();
  if (!s.positive(key, ms)) return false;
  out = milliseconds(ms);
  return true;
}

// A positive int at `key` into a size_t field.
void read_count(options::Section& s, const char* key, size_t& out) {
  int n = static_cast<int>(out);
  if (s.positive(key, n)) out = static_cast<size_t>(n);
}

void read_relay(options::Section& net, RelayConfig& out) {
  options::Section s = net.child("relay");
  s.boolean("enabled", out.enabled);
  read_count(s, "max_circuits", out.max_circuits);
  read_count(s, "max_reservations", out.max_reservations);
  int64_t rate = static_cast<int64_t>(out.max_bytes_per_s);
  if (s.integer("max_bytes_per_s", rate, 65536, int64_t{1} << 40)) {
    out.max_bytes_per_s = static_cast<uint64_t>(rate);
  }
  read_ms(s, "idle_timeout_ms", out.idle_timeout);
  read_ms(s, "pair_timeout_ms", out.pair_timeout);
  s.boolean("auto_reserve", out.auto_reserve);
  s.boolean("reserve", out.reserve);
  read_count(s, "reserve_count", out.reserve_count);
  read_ms(s, "direct_retry_ms", out.direct_retry);
  s.finish();
}

void read_punch(options::Section& net, PunchConfig& out) {
  options::Section s = net.child("punch");
  s.boolean("enabled", out.enabled);
  read_count(s, "max_per_minute", out.max_per_minute);
  int64_t delay = out.delay.count();
  if (s.integer("delay_ms", delay, 0, 10000)) out.delay = milliseconds(delay);
  read_ms(s, "attempt_ms", out.attempt);
  s.finish();
}

}  // namespace

void read_net(options::Section& top, NetConfig& out) {
  options::Section s = top.child("net");
  read_ms(s, "handshake_timeout_ms", out.handshake_timeout);
  read_ms(s, "idle_timeout_ms", out.idle_timeout);
  const bool keepalive_given = read_ms(s, "keepalive_ms", out.keepalive_interval);
  if (keepalive_given && out.keepalive_interval > out.idle_timeout / 3) {
    s.error("keepalive_ms", "must be at most a third of net.idle_timeout_ms (" +
                                std::to_string(out.idle_timeout.count() / 3) + "), got " +
                                std::to_string(out.keepalive_interval.count()));
  }
  out.keepalive_interval = std::min(out.keepalive_interval, out.idle_timeout / 3);
  s.boolean("port_mapping", out.port_mapping);
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
  read_relay(s, out.relay);
  read_punch(s, out.punch);
  s.finish();
}

nlohmann::json net_json(const NetConfig& n) {
  return {{"handshake_timeout_ms", n.handshake_timeout.count()},
          {"idle_timeout_ms", n.idle_timeout.count()},
          {"keepalive_ms", n.keepalive_interval.count()},
          {"port_mapping", n.port_mapping},
          {"unused_timeout_ms", n.unused_timeout.count()},
          {"max_sessions", n.max_sessions},
          {"max_pending_handshakes", n.max_pending_handshakes},
          {"max_pending_per_address", n.max_pending_per_address},
          {"max_control_frame", n.frames.max_control_body},
          {"cipher", std::string(crypto::cipher_config_name(n.cipher))},
          {"relay",
           {{"enabled", n.relay.enabled},
            {"max_circuits", n.relay.max_circuits},
            {"max_reservations", n.relay.max_reservations},
            {"max_bytes_per_s", n.relay.max_bytes_per_s},
            {"idle_timeout_ms", n.relay.idle_timeout.count()},
            {"pair_timeout_ms", n.relay.pair_timeout.count()},
            {"auto_reserve", n.relay.auto_reserve},
            {"reserve", n.relay.reserve},
            {"reserve_count", n.relay.reserve_count},
            {"direct_retry_ms", n.relay.direct_retry.count()}}},
          {"punch",
           {{"enabled", n.punch.enabled},
            {"max_per_minute", n.punch.max_per_minute},
            {"delay_ms", n.punch.delay.count()},
            {"attempt_ms", n.punch.attempt.count()}}}};
}

}  // namespace gossip::net
