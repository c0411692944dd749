// Wire formats and protocol bodies: exact round-to-nearest-even conversions
// (checked against the compiler's _Float16 and a bf16 reference on every
// 16-bit pattern and millions of random floats), non-finite detection and
// validation of every protocol field. (The conversion rate is a figure for
// gossip-bench averaging, not a test.)
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gossip/averaging/protocol.hpp"
#include "gossip/averaging/wire_format.hpp"

using namespace gossip;
using namespace gossip::averaging;

namespace {

// Reference bf16: pick the nearer of the two neighbours, ties to even.
uint16_t bf16_reference(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return static_cast<uint16_t>((u >> 16) | 0x40);
  const uint16_t lo = static_cast<uint16_t>(u >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const uint32_t rest = u & 0xffff;
  if (rest < 0x8000) return lo;
  if (rest > 0x8000) return hi;
  return (lo & 1) ? hi : lo;
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST_CASE("bf16 and fp16 conversions round to nearest even on every pattern") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float b = bf16_to_float(static_cast<uint16_t>(h));
    CHECK(std::bit_cast<uint32_t>(b) == h << 16);
    const _Float16 ref = std::bit_cast<_Float16>(static_cast<uint16_t>(h));
    const float f = fp16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(static_cast<float>(ref))) {
      CHECK(std::isnan(f));
    } else {
      REQUIRE(std::bit_cast<uint32_t>(f) == std::bit_cast<uint32_t>(static_cast<float>(ref)));
      CHECK(float_to_fp16(f) == h);  // exact values survive the round trip
    }
  }
  std::mt19937 rng(5);
  size_t mismatches = 0;
  for (int i = 0; i < 4'000'000; ++i) {
    uint32_t u = rng();
    if (i % 4 == 0)
      u = (u & 0x80ffffffu) | ((100u + rng() % 50) << 23);  // fp16 normal/subnormal range
    const float x = std::bit_cast<float>(u);
    if (float_to_bf16(x) != bf16_reference(x)) ++mismatches;
    const _Float16 r = static_cast<_Float16>(x);
    const uint16_t hr = std::bit_cast<uint16_t>(r);
    const uint16_t h = float_to_fp16(x);
    if (std::isnan(x)) {
      if (!std::isnan(fp16_to_float(h))) ++mismatches;
    } else if (h != hr) {
      ++mismatches;
    }
  }
  CHECK(mismatches == 0);
  // Ties go to even; overflow goes to infinity.
  CHECK(float_to_bf16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);
  CHECK(float_to_bf16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);
  CHECK(float_to_fp16(65520.0f) == 0x7c00);
  CHECK(float_to_fp16(65504.0f) == 0x7bff);
  CHECK(float_to_fp16(-1e-8f) == 0x8000);
}

TEST_CASE("encode/decode: both sides see the same dequantized values; non-finite is found") {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 0.1f);
  std::vector<float> x(100003);
  for (float& v : x) v = n(rng);
  for (WireFormat f : {WireFormat::kFp32, WireFormat::kBf16, WireFormat::kFp16}) {
    std::vector<uint8_t> wire(wire_bytes(f, x.size()));
    std::vector<float> dq_own(x.size()), dq_peer(x.size());
    encode(f, x, wire, dq_own);
    CHECK(decode(f, wire, dq_peer) == x.size());
    CHECK(std::memcmp(dq_own.data(), dq_peer.data(), x.size() * 4) == 0);
    double max_rel = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      max_rel =
          std::max(max_rel, std::fabs(static_cast<double>(dq_own[i]) - x[i]) / std::fabs(x[i]));
    }
    const double ulp =
        f == WireFormat::kFp32 ? 0 : (f == WireFormat::kBf16 ? 1.0 / 128 : 1.0 / 1024);
    if (f != WireFormat::kFp16) CHECK(max_rel <= ulp / 2 * 1.0000001);  // half an ulp
    x[77777] = std::numeric_limits<float>::quiet_NaN();
    encode(f, x, wire);
    CHECK(decode(f, wire, dq_peer) == 77777);
    x[77777] = 0.5f;
    x[5] = f == WireFormat::kFp16 ? 70000.0f : std::numeric_limits<float>::infinity();
    encode(f, x, wire);
    CHECK(decode(f, wire, dq_peer) == 5);
    x[5] = 0.25f;
  }
}

TEST_CASE("wire-form validation and the fused delta match decode + apply element for element") {
  std::mt19937 rng(11);
  std::normal_distribution<float> n(0, 0.1f);
  const size_t count = 3 * 4096 + 37;  // whole blocks and a tail
  std::vector<float> a(count), b(count), x0(count);
  for (size_t i = 0; i < count; ++i) {
    a[i] = n(rng);
    b[i] = n(rng);
    x0[i] = n(rng);
  }
  for (WireFormat f : {WireFormat::kFp32, WireFormat::kBf16, WireFormat::kFp16}) {
    CAPTURE(averaging::wire_format_name(f));
    std::vector<uint8_t> wa(wire_bytes(f, count)), wb(wire_bytes(f, count));
    std::vector<float> da(count), db(count);
    encode(f, a, wa);
    encode(f, b, wb);
    REQUIRE(decode(f, wa, da) == count);
    REQUIRE(decode(f, wb, db) == count);
    CHECK(first_non_finite_wire(f, wa) == count);
    const float scale = 0.375f;
    std::vector<float> expect = x0, x = x0;
    double sq = 0;
    for (size_t i = 0; i < count; ++i) {
      expect[i] += scale * (da[i] - db[i]);
      sq += static_cast<double>(da[i] - db[i]) * (da[i] - db[i]);
    }
    const double got = apply_wire_delta(f, scale, wa, wb, x);
    CHECK(std::memcmp(x.data(), expect.data(), count * 4) == 0);  // the same update, bit for bit
    CHECK(got == doctest::Approx(sq).epsilon(1e-5));
    CHECK(squared_distance(da, db) == doctest::Approx(sq).epsilon(1e-5));
    // The antisymmetric partner update conserves w_a x_a + w_b x_b exactly as before.
    std::vector<float> y = x0;
    (void)apply_wire_delta(f, 1 - scale, wb, wa, y);
    for (size_t i = 0; i < count; i += 997) {
      CHECK(y[i] == x0[i] + (1 - scale) * (db[i] - da[i]));
    }
    // Non-finite values are found in wire form, at the first bad index.
    for (size_t bad : {size_t{0}, size_t{4096 + 3}, count - 1}) {
      std::vector<float> c = a;
      c[bad] = std::numeric_limits<float>::quiet_NaN();
      if (bad + 1 < count) c[bad + 1] = -std::numeric_limits<float>::infinity();
      std::vector<uint8_t> wc(wire_bytes(f, count));
      encode(f, c, wc);
      CHECK(first_non_finite_wire(f, wc) == bad);
    }
    if (f == WireFormat::kFp16) {
      std::vector<float> c = a;
      c[100] = 70000.0f;  // overflows fp16 to infinity
      encode(f, c, wa);
      CHECK(first_non_finite_wire(f, wa) == 100);
    }
  }
}

TEST_CASE("protocol bodies round-trip and every field is validated") {
  Offer o{12345, 77, 2.5, WireFormat::kBf16, 4810, fingerprint_hex(0xabcdef0123456789ull)};
  auto p = parse_offer(encode(o));
  REQUIRE(p.is_ok());
  CHECK(p->xid == 12345);
  CHECK(p->step == 77);
  CHECK(p->weight == 2.5);
  CHECK(p->codec.format == WireFormat::kBf16);
  CHECK(p->count == 4810);
  CHECK(p->fingerprint == "abcdef0123456789");
  auto info = parse_state_info(encode(StateInfo{9, 100, 90, 10, 20, "00"}));
  REQUIRE(info.is_ok());
  CHECK(info->optimizer_steps == 90);
  CHECK(parse_xid(encode_xid(42)).value() == 42);
  CHECK(parse_refuse(encode(Refuse{3, "why"}))->reason == "why");

  const char* bad[] = {
      R"({"xid":1,"step":0,"weight":0,"format":"fp32","count":1,"fingerprint":"a"})",
      R"({"xid":1,"step":0,"weight":-1,"format":"fp32","count":1,"fingerprint":"a"})",
      R"({"xid":1,"step":0,"weight":1,"format":"int8","count":1,"fingerprint":"a"})",
      R"({"xid":-1,"step":0,"weight":1,"format":"fp32","count":1,"fingerprint":"a"})",
      R"({"xid":9007199254740993,"step":0,"weight":1,"format":"fp32","count":1,"fingerprint":"a"})",
      R"({"step":0,"weight":1,"format":"fp32","count":1,"fingerprint":"a"})",
      R"({"xid":"1","step":0,"weight":1,"format":"fp32","count":1,"fingerprint":"a"})",
      R"([1,2,3])",
      R"(not json)",
  };
  for (const char* b : bad) {
    auto r = parse_offer(bytes(b));
    CHECK_FALSE(r.is_ok());
    if (!r.is_ok()) CHECK(r.status().code() == core::Code::kProtocol);
  }
  CHECK(parse_offer(bytes(bad[0])).status().message().find("weight") != std::string::npos);

  // REFUSE carries a numeric code; the reason text is for people.
  auto rf = parse_refuse(encode(Refuse{3, "model mismatch: x", RefuseCode::kModelMismatch}));
  REQUIRE(rf.is_ok());
  CHECK(rf->code == RefuseCode::kModelMismatch);
  CHECK(rf->reason == "model mismatch: x");
  const auto body = encode(Refuse{3, "t", RefuseCode::kTimeout});
  CHECK(std::string(body.begin(), body.end()).find("\"code\":4") != std::string::npos);
  // A peer from before the code field sends none; a newer peer may send a
  // code this one does not know: both read as unspecified, never as a
  // model mismatch.
  CHECK(parse_refuse(bytes(R"({"xid":3,"reason":"model mismatch: old peer"})"))->code ==
        RefuseCode::kUnspecified);
  CHECK(parse_refuse(bytes(R"({"xid":3,"code":999,"reason":"r"})"))->code ==
        RefuseCode::kUnspecified);
  for (const char* b :
       {R"({"xid":3,"code":-1,"reason":"r"})", R"({"xid":3,"code":"1","reason":"r"})",
        R"({"xid":3,"code":65536,"reason":"r"})"}) {
    auto r = parse_refuse(bytes(b));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("'code'") != std::string::npos);
  }
  CHECK(std::string(refuse_code_name(RefuseCode::kBadSnapshot)) == "bad_snapshot");
  CHECK(std::string(refuse_code_name(RefuseCode::kModeMismatch)) == "mode_mismatch");
  CHECK(parse_refuse(bytes(R"({"xid":3,"code":6,"reason":"r"})"))->code ==
        RefuseCode::kModeMismatch);

  // gossip.mode: params frames carry no mode (an older peer's bytes); outer
  // ones carry it and H; a mode this peer does not know is refused.
  const auto params_body = encode(o);
  CHECK(std::string(params_body.begin(), params_body.end()).find("mode") == std::string::npos);
  o.mode = GossipMode::kOuter;
  o.outer_steps = 400;
  p = parse_offer(encode(o));
  REQUIRE(p.is_ok());
  CHECK(p->mode == GossipMode::kOuter);
  CHECK(p->outer_steps == 400);
  auto bad_mode = parse_offer(bytes(
      R"({"xid":1,"step":0,"weight":1,"format":"fp32","count":1,"fingerprint":"00","mode":"x"})"));
  REQUIRE_FALSE(bad_mode.is_ok());
  CHECK(bad_mode.status().message().find("'mode'") != std::string::npos);
  auto req = parse_state_request(encode(StateRequest{4, "00", 10, 20, GossipMode::kOuter, 20}));
  REQUIRE(req.is_ok());
  CHECK(req->mode == GossipMode::kOuter);
  CHECK(req->outer_count == 20);
  auto outer_info = parse_state_info(encode(StateInfo{9, 100, 90, 10, 20, "00", 20}));
  REQUIRE(outer_info.is_ok());
  CHECK(outer_info->outer_count == 20);

  auto h = blob_header(kSnapshotBlob, 0x0102030405060708ull);
  auto t = parse_blob_header(h);
  REQUIRE(t.is_ok());
  CHECK(t->type == kSnapshotBlob);
  CHECK(t->xid == 0x0102030405060708ull);
  CHECK_FALSE(parse_blob_header(std::span<const uint8_t>(h.data(), 5)).is_ok());
}
