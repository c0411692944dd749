// The outer step of gossip.mode "outer" (outer.hpp) and the mode's names.
#include "gossip/averaging/outer.hpp"

#include <cmath>
#include <cstdio>

#include "gossip/core/finite.hpp"

namespace gossip::averaging {

const char* gossip_mode_name(GossipMode mode) {
  return mode == GossipMode::kOuter ? "outer" : "params";
}

std::optional<GossipMode> parse_gossip_mode(const std::string& name) {
  if (name == "params") return GossipMode::kParams;
  if (name == "outer") return GossipMode::kOuter;
  return std::nullopt;
}

double outer_step(const OuterOptions& o, std::span<float> phi, std::span<float> v,
                  std::span<const float> target) {
  const float lr = static_cast<float>(o.lr), mu = static_cast<float>(o.momentum);
  const float keep = 1.0f - lr, push = lr * mu;
  double sum_g = 0;
  for (size_t k = 0; k < phi.size(); ++k) {
    const float g = phi[k] - target[k];
    const float vk = mu * v[k] + g;
    v[k] = vk;
    phi[k] = target[k] + keep * g - push * vk;
    sum_g += g;
  }
  return sum_g;
}

core::Status check_outer_state(const OuterState& s, size_t param_count) {
  if (s.phi.empty() && s.v.empty()) return core::Status::ok();
  if (s.phi.size() != param_count || s.v.size() != param_count) {
    return core::corrupt("outer state holds " + std::to_string(s.phi.size()) + " + " +
                         std::to_string(s.v.size()) + " values, this model needs " +
                         std::to_string(param_count) + " + " + std::to_string(param_count));
  }
  if (const size_t bad = core::first_non_finite(s.phi); bad < s.phi.size()) {
    return core::corrupt("outer state: phi has a non-finite value at element " +
                         std::to_string(bad));
  }
  if (const size_t bad = core::first_non_finite(s.v); bad < s.v.size()) {
    return core::corrupt("outer state: momentum has a non-finite value at element " +
                         std::to_string(bad));
  }
  return core::Status::ok();
}

std::string outer_norms_text(const OuterState& s) {
  auto norm = [](const std::vector<float>& x) {
    double sum = 0;
    for (float f : x) sum += static_cast<double>(f) * f;
    return std::sqrt(sum);
  };
  char buf[96];
  std::snprintf(buf, sizeof buf, "||phi|| = %.9g, ||v|| = %.9g", norm(s.phi), norm(s.v));
  return buf;
}

}  // namespace gossip::averaging
