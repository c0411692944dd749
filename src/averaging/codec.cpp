// Wire codecs (codec.hpp): int8 blockwise absmax with stochastic rounding,
// randk (int8 over a seeded subset of blocks), and dispatch to the element
// formats of wire_format.cpp. Blob layout of int8 and randk: the fp32 scales
// (little-endian), then the int8 values, block after block.
//
// The hot loops (quantize, apply) run per block with the block's scales
// hoisted, so each inner loop is int8 -> float converts, multiplies and adds
// that GCC vectorises; like wire_format.cpp they are built for baseline
// x86-64 and AVX2 (GOSSIP_VECTOR_CLONES; the encode also for AVX-512), and
// -ffp-contract=off keeps the clones bit-identical. Rounding noise comes from a counter-based hash
// of (seed, element index): no RNG state, so it vectorises too.
#include "gossip/averaging/codec.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "gossip/core/vector_clones.hpp"

namespace gossip::averaging {

namespace {

// Largest scale whose 127 * s is finite: a larger one would decode to inf.
constexpr float kMaxScale = FLT_MAX / 127.0f;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from (seed, i): murmur3's finaliser over a Weyl step,
// 24 bits (exact in a float).
inline float uniform01(uint32_t seed, uint32_t i) {
  uint32_t h = i * 0x9e3779b1u + seed;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return static_cast<float>(h >> 8) * 0x1p-24f;
}

inline uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}

// One block: scale s = max|x| / 127, q = floor(x * 127/max|x| + u) clamped
// to [-127, 127]. floor is int(v + 128) - 128 (v + 128 > 0, so truncation
// is floor); the clamp only catches x * inv rounding a hair above 127.
[[gnu::always_inline]] inline void quantize_block(const float* __restrict x, size_t n,
                                                  uint32_t seed, uint32_t base, float* scale_out,
                                                  int8_t* __restrict q, float* __restrict dq) {
  uint32_t m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, bits(x[i]) & 0x7fffffffu);
  const float amax = std::bit_cast<float>(m);
  const float s = amax / 127.0f;
  float inv = 127.0f / amax;
  if (!(inv <= FLT_MAX)) inv = 0;  // all zero (inf) or subnormal max (overflow): send zeros
  *scale_out = s;
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i] * inv + uniform01(seed, base + static_cast<uint32_t>(i));
    const int32_t t = std::clamp(static_cast<int32_t>(v + 128.0f) - 128, -127, 127);
    q[i] = static_cast<int8_t>(t);
    if (dq != nullptr) dq[i] = static_cast<float>(t) * s;
  }
}

// --- kernels: one pass over a blob each ------------------------------------

// Quantizes `nblocks` blocks of x: block k covers x[b*block ...) with
// b = idx ? idx[k] : k, the last one possibly short (count); its scale goes
// to scales[k], its values to q + k*block (a short block's tail: zeros).
GOSSIP_VECTOR_CLONES_V4 void quantize_blocks(const float* __restrict x, size_t count, size_t block,
                                             const uint32_t* idx, size_t nblocks, uint32_t seed,
                                             float* __restrict scales, int8_t* __restrict q,
                                             float* __restrict dq) {
  for (size_t k = 0; k < nblocks; ++k) {
    const size_t b = idx != nullptr ? idx[k] : k;
    const size_t off = b * block;
    const size_t n = std::min(block, count - off);
    quantize_block(x + off, n, seed, static_cast<uint32_t>(off), scales + k, q + k * block,
                   dq != nullptr ? dq + off : nullptr);
    if (idx != nullptr && n < block) std::memset(q + k * block + n, 0, block - n);
  }
}

constexpr size_t kLanes = 16;  // kMinBlock is a multiple: full blocks need no tail loop

// x += scale * (qa*sa - qb*sb) over the sent blocks; returns sum of squares
// of the deltas (float lanes per block, double across blocks).
template <bool kApply>
[[gnu::always_inline]] inline double delta_blocks(float scale, const float* sa, const int8_t* qa,
                                                  const float* sb, const int8_t* qb,
                                                  float* __restrict x, size_t count, size_t block,
                                                  const uint32_t* idx, size_t nblocks) {
  double sum = 0;
  for (size_t k = 0; k < nblocks; ++k) {
    const size_t b = idx != nullptr ? idx[k] : k;
    const size_t off = b * block;
    const size_t n = std::min(block, count - off);
    const float a = sa[k], c = sb[k];
    const int8_t* pa = qa + k * block;
    const int8_t* pb = qb + k * block;
    float* px = x + off;
    if (n == block) {
      float acc[kLanes] = {};
      for (size_t i = 0; i < block; i += kLanes) {
        for (size_t j = 0; j < kLanes; ++j) {
          const float d = static_cast<float>(pa[i + j]) * a - static_cast<float>(pb[i + j]) * c;
          if constexpr (kApply) px[i + j] += scale * d;
          acc[j] += d * d;
        }
      }
      float part = 0;
      for (float v : acc) part += v;
      sum += part;
    } else {
      float part = 0;
      for (size_t i = 0; i < n; ++i) {
        const float d = static_cast<float>(pa[i]) * a - static_cast<float>(pb[i]) * c;
        if constexpr (kApply) px[i] += scale * d;
        part += d * d;
      }
      sum += part;
    }
  }
  return sum;
}

GOSSIP_VECTOR_CLONES double apply_blocks(float scale, const float* sa, const int8_t* qa,
                                         const float* sb, const int8_t* qb, float* x, size_t count,
                                         size_t block, const uint32_t* idx, size_t nblocks) {
  return delta_blocks<true>(scale, sa, qa, sb, qb, x, count, block, idx, nblocks);
}

// Nonzero when any byte is -128 (0x80): the encoder never writes it.
GOSSIP_VECTOR_CLONES uint32_t any_int8_min(const uint8_t* __restrict p, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= static_cast<uint32_t>(p[i] == 0x80u);
  return bad;
}

// --- layout helpers ----------------------------------------------------------

size_t block_count(size_t count, size_t block) {
  return (count + block - 1) / block;
}

const float* scales_of(std::span<const uint8_t> wire) {
  return reinterpret_cast<const float*>(wire.data());
}

}  // namespace

bool WireCodec::operator==(const WireCodec& o) const {
  if (format != o.format) return false;
  if (has_blocks(format) && block != o.block) return false;
  return format != WireFormat::kRandK || fraction == o.fraction;
}

std::string describe(const WireCodec& codec) {
  std::string s = wire_format_name(codec.format);
  if (codec.format == WireFormat::kInt8) {
    s += "(block " + std::to_string(codec.block) + ")";
  } else if (codec.format == WireFormat::kRandK) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "(block %u, fraction %.6g)", codec.block, codec.fraction);
    s += buf;
  }
  return s;
}

core::Status check_codec(const WireCodec& codec) {
  if (has_blocks(codec.format) &&
      (!std::has_single_bit(codec.block) || codec.block < kMinBlock || codec.block > kMaxBlock)) {
    return core::invalid_argument("wire block " + std::to_string(codec.block) +
                                  " must be a power of two in [" + std::to_string(kMinBlock) +
                                  ", " + std::to_string(kMaxBlock) + "]");
  }
  if (codec.format == WireFormat::kRandK && !(codec.fraction > 0 && codec.fraction <= 1)) {
    return core::invalid_argument("randk fraction " + std::to_string(codec.fraction) +
                                  " must be in (0, 1]");
  }
  return core::Status::ok();
}

size_t WireLayout::scale_count() const {
  if (codec.format == WireFormat::kInt8) return block_count(count, codec.block);
  return codec.format == WireFormat::kRandK ? blocks.size() : 0;
}

size_t WireLayout::bytes() const {
  switch (codec.format) {
    case WireFormat::kInt8:
      return 4 * scale_count() + count;
    case WireFormat::kRandK:
      return blocks.size() * (4 + size_t{codec.block});
    default:
      return wire_bytes(codec.format, count);
  }
}

WireLayout make_layout(const WireCodec& codec, size_t count, uint64_t xid) {
  assert(check_codec(codec).is_ok());
  WireLayout l{codec, count, {}};
  if (codec.format != WireFormat::kRandK) return l;
  // Selection sampling (Knuth's algorithm S): exactly m of nb blocks, each
  // equally likely, in ascending order; pure integer arithmetic, so both
  // sides draw the same set.
  const uint64_t nb = block_count(count, codec.block);
  const auto want = static_cast<uint64_t>(std::ceil(codec.fraction * static_cast<double>(nb)));
  const uint64_t m = std::min<uint64_t>(nb, std::max<uint64_t>(want, nb > 0 ? 1 : 0));
  l.blocks.reserve(m);
  uint64_t state = xid ^ 0x72616e646b2d7631ull;  // "randk-v1"
  for (uint64_t i = 0; i < nb && l.blocks.size() < m; ++i) {
    if (splitmix64(state) % (nb - i) < m - l.blocks.size()) {
      l.blocks.push_back(static_cast<uint32_t>(i));
    }
  }
  return l;
}

uint64_t rounding_seed(uint64_t xid, bool initiator) {
  uint64_t state = xid * 2 + (initiator ? 1 : 0);
  return splitmix64(state);
}

void encode(const WireLayout& layout, std::span<const float> in, std::span<uint8_t> wire,
            uint64_t seed, std::span<float> dequantized) {
  assert(in.size() == layout.count && wire.size() == layout.bytes());
  assert(dequantized.empty() || dequantized.size() == layout.count);
  const WireFormat f = layout.codec.format;
  if (!has_blocks(f)) {
    encode(f, in, wire, dequantized);
    return;
  }
  const size_t ns = layout.scale_count();
  const uint32_t* idx = f == WireFormat::kRandK ? layout.blocks.data() : nullptr;
  float* dq = dequantized.empty() ? nullptr : dequantized.data();
  if (dq != nullptr && f == WireFormat::kRandK)
    std::fill(dequantized.begin(), dequantized.end(), 0);
  auto* scales = reinterpret_cast<float*>(wire.data());
  auto* q = reinterpret_cast<int8_t*>(wire.data() + 4 * ns);
  quantize_blocks(in.data(), layout.count, layout.codec.block, idx, ns,
                  static_cast<uint32_t>(seed ^ (seed >> 32)), scales, q, dq);
}

core::Status validate(const WireLayout& layout, std::span<const uint8_t> wire) {
  const std::string name = wire_format_name(layout.codec.format);
  if (wire.size() != layout.bytes()) {
    return core::corrupt(name + " snapshot of " + std::to_string(wire.size()) +
                         " bytes (expected " + std::to_string(layout.bytes()) + " for " +
                         std::to_string(layout.count) + " elements, " + describe(layout.codec) +
                         ")");
  }
  const WireFormat f = layout.codec.format;
  if (!has_blocks(f)) {
    const size_t bad = first_non_finite_wire(f, wire);
    if (bad < layout.count) {
      return core::corrupt("non-finite value at element " + std::to_string(bad) + " of " +
                           std::to_string(layout.count));
    }
    return core::Status::ok();
  }
  const size_t ns = layout.scale_count();
  for (size_t k = 0; k < ns; ++k) {
    float s;
    std::memcpy(&s, wire.data() + 4 * k, 4);
    if (!(s >= 0 && s <= kMaxScale)) {
      return core::corrupt(name + " scale " + std::to_string(k) + " of " + std::to_string(ns) +
                           " is " + std::to_string(s) +
                           " (must be finite, >= 0 and <= " + std::to_string(kMaxScale) + ")");
    }
  }
  const uint8_t* q = wire.data() + 4 * ns;
  const size_t nq = wire.size() - 4 * ns;
  if (any_int8_min(q, nq) != 0) {
    const size_t at = static_cast<size_t>(std::find(q, q + nq, uint8_t{0x80}) - q);
    return core::corrupt(name + " value " + std::to_string(at) + " is -128 (outside [-127, 127])");
  }
  if (f == WireFormat::kRandK && ns > 0) {
    const size_t block = layout.codec.block;
    const size_t n = layout.count - size_t{layout.blocks.back()} * block;
    if (n < block && std::any_of(q + nq - (block - n), q + nq, [](uint8_t b) { return b != 0; })) {
      return core::corrupt(name + " padding of the last block is not zero");
    }
  }
  return core::Status::ok();
}

void decode(const WireLayout& layout, std::span<const uint8_t> wire, std::span<float> out) {
  assert(out.size() == layout.count && wire.size() == layout.bytes());
  const WireFormat f = layout.codec.format;
  if (!has_blocks(f)) {
    (void)decode(f, wire, out);
    return;
  }
  if (f == WireFormat::kRandK) std::fill(out.begin(), out.end(), 0);
  const size_t ns = layout.scale_count(), block = layout.codec.block;
  const float* scales = scales_of(wire);
  const auto* q = reinterpret_cast<const int8_t*>(wire.data() + 4 * ns);
  for (size_t k = 0; k < ns; ++k) {
    const size_t off = (f == WireFormat::kRandK ? size_t{layout.blocks[k]} : k) * block;
    float s;
    std::memcpy(&s, scales + k, 4);
    const size_t n = std::min(block, layout.count - off);
    for (size_t i = 0; i < n; ++i) out[off + i] = static_cast<float>(q[k * block + i]) * s;
  }
}

double apply_wire_delta(const WireLayout& layout, float scale, std::span<const uint8_t> other,
                        std::span<const uint8_t> own, std::span<float> x) {
  assert(x.size() == layout.count && other.size() == layout.bytes() && own.size() == other.size());
  const WireFormat f = layout.codec.format;
  if (!has_blocks(f)) return apply_wire_delta(f, scale, other, own, x);
  const size_t ns = layout.scale_count();
  // The scales are 4-aligned: the buffers are float arrays (buffers.cpp).
  return apply_blocks(
      scale, scales_of(other), reinterpret_cast<const int8_t*>(other.data() + 4 * ns),
      scales_of(own), reinterpret_cast<const int8_t*>(own.data() + 4 * ns), x.data(), layout.count,
      layout.codec.block, f == WireFormat::kRandK ? layout.blocks.data() : nullptr, ns);
}

}  // namespace gossip::averaging
