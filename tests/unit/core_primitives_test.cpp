// The small shared values of module core: splitmix64 and FNV-1a against their
// reference outputs, peer ids and their short form, fingerprint text, and the
// non-finite check at every position of buffers of every tail length.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gossip/core/fingerprint.hpp"
#include "gossip/core/finite.hpp"
#include "gossip/core/hash.hpp"
#include "gossip/core/peer_id.hpp"

using namespace gossip::core;

TEST_CASE("splitmix64 gives the reference outputs (Vigna's splitmix64.c)") {
  // Model initialisation, data shuffles and shard plans are seeded through it:
  // these values must never change.
  SplitMix64 zero(0);
  CHECK(zero.next() == 0xe220a8397b1dcdafull);
  CHECK(zero.next() == 0x6e789e6aa1b965f4ull);
  CHECK(zero.next() == 0x06c45d188009454full);
  uint64_t state = 1234567;
  CHECK(splitmix64(state) == 0x599ed017fb08fc85ull);
  CHECK(splitmix64(state) == 0x2c73f08458540fa5ull);
  CHECK(state == 1234567 + 2 * kSplitMix64Gamma);
}

TEST_CASE("splitmix64: value k is reached by jumping the state by k - 1 increments") {
  const uint64_t seed = 0xfeedull;
  SplitMix64 rng(seed);
  for (uint64_t k = 1; k <= 20; ++k) {
    uint64_t jumped = seed + (k - 1) * kSplitMix64Gamma;
    CHECK(rng.next() == splitmix64(jumped));
  }
}

TEST_CASE("splitmix64's unit draws are 53-bit fractions in [0, 1)") {
  SplitMix64 a(7), b(7);
  for (int i = 0; i < 1000; ++i) {
    const double u = a.next_unit();
    CHECK(u >= 0.0);
    CHECK(u < 1.0);
    CHECK(u == static_cast<double>(b.next() >> 11) * 0x1.0p-53);
  }
}

TEST_CASE("fnv1a64 gives the FNV reference values") {
  CHECK(fnv1a64("") == 0xcbf29ce484222325ull);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a64("foobar") == 0x85944171f73967e8ull);
}

TEST_CASE("a peer id prints its first 12 hex digits") {
  const std::string hex = "3f9a0c5b7e21d4486a0b1c2d3e4f50617283940a1b2c3d4e5f60718293a4b5c6";
  const PeerId id(hex);
  CHECK(id.hex() == hex);
  CHECK(id.short_form() == "3f9a0c5b7e21");
  CHECK(short_peer_id(hex) == id.short_form());
  CHECK(id.short_form().size() == kShortPeerIdLength);
  // Shorter strings (a test's made-up id, an empty field) print whole.
  CHECK(short_peer_id("abc") == "abc");
  CHECK(short_peer_id("") == "");
  CHECK(PeerId().empty());
  CHECK_FALSE(id.empty());
}

TEST_CASE("peer ids compare as their hex strings") {
  const PeerId a("aa01"), b("aa02"), a2(std::string("aa01"));
  CHECK(a == a2);
  CHECK(a != b);
  CHECK(a < b);
  CHECK(b > a2);
}

TEST_CASE("fingerprints print as 0x and 16 lowercase hex digits") {
  CHECK(format_fingerprint(0x530af80e3078cf1dull) == "0x530af80e3078cf1d");
  CHECK(format_fingerprint(1) == "0x0000000000000001");
  CHECK(format_fingerprint(0) == "0x0000000000000000");
  CHECK(format_fingerprint(~0ull) == "0xffffffffffffffff");
}

TEST_CASE("parse_fingerprint reads exactly what format_fingerprint writes") {
  for (const uint64_t v : {0ull, 1ull, 0x530af80e3078cf1dull, ~0ull, 0x8000000000000000ull}) {
    const auto back = parse_fingerprint(format_fingerprint(v));
    REQUIRE(back.has_value());
    CHECK(*back == v);
  }
  for (const char* bad : {"", "0x", "530af80e3078cf1d", "0X530af80e3078cf1d", "0x530AF80E3078CF1D",
                          "0x530af80e3078cf1", "0x530af80e3078cf1d0", "0x530af80e3078cf1g",
                          " 0x530af80e3078cf1d", "0x-30af80e3078cf1d"}) {
    CHECK_MESSAGE(!parse_fingerprint(bad).has_value(), bad);
  }
}

TEST_CASE("first_non_finite finds the first NaN or infinity at any position") {
  const float kBad[] = {
      std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::quiet_NaN()};
  // Lengths around the vector widths, so that every tail path runs.
  for (size_t n = 0; n <= 67; ++n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.5f - 3.0f;
    CHECK(first_non_finite(v) == n);
    for (size_t at = 0; at < n; ++at) {
      for (const float bad : kBad) {
        std::vector<float> w = v;
        w[at] = bad;
        if (at + 2 < n) w[at + 2] = kBad[0];  // a later one does not count
        CHECK(first_non_finite(w) == at);
      }
    }
  }
}

TEST_CASE("first_non_finite counts every finite value as finite") {
  const std::vector<float> v = {std::numeric_limits<float>::max(),
                                std::numeric_limits<float>::lowest(),
                                std::numeric_limits<float>::min(),
                                std::numeric_limits<float>::denorm_min(),
                                -0.0f,
                                0.0f};
  CHECK(first_non_finite(v) == v.size());
  CHECK(first_non_finite(std::span<const float>()) == 0);
}
