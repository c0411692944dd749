// Mass conservation: 8 real peers (distinct weights 1..8, distinct random
// initialisations) averaging only, 1000 exchanges over encrypted loopback
// sessions. The weighted sum sum_k w_k x_k must not move.
//
// Bound. Both sides of an exchange apply x += s*(a - b) with the SAME two
// dequantized wire snapshots a, b (fp32 or bf16 alike), so w_i*s_i and
// w_j*s_j are both w_i w_j/(w_i+w_j) up to one rounding of s, and the two
// deltas cancel exactly in real arithmetic: quantization never enters the
// conserved quantity. What remains is float32 rounding, |err| <= u*(|x'| +
// 2|s(a-b)|) per element and side, u = 2^-24, i.e. random-walk errors of
// ~u*|x|*sqrt(updates). For the scalar S = sum_k w_k sum_e x_k,e relative to
// A = sum_k w_k sum_e |x_k,e| that is ~u*sqrt(2*1000/N_elements) << 1e-6, and
// the same 1e-6 holds for bf16 (a naive scheme that mixed wire values with
// live parameters would be off by bf16's 2^-9 relative rounding instead).
#include <doctest/doctest.h>

#include "averaging_test_support.hpp"

using namespace gossip;
using namespace gossip::averaging;
using namespace gossip::averaging::testing;

namespace {

struct Sums {
  long double weighted = 0, abs_weighted = 0;
  std::vector<long double> per_element;
};

Sums sums(const std::vector<std::vector<float>>& xs) {
  Sums s;
  s.per_element.assign(xs[0].size(), 0);
  for (size_t k = 0; k < xs.size(); ++k) {
    const long double w = static_cast<long double>(k + 1);
    for (size_t e = 0; e < xs[k].size(); ++e) {
      s.weighted += w * xs[k][e];
      s.abs_weighted += w * std::fabs(xs[k][e]);
      s.per_element[e] += w * xs[k][e];
    }
  }
  return s;
}

void run_mass(WireFormat wire, GossipMode mode = GossipMode::kParams, OuterOptions outer = {}) {
  IoThreads io(2);
  Swarm swarm(
      io, 8, [](int i) { return small_model(100 + i); },
      [wire, mode, outer](int i) {
        Options o;
        o.interval = 4ms;
        o.wire = wire;
        o.mode = mode;
        o.outer = outer;
        o.weight = i + 1.0;
        o.backoff = 2ms;
        o.exchange_timeout = 5s;
        o.seed = 10 + i;
        return o;
      });
  const auto x0 = swarm.parameters();
  const Sums s0 = sums(x0);
  const double d0 = consensus_distance(x0);

  const auto t0 = std::chrono::steady_clock::now();
  swarm.start_loops();
  while (swarm.total_ok() < 2000 && std::chrono::steady_clock::now() - t0 < 60s) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(swarm.quiesce());
  swarm.stop_loops();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const auto x1 = swarm.parameters();
  const Sums s1 = sums(x1);
  const uint64_t exchanges = swarm.total_ok() / 2;
  REQUIRE(swarm.total_ok() % 2 == 0);  // every exchange applied on both sides
  REQUIRE(exchanges >= 1000);

  const double rel = static_cast<double>(std::fabs(s1.weighted - s0.weighted) / s0.abs_weighted);
  long double num = 0, den = 0;
  for (size_t e = 0; e < s0.per_element.size(); ++e) {
    num += (s1.per_element[e] - s0.per_element[e]) * (s1.per_element[e] - s0.per_element[e]);
    den += s0.per_element[e] * s0.per_element[e];
  }
  const double rel_vec = static_cast<double>(std::sqrt(num / den));
  uint64_t failed = 0, busy = 0;
  for (auto& p : swarm.peers) {
    failed += p->engine->counters().exchanges_failed;
    busy += p->engine->counters().exchanges_busy;
  }
  MESSAGE(std::string(averaging::wire_format_name(wire))
          << " " << std::string(gossip_mode_name(mode)) << ": " << exchanges << " exchanges in "
          << secs << " s (busy " << busy << ", failed " << failed << "); |dS|/A = " << rel
          << ", ||dm||/||m|| = " << rel_vec << ", consensus distance " << d0 << " -> "
          << consensus_distance(x1));
  CHECK(rel <= 1e-6);
  CHECK(rel_vec <= 1e-5);
  CHECK(failed == 0);
  // The exchanges really mixed the replicas.
  CHECK(consensus_distance(x1) < 1e-3 * d0);
}

}  // namespace

TEST_CASE("mass conservation: 8 peers, 1000 exchanges, fp32 wire") {
  run_mass(WireFormat::kFp32);
}

TEST_CASE("mass conservation: 8 peers, 1000 exchanges, bf16 wire") {
  run_mass(WireFormat::kBf16);
}

// Outer mode with lr 1 and momentum 0 is params mode (docs/design.md "Outer
// mode", conserved quantity (2)); with momentum 0 and no training, any lr
// keeps the weighted sum too (3), since theta stays equal to phi.
TEST_CASE("mass conservation: outer mode, lr 1, momentum 0, fp32 wire") {
  run_mass(WireFormat::kFp32, GossipMode::kOuter, {100, 1.0, 0.0});
}

TEST_CASE("mass conservation: outer mode, lr 0.5, momentum 0, bf16 wire") {
  run_mass(WireFormat::kBf16, GossipMode::kOuter, {100, 0.5, 0.0});
}
