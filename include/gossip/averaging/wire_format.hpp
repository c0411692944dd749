// Wire formats of parameter snapshots: fp32, bf16 and fp16, little-endian.
//
// A snapshot goes on the wire quantized; BOTH sides of an exchange then work
// only with the dequantized wire values (dq(q(s_i)) and dq(q(s_j))), so the
// pairwise delta stays exactly antisymmetric and the swarm's weighted mean is
// conserved whatever the format: quantization changes which consensus the
// swarm reaches, never its mass. Conversions round to nearest, ties to even;
// fp16 overflows (|x| > 65504) become infinities, which the receiver rejects.
//
// The loops are branch-free integer code the compiler vectorises (no F16C or
// AVX-512 BF16 required), a few GB/s per core: far above the AEAD rate, so
// conversion is never the bottleneck of an exchange. Pure functions, any
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "gossip/core/status.hpp"

namespace gossip::averaging {

// The config's gossip.wire, and the "format" of OFFER frames. kInt8 and
// kRandK are block codecs (codec.hpp); the element functions below take only
// the element formats fp32, bf16 and fp16.
enum class WireFormat { kFp32, kBf16, kFp16, kInt8, kRandK };
inline constexpr WireFormat kWireFormats[] = {
    WireFormat::kFp32, WireFormat::kBf16, WireFormat::kFp16, WireFormat::kInt8, WireFormat::kRandK};
// "fp32" | "bf16" | "fp16" | "int8" | "randk"; anything else is
// kInvalidArgument naming the names. Both read the one name table
// (wire_format.cpp).
core::Result<WireFormat> parse_wire_format(const std::string& name);
const char* wire_format_name(WireFormat format);

// Bytes per element on the wire of an element format (4, 2, 2).
size_t wire_element_bytes(WireFormat format);
// Bytes of a snapshot of `count` elements.
inline size_t wire_bytes(WireFormat format, size_t count) {
  return wire_element_bytes(format) * count;
}

// Quantizes `in` into `wire` (wire_bytes(format, in.size()) bytes). When
// `dequantized` is non-empty (in.size() floats) it also receives dq(q(in)),
// the values the peer will see. For fp32 the wire bytes are the floats.
void encode(WireFormat format, std::span<const float> in, std::span<uint8_t> wire,
            std::span<float> dequantized = {});

// Dequantizes `wire` into `out` (out.size() elements). Returns the index of
// the first non-finite value, or out.size() when every value is finite (the
// whole blob must then be rejected). For fp32, `out` may alias `wire`.
size_t decode(WireFormat format, std::span<const uint8_t> wire, std::span<float> out);

// Index of the first non-finite element of a snapshot still in wire form
// (wire.size() / wire_element_bytes(format) elements), or the element count:
// validation without dequantizing. Requires a whole number of elements.
size_t first_non_finite_wire(WireFormat format, std::span<const uint8_t> wire);

// The averaging step straight from two wire snapshots, in one pass:
//     x += scale * (dq(other) - dq(own))   element-wise,
// returning ||dq(other) - dq(own)||^2. Numerically the same update as
// Backend::apply_delta(scale, dq(other), dq(own)) (same float expression per
// element), without materialising the dequantized arrays. `other` and `own`
// must hold x.size() elements in `format`.
double apply_wire_delta(WireFormat format, float scale, std::span<const uint8_t> other,
                        std::span<const uint8_t> own, std::span<float> x);

// ||a - b||^2 (sizes must match), accumulated in float blocks and double
// overall. Any thread.
double squared_distance(std::span<const float> a, std::span<const float> b);

// Scalar conversions (round to nearest even), for tests and small uses.
uint16_t float_to_bf16(float x);
float bf16_to_float(uint16_t h);
uint16_t float_to_fp16(float x);
float fp16_to_float(uint16_t h);

}  // namespace gossip::averaging
