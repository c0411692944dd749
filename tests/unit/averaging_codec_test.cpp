// Block codecs (int8, randk): round trips, unbiased stochastic rounding
// against the binomial bound, randk's shared block draw, the fused apply
// against the decoded arrays, and validation of malformed blobs and OFFER
// codec fields before any use.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gossip/averaging/codec.hpp"
#include "gossip/averaging/protocol.hpp"

using namespace gossip;
using namespace gossip::averaging;

namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float sd = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, sd);
  std::vector<float> x(n);
  for (float& v : x) v = d(rng);
  return x;
}

const WireCodec kInt8{WireFormat::kInt8, 64, kDefaultFraction};
const WireCodec kRandK{WireFormat::kRandK, 64, 0.25};

std::vector<uint8_t> encoded(const WireLayout& l, const std::vector<float>& x, uint64_t seed,
                             std::vector<float>* dq = nullptr) {
  std::vector<uint8_t> wire(l.bytes());
  if (dq != nullptr) dq->resize(x.size());
  encode(l, x, wire, seed, dq != nullptr ? std::span<float>(*dq) : std::span<float>());
  return wire;
}

float scale_at(const std::vector<uint8_t>& wire, size_t k) {
  float s;
  std::memcpy(&s, wire.data() + 4 * k, 4);
  return s;
}

}  // namespace

TEST_CASE("int8 round trip: one quantization step at most, encoder and decoder agree") {
  const size_t n = 10'000 + 37;  // a short last block
  const auto x = random_vector(n, 1);
  const WireLayout l = make_layout(kInt8, n, 7);
  CHECK(l.bytes() == 4 * ((n + 63) / 64) + n);
  std::vector<float> dq, back(n);
  const auto wire = encoded(l, x, 99, &dq);
  REQUIRE(validate(l, wire).is_ok());
  decode(l, wire, back);
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(std::bit_cast<uint32_t>(dq[i]) == std::bit_cast<uint32_t>(back[i]));
    const float s = scale_at(wire, i / 64);
    REQUIRE(std::fabs(back[i] - x[i]) <= s * 1.000001f);
  }
  // Same seed, same bytes; the other side's seed, other rounding.
  CHECK(encoded(l, x, 99) == wire);
  CHECK(encoded(l, x, 100) != wire);
  CHECK(rounding_seed(5, true) != rounding_seed(5, false));
  // An all-zero block and a block whose largest value is subnormal stay finite.
  std::vector<float> z(128, 0.0f);
  z[64] = 1e-40f;
  const WireLayout lz = make_layout(kInt8, z.size(), 1);
  const auto wz = encoded(lz, z, 3, &dq);
  CHECK(validate(lz, wz).is_ok());
  for (float v : dq) CHECK(std::isfinite(v));
}

TEST_CASE("int8 stochastic rounding is unbiased within 5 standard errors") {
  // One block; over N independent seeds, dq_i - x_i has mean 0 and variance
  // s^2 p_i (1 - p_i), p_i the fractional part of x_i / s. The mean over N
  // draws is then within 5 sigma_i / sqrt(N) (plus float slack: x * inv
  // and the hash's 24-bit uniform are exact to ~2^-17 of a step). Round to
  // nearest would be off by up to s/2 on every element and fail.
  constexpr int kDraws = 20'000;
  const auto x = random_vector(64, 3, 1.0f);
  const WireLayout l = make_layout(kInt8, x.size(), 1);
  std::vector<double> mean(x.size(), 0);
  std::vector<float> dq(x.size());
  float s = 0;
  for (int d = 0; d < kDraws; ++d) {
    std::vector<uint8_t> wire(l.bytes());
    encode(l, x, wire, rounding_seed(static_cast<uint64_t>(d) + 1, d % 2 == 0), dq);
    s = scale_at(wire, 0);
    for (size_t i = 0; i < x.size(); ++i) mean[i] += (dq[i] - x[i]) / kDraws;
  }
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i] / s;
    const double p = v - std::floor(v);
    const double sigma = s * std::sqrt(p * (1 - p)) / std::sqrt(double{kDraws});
    const double bound = 5 * sigma + 1e-5 * s;
    worst = std::max(worst, std::fabs(mean[i]) / bound);
    CHECK(std::fabs(mean[i]) <= bound);
  }
  MESSAGE("worst |mean error| / bound = " << worst << " (step " << s << ")");
}

TEST_CASE("randk: the same blocks from the same xid, a fraction of them, no indices sent") {
  const size_t n = 64 * 1000 + 5;  // 1001 blocks, the last one 5 elements
  const WireLayout a = make_layout(kRandK, n, 12345), b = make_layout(kRandK, n, 12345);
  const WireLayout c = make_layout(kRandK, n, 12346);
  CHECK(a.blocks == b.blocks);
  CHECK(a.blocks != c.blocks);
  CHECK(a.blocks.size() == 251);  // ceil(0.25 * 1001)
  CHECK(a.bytes() == 251 * (4 + 64));
  for (size_t k = 1; k < a.blocks.size(); ++k) CHECK(a.blocks[k - 1] < a.blocks[k]);
  // Every block is drawn about equally often over many exchanges.
  std::vector<int> hits(1001, 0);
  for (uint64_t xid = 1; xid <= 400; ++xid) {
    for (uint32_t blk : make_layout(kRandK, n, xid).blocks) hits[blk]++;
  }
  const auto [lo, hi] = std::minmax_element(hits.begin(), hits.end());
  CHECK(*lo >= 60);  // mean 100, sd ~8.7
  CHECK(*hi <= 140);

  // Round trip: sent blocks within a step, the rest decode to 0.
  const auto x = random_vector(n, 4);
  WireLayout l = make_layout(kRandK, n, 77);
  if (l.blocks.back() != 1000) l.blocks.back() = 1000;  // exercise the padded block
  std::vector<float> dq, back(n);
  const auto wire = encoded(l, x, 5, &dq);
  REQUIRE(validate(l, wire).is_ok());
  decode(l, wire, back);
  std::vector<char> sent(n, 0);
  for (size_t k = 0; k < l.blocks.size(); ++k) {
    for (size_t i = l.blocks[k] * 64; i < std::min(n, (l.blocks[k] + 1) * size_t{64}); ++i) {
      sent[i] = 1;
      REQUIRE(std::fabs(back[i] - x[i]) <= scale_at(wire, k) * 1.000001f);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(dq[i] == back[i]);
    if (!sent[i]) REQUIRE(back[i] == 0.0f);
  }
  // At least one block even for a tiny fraction; all of them at fraction 1.
  CHECK(make_layout({WireFormat::kRandK, 64, 1e-9}, n, 1).blocks.size() == 1);
  CHECK(make_layout({WireFormat::kRandK, 64, 1.0}, n, 1).blocks.size() == 1001);
}

TEST_CASE("block codecs apply from two blobs exactly as from the decoded arrays") {
  for (const WireCodec& codec : {kInt8, kRandK}) {
    const size_t n = 64 * 300 + 17;
    const auto a = random_vector(n, 8), b = random_vector(n, 9), x0 = random_vector(n, 10);
    const WireLayout l = make_layout(codec, n, 4242);
    const auto wa = encoded(l, a, 1), wb = encoded(l, b, 2);
    std::vector<float> da(n), db(n);
    decode(l, wa, da);
    decode(l, wb, db);
    const float scale = 0.37f;
    std::vector<float> x = x0, ref = x0;
    double ref_sq = 0;
    for (size_t i = 0; i < n; ++i) {
      const float d = da[i] - db[i];
      ref[i] += scale * d;
      ref_sq += static_cast<double>(d) * d;
    }
    const double got_sq = apply_wire_delta(l, scale, wa, wb, x);
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(std::bit_cast<uint32_t>(x[i]) == std::bit_cast<uint32_t>(ref[i]));
    }
    CHECK(got_sq == doctest::Approx(ref_sq).epsilon(1e-5));
    // The other side applies the exact negation of the same delta (from
    // zero, so that no rounding of x + delta hides it).
    std::vector<float> u(n, 0.0f), v(n, 0.0f);
    (void)apply_wire_delta(l, scale, wa, wb, u);
    (void)apply_wire_delta(l, scale, wb, wa, v);
    for (size_t i = 0; i < n; ++i) REQUIRE(u[i] == -v[i]);
  }
}

TEST_CASE("malformed block-codec blobs are rejected before use") {
  const size_t n = 64 * 20 + 3;
  const auto x = random_vector(n, 11);
  auto check_bad = [](const WireLayout& l, std::vector<uint8_t> w, const char* needle) {
    auto st = validate(l, w);
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.code() == core::Code::kCorrupt);
    INFO(st.message());
    CHECK(st.message().find(needle) != std::string::npos);
  };
  for (const WireCodec& codec : {kInt8, kRandK}) {
    const WireLayout l = make_layout(codec, n, 31);
    const auto good = encoded(l, x, 1);
    REQUIRE(validate(l, good).is_ok());
    auto w = good;
    w.pop_back();
    check_bad(l, w, "bytes (expected");
    w = good;
    w.push_back(0);
    check_bad(l, w, "bytes (expected");
    for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity(), -1.0f, FLT_MAX}) {
      w = good;
      std::memcpy(w.data() + 4 * 2, &bad, 4);
      check_bad(l, w, "scale 2 of");
    }
    w = good;
    w[l.bytes() - 1 - (codec.format == WireFormat::kRandK ? 64 : 0)] = 0x80;
    check_bad(l, w, "-128");
  }
  // randk's zero padding after a short last block.
  WireLayout l = make_layout(kRandK, n, 31);
  l.blocks.back() = 20;  // the 3-element block
  auto w = encoded(l, x, 1);
  REQUIRE(validate(l, w).is_ok());
  w.back() = 1;
  check_bad(l, w, "padding");
}

TEST_CASE("codec parameters: checked in config values and in OFFER frames") {
  CHECK(check_codec(kInt8).is_ok());
  CHECK(check_codec(kRandK).is_ok());
  CHECK(check_codec(WireFormat::kFp32).is_ok());
  for (uint32_t block : {0u, 8u, 48u, 131072u}) {
    CHECK_FALSE(check_codec({WireFormat::kInt8, block, 0.5}).is_ok());
  }
  for (double f : {0.0, -0.1, 1.5, std::nan("")}) {
    CHECK_FALSE(check_codec({WireFormat::kRandK, 64, f}).is_ok());
  }
  // Parameters only compare for the codecs that have them.
  CHECK(WireCodec(WireFormat::kFp32) == WireCodec(WireFormat::kFp32, 128, 0.5));
  CHECK_FALSE(WireCodec(WireFormat::kInt8) == WireCodec(WireFormat::kInt8, 128, 0.5));

  Offer o{9, 1, 1.0, WireCodec(WireFormat::kRandK, 256, 0.1), 4810, "00"};
  auto p = parse_offer(encode(o));
  REQUIRE(p.is_ok());
  CHECK(p->codec == o.codec);
  CHECK(p->codec.fraction == 0.1);
  auto parsed = [](const std::string& s) {
    return parse_offer(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  const std::string head = R"({"xid":1,"step":0,"weight":1,"count":5,"fingerprint":"00",)";
  CHECK(parsed(head + R"("format":"int8","block":64})").is_ok());
  const char* bad[][2] = {
      {R"("format":"int8"})", "'block' is missing"},
      {R"("format":"int8","block":48})", "wire block 48 must be a power of two"},
      {R"("format":"int8","block":1048576})", "'block' is out of range"},
      {R"("format":"randk","block":64})", "'fraction' is missing"},
      {R"("format":"randk","block":64,"fraction":0})", "randk fraction 0.000000 must be in (0, 1]"},
      {R"("format":"randk","block":64,"fraction":"1/2"})", "'fraction' must be a number"},
      {R"("format":"int4"})", "'format' must be"},
  };
  for (const auto& [body, needle] : bad) {
    auto r = parsed(head + body);
    REQUIRE_FALSE(r.is_ok());
    INFO(r.status().message());
    CHECK(r.status().message().find(needle) != std::string::npos);
  }
}
