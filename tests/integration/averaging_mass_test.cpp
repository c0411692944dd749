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
// the same 1e-6 holds for bf16, int8 and randk (a naive scheme that mixed
// wire values with live parameters would be off by the codec's relative
// rounding instead: 2^-9 for bf16, ~1/254 of a block's largest value for
// int8). With randk both sides move the same blocks (drawn from the xid) and
// leave the rest alone. Peers configured with different codecs interoperate:
// an exchange runs in its initiator's codec, whichever peer responds.
#include <doctest/doctest.h>

#include <functional>

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

// `codec_of(i)`: peer i's gossip.wire. `mixing`: the consensus distance must
// fall below mixing * its start (lossy codecs: their noise floor, measured
// and printed).
void run_mass(const std::string& name, const std::function<WireCodec(int)>& codec_of, double mixing,
              GossipMode mode = GossipMode::kParams, OuterOptions outer = {}) {
  IoThreads io(2);
  Swarm swarm(
      io, 8, [](int i) { return small_model(100 + i); },
      [&codec_of, mode, outer](int i) {
        Options o;
        o.interval = 4ms;
        o.wire = codec_of(i);
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
  const double mixed = consensus_distance(x1) / d0;
  MESSAGE(name << ": " << exchanges << " exchanges in " << secs << " s (busy " << busy
               << ", failed " << failed << "); |dS|/A = " << rel << ", ||dm||/||m|| = " << rel_vec
               << ", consensus distance " << d0 << " -> " << consensus_distance(x1) << " (x"
               << mixed << ")");
  CHECK(rel <= 1e-6);
  CHECK(rel_vec <= 1e-5);
  CHECK(failed == 0);
  // The exchanges really mixed the replicas.
  CHECK(mixed < mixing);
}

}  // namespace

TEST_CASE("mass conservation: 8 peers, 1000 exchanges, fp32 wire") {
  run_mass(
      "fp32", [](int) { return WireFormat::kFp32; }, 1e-3);
}

TEST_CASE("mass conservation: 8 peers, 1000 exchanges, bf16 wire") {
  run_mass(
      "bf16", [](int) { return WireFormat::kBf16; }, 1e-3);
}

// int8's stochastic rounding leaves a noise floor: identical replicas still
// exchange independent roundings, E||delta||^2 ~ s^2/3 per element with s a
// block's step (~1/127 of its largest value); measured ~1e-5 of the
// initial spread here, bound 1e-3.
TEST_CASE("mass conservation: 8 peers, 1000 exchanges, int8 wire") {
  run_mass(
      "int8", [](int) { return WireFormat::kInt8; }, 1e-3);
}

// A quarter of the blocks per exchange: each element is averaged ~250 times
// in 1000 exchanges, (6/7)^250 ~ 1e-17 in theory, down to int8's floor.
TEST_CASE("mass conservation: 8 peers, 1000 exchanges, randk wire") {
  run_mass(
      "randk 1/4", [](int) { return WireCodec(WireFormat::kRandK, 64, 0.25); }, 1e-3);
}

// Peers configured with different codecs: each exchange runs in its
// initiator's, both sides decode the same blobs, the mass stays put.
TEST_CASE("mass conservation: 8 peers with mixed codecs interoperate") {
  run_mass(
      "mixed fp32/bf16/int8/randk",
      [](int i) {
        const WireCodec codecs[] = {WireFormat::kFp32, WireFormat::kBf16,
                                    WireCodec(WireFormat::kInt8, 128, 0),
                                    WireCodec(WireFormat::kRandK, 32, 0.5)};
        return codecs[i % 4];
      },
      1e-3);
}

// Outer mode with lr 1 and momentum 0 is params mode (docs/design.md "Outer
// mode", conserved quantity (2)); with momentum 0 and no training, any lr
// keeps the weighted sum too (3), since theta stays equal to phi.
TEST_CASE("mass conservation: outer mode, lr 1, momentum 0, fp32 wire") {
  run_mass("fp32 outer lr 1", [](int) { return WireFormat::kFp32; }, 1e-3, GossipMode::kOuter,
           {100, 1.0, 0.0});
}

TEST_CASE("mass conservation: outer mode, lr 0.5, momentum 0, bf16 wire") {
  run_mass("bf16 outer lr 0.5", [](int) { return WireFormat::kBf16; }, 1e-2, GossipMode::kOuter,
           {100, 0.5, 0.0});
}
