// The outer-optimizer mode of gossip averaging (gossip.mode "outer";
// docs/design.md "Outer mode"): what a peer keeps between sync points and the
// one update it applies at each of them.
//
// Each peer keeps its sync point phi (the outer parameters) and a momentum
// buffer v; the live parameters theta are what the inner optimizer trains.
// An exchange with one partner is a sync point for both sides. With s the
// exact own parameters at the snapshot and d the params mode's delta
// (w_j/(w_i+w_j) * (dq(s_j) - dq(s_i)), from the same decoded numbers on both
// sides), the pair target is m = s + d, and
//     g     = phi - m                 (own pseudo-gradient phi - s, minus d)
//     v     = mu * v + g
//     phi'  = phi - lr * (g + mu * v) (Nesterov)
//     theta = theta + (phi' - s)      (local steps since the snapshot kept)
// Conserved: w_i g_i + w_j g_j = w_i (phi_i - s_i) + w_j (phi_j - s_j) (the
// consensus parts cancel), and with lr 1, mu 0 the step is params mode.
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::averaging {

// The config's gossip.mode and the "mode" of OFFER and STATE_REQ frames.
enum class GossipMode : uint8_t { kParams, kOuter };
// "params" | "outer"; parse_gossip_mode names both when the text is neither.
const char* gossip_mode_name(GossipMode mode);
std::optional<GossipMode> parse_gossip_mode(const std::string& name);

// The outer optimizer's settings (gossip.outer).
struct OuterOptions {
  int64_t steps = 100;    // H: local steps between the syncs this peer starts
  double lr = 0.7;        // outer learning rate
  double momentum = 0.9;  // Nesterov momentum, in [0, 1)
};

// What a peer keeps between sync points: phi and v, each param_count floats,
// or both empty before the first (the engine then starts them from theta
// and zeros). Checkpoints and state downloads carry both.
struct OuterState {
  std::vector<float> phi, v;
  bool empty() const { return phi.empty(); }
};

// One outer step at a sync point, element-wise over phi, v and `target`
// (the pair target m, all the same size): on return phi and v hold the new
// values. Written as phi' = m + (1 - lr) g - lr mu v', so lr 1 and mu 0 give
// phi' = m exactly. Returns sum(g) over the elements, in double (tests).
double outer_step(const OuterOptions& o, std::span<float> phi, std::span<float> v,
                  std::span<const float> target);

// The state a joiner downloads or a checkpoint holds, checked against a model
// of `param_count` parameters: empty, or phi and v of that size with finite
// values. kCorrupt naming what is wrong otherwise.
core::Status check_outer_state(const OuterState& s, size_t param_count);

// "||phi|| = A, ||v|| = B" (%.9g, float squares summed in double): what a peer
// logs about an outer state it restored or downloaded, and what tests compare
// with a checkpoint file's phi and v.
std::string outer_norms_text(const OuterState& s);

}  // namespace gossip::averaging
