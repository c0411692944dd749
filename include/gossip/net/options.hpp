// The "net" section of a config file, owned by the net module: it fills the
// Node's own NetConfig (limits.hpp), the keys in milliseconds and bytes, the
// cipher by its config spelling. config::Config holds one; read_net and
// net_json convert it from and to JSON (src/net/options.cpp).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "gossip/net/limits.hpp"

namespace gossip::options {
class Section;
}

namespace gossip::net {

// Reads the top-level object's optional "net" section into `out` (defaults
// already there); problems are recorded through `top` as "net.<key>: ...".
// The keepalive interval follows the idle timeout (at most a third of it);
// the fields the section does not name keep their NetConfig defaults.
void read_net(options::Section& top, NetConfig& out);

// The section as read_net reads it: handshake_timeout_ms, idle_timeout_ms,
// max_sessions, max_pending_handshakes, max_pending_per_address,
// max_control_frame, cipher, and the relay and punch objects.
nlohmann::json net_json(const NetConfig& net);

}  // namespace gossip::net
