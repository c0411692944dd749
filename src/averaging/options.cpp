// Options and ModelIdentity: what an Engine is built from, read from the
// config's gossip section and from the backend.
#include <algorithm>

#include "core.hpp"

namespace gossip::averaging {

Options options_from(const config::GossipConfig& g, int64_t shard_samples) {
  Options o;
  o.interval_steps = g.interval_steps > 0 ? g.interval_steps : 10;
  o.interval = std::chrono::milliseconds(g.interval_ms);
  o.wire = g.wire;
  o.exchange_timeout = std::chrono::milliseconds(g.exchange_timeout_ms);
  o.backoff = std::chrono::milliseconds(g.backoff_ms);
  o.state_timeout = std::max(o.state_timeout, 3 * o.exchange_timeout);
  switch (g.weight) {
    case config::WeightMode::kSamples:
      o.weight = static_cast<double>(std::max<int64_t>(1, shard_samples));
      break;
    case config::WeightMode::kUniform:
      o.weight = 1.0;
      break;
    case config::WeightMode::kFixed:
      o.weight = g.weight_value;
      break;
  }
  return o;
}

ModelIdentity identity_of(const train::Backend& backend) {
  return {backend.model().fingerprint(), backend.param_count(), backend.optimizer_state_count()};
}

}  // namespace gossip::averaging
