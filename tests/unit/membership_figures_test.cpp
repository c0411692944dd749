// The membership figures quoted in the README: join/crash/leave
// known-everywhere times and membership bytes per peer per second, from the
// simulated swarm with default options, for 16 and 64 peers.
#include <doctest/doctest.h>

#include <cstdio>

#include "gossip/membership/simulation.hpp"

using namespace gossip::membership;

TEST_CASE("membership figures for 16 and 64 peers with default options") {
  SwarmFigures f16 = measure_swarm_figures(16, Options{}, 16);
  SwarmFigures f64 = measure_swarm_figures(64, Options{}, 64);
  for (const SwarmFigures& f : {f16, f64}) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "n=%d: join known everywhere %.2f s, crash known everywhere %.2f s, "
                  "leave known everywhere %.2f s, %.0f membership bytes/peer/s (%.0f%% sync)",
                  f.peers, f.join_known_everywhere_s, f.crash_known_everywhere_s,
                  f.leave_known_everywhere_s, f.bytes_per_peer_per_s, 100 * f.sync_share);
    MESSAGE(line);
    CHECK(f.join_known_everywhere_s >= 0);
    CHECK(f.join_known_everywhere_s < 10);
    CHECK(f.crash_known_everywhere_s >= 0);
    CHECK(f.crash_known_everywhere_s < (f.peers <= 16 ? 15 : 20));  // grows with log(n)
    CHECK(f.leave_known_everywhere_s >= 0);
    CHECK(f.leave_known_everywhere_s < 3);
    CHECK(f.bytes_per_peer_per_s > 0);
    CHECK(f.bytes_per_peer_per_s < 4000);
  }
  // Roughly flat: quadrupling the swarm at most doubles the per-peer bytes.
  CHECK(f64.bytes_per_peer_per_s < 2.0 * f16.bytes_per_peer_per_s);
}
