// Wire codecs of an exchange's snapshot: what goes on the wire, how it is
// validated, and the averaging step computed straight from two wire blobs.
//
//   fp32, bf16, fp16  every element in that format (wire_format.hpp);
//   int8              blockwise absmax: per block of `block` elements one
//                     fp32 scale s = max|x| / 127, then one int8 per element,
//                     q = floor(x / s + u) with u uniform in [0, 1): the
//                     rounding is stochastic, so E[q s] = x (unbiased);
//   randk             int8 as above, but only over a random subset of whole
//                     blocks, a `fraction` of them, chosen by a seed both
//                     sides derive from the exchange id: no indices travel.
//
// The rule that keeps the swarm's weighted mean exact holds for every codec:
// both sides apply x += scale * (dq(other) - dq(own)) from the SAME two
// decoded blobs (coordinates outside a randk subset: delta 0 on both sides).
// Rounding noise is seeded per exchange and side (rounding_seed), so runs and
// tests are reproducible. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gossip/averaging/wire_format.hpp"
#include "gossip/core/status.hpp"

namespace gossip::averaging {

// Block size of int8 and randk: 64 elements, the knee of bytes against
// error (docs/design.md, "Wire codecs": 32 costs 6% more bytes, 128 saves 3%
// for 1.2x (Gaussian) to 1.6x (heavy-tailed) the squared error). Powers of
// two in [kMinBlock, kMaxBlock].
inline constexpr uint32_t kDefaultBlock = 64;
inline constexpr uint32_t kMinBlock = 16;
inline constexpr uint32_t kMaxBlock = 65536;
// randk's default fraction of blocks per exchange.
inline constexpr double kDefaultFraction = 1.0 / 32;

// A codec and its parameters: gossip.wire (+ gossip.wire_block,
// gossip.randk.fraction), and what an OFFER carries. `block` matters for
// int8 and randk, `fraction` for randk only; operator== compares only the
// parameters that matter for `format`.
struct WireCodec {
  WireFormat format = WireFormat::kFp32;
  uint32_t block = kDefaultBlock;
  double fraction = kDefaultFraction;
  WireCodec() = default;
  WireCodec(WireFormat f) : format(f) {}  // NOLINT: a format is a codec with default parameters
  WireCodec(WireFormat f, uint32_t b, double fr) : format(f), block(b), fraction(fr) {}
  bool operator==(const WireCodec& o) const;
};

// int8 and randk: blocks of int8 values with one fp32 scale each, so the
// codec's `block` applies (and travels in the OFFER).
inline bool has_blocks(WireFormat f) {
  return f == WireFormat::kInt8 || f == WireFormat::kRandK;
}

// "fp32", "int8(block 64)", "randk(block 64, fraction 0.03125)": logs,
// errors, result files.
std::string describe(const WireCodec& codec);
// kInvalidArgument naming the bad parameter: block not a power of two in
// [kMinBlock, kMaxBlock] (int8, randk), fraction not in (0, 1] (randk).
core::Status check_codec(const WireCodec& codec);

// The shape of one exchange's blobs: the codec, the element count and, for
// randk, the blocks both sides send (ascending), drawn from `xid` alone.
// Both blobs of an exchange have the same layout.
struct WireLayout {
  WireCodec codec;
  size_t count = 0;
  std::vector<uint32_t> blocks;  // randk only
  // Bytes of one blob.
  size_t bytes() const;
  // Scales (int8, randk) and values in the blob: int8 has ceil(count/block)
  // scales and count values; randk blocks.size() scales and
  // blocks.size()*block values (a partial last block is zero-padded).
  size_t scale_count() const;
};
// Requires check_codec(codec) ok. randk draws ceil(fraction * n_blocks)
// distinct blocks (selection sampling, splitmix64 seeded from xid).
WireLayout make_layout(const WireCodec& codec, size_t count, uint64_t xid);

// The seed of one side's stochastic rounding in one exchange.
uint64_t rounding_seed(uint64_t xid, bool initiator);

// Encodes `in` (layout.count floats) into `wire` (layout.bytes()). When
// `dequantized` is non-empty (layout.count floats) it receives the values
// the partner will decode (randk: 0 outside the sent blocks).
void encode(const WireLayout& layout, std::span<const float> in, std::span<uint8_t> wire,
            uint64_t seed, std::span<float> dequantized = {});

// Validation of a blob from the network, before any use: its length, every
// value finite, scales finite, >= 0 and small enough that 127*s is finite,
// int8 values in [-127, 127], padding zero. kCorrupt naming what and where.
core::Status validate(const WireLayout& layout, std::span<const uint8_t> wire);

// Decodes a validated blob into `out` (layout.count floats; randk: 0
// outside the sent blocks).
void decode(const WireLayout& layout, std::span<const uint8_t> wire, std::span<float> out);

// The averaging step from two validated blobs of one layout, in one pass:
//     x += scale * (dq(other) - dq(own)),
// returning ||dq(other) - dq(own)||^2. Same float expression per element as
// Backend::apply_delta on the decoded arrays.
double apply_wire_delta(const WireLayout& layout, float scale, std::span<const uint8_t> other,
                        std::span<const uint8_t> own, std::span<float> x);

}  // namespace gossip::averaging
