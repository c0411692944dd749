// Wire-format conversions: branch-free bit manipulation (selects, not jumps)
// so that GCC vectorises every loop at -O3. The fp16 routines follow
// F. Giesen's float_to_half_fast3_rtne / half_to_float. Every loop over a
// whole blob is one function in the kernels section, built for baseline
// x86-64 and for AVX2 (GOSSIP_VECTOR_CLONES); the public functions below it
// pick the kernel for the format and handle the rare error paths. (The fp16
// kernels are the exception, see encode_fp16.)
#include "gossip/averaging/wire_format.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <iterator>
#include <string>

#include "gossip/core/finite.hpp"
#include "gossip/core/vector_clones.hpp"

namespace gossip::averaging {

namespace {

// In WireFormat order.
constexpr const char* kWireNames[] = {"fp32", "bf16", "fp16", "int8", "randk"};

}  // namespace

core::Result<WireFormat> parse_wire_format(const std::string& name) {
  std::string list;
  for (size_t i = 0; i < std::size(kWireNames); ++i) {
    if (name == kWireNames[i]) return static_cast<WireFormat>(i);
    list += (i > 0 ? ", " : "") + std::string(kWireNames[i]);
  }
  return core::invalid_argument("unknown wire format \"" + name + "\" (expected " + list + ")");
}

const char* wire_format_name(WireFormat format) {
  const auto i = static_cast<size_t>(format);
  return i < std::size(kWireNames) ? kWireNames[i] : "?";
}

static_assert(std::endian::native == std::endian::little,
              "wire formats are little-endian; a big-endian port must swap bytes");

namespace {

inline uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}
inline float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}

inline uint16_t bf16_of(uint32_t u) {
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  return static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : rounded);  // keep NaN quiet
}

inline uint16_t fp16_of(uint32_t x) {
  const uint32_t sign = x & 0x80000000u;
  const uint32_t f = x ^ sign;
  const uint32_t o_inf = f > 0x7f800000u ? 0x7e00u : 0x7c00u;            // NaN stays NaN
  constexpr uint32_t kDenormMagic = ((127 - 15) + (23 - 10) + 1) << 23;  // 0.5f
  const uint32_t o_den = bits(from_bits(f) + from_bits(kDenormMagic)) - kDenormMagic;
  const uint32_t mant_odd = (f >> 13) & 1u;
  const uint32_t o_norm = (f + (static_cast<uint32_t>(15 - 127) << 23) + 0xfffu + mant_odd) >> 13;
  const uint32_t o = f >= (143u << 23) ? o_inf : (f < (113u << 23) ? o_den : o_norm);
  return static_cast<uint16_t>(o | (sign >> 16));
}

inline uint32_t fp16_bits_to_float_bits(uint32_t h) {
  constexpr uint32_t kShiftedExp = 0x7c00u << 13;
  uint32_t o = (h & 0x7fffu) << 13;
  const uint32_t exp = o & kShiftedExp;
  o += (127u - 15u) << 23;
  const uint32_t o_infnan = o + ((128u - 16u) << 23);
  const uint32_t o_den = bits(from_bits(o + (1u << 23)) - from_bits(113u << 23));
  o = exp == kShiftedExp ? o_infnan : (exp == 0 ? o_den : o);
  return o | ((h & 0x8000u) << 16);
}

inline uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void store16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

}  // namespace

size_t wire_element_bytes(WireFormat format) {
  assert(format == WireFormat::kFp32 || format == WireFormat::kBf16 || format == WireFormat::kFp16);
  return format == WireFormat::kFp32 ? 4 : 2;
}

uint16_t float_to_bf16(float x) {
  return bf16_of(bits(x));
}
float bf16_to_float(uint16_t h) {
  return from_bits(static_cast<uint32_t>(h) << 16);
}
uint16_t float_to_fp16(float x) {
  return fp16_of(bits(x));
}
float fp16_to_float(uint16_t h) {
  return from_bits(fp16_bits_to_float_bits(h));
}

namespace {

// Element i of a wire array, dequantized; one type per format so that the
// fused loops below are instantiated (and vectorised) per format.
struct DqFp32 {
  static float at(const uint8_t* p, size_t i) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  }
};
struct DqBf16 {
  static float at(const uint8_t* p, size_t i) {
    return from_bits(static_cast<uint32_t>(load16(p + 2 * i)) << 16);
  }
};
struct DqFp16 {
  static float at(const uint8_t* p, size_t i) {
    return from_bits(fp16_bits_to_float_bits(load16(p + 2 * i)));
  }
};

// Float partial sums in kLanes independent accumulators (a fixed-width inner
// loop the vectoriser turns into SIMD adds: a plain float reduction would
// stay scalar without -ffast-math), flushed to double every kBlock elements.
constexpr size_t kLanes = 16;
constexpr size_t kBlock = 4096;

// Inlined into each kernel below, so it is compiled for that kernel's ISA.
template <class Dq, bool kApply>
[[gnu::always_inline]] inline double delta_pass(float scale, const uint8_t* __restrict a,
                                                const uint8_t* __restrict b, float* __restrict x,
                                                size_t n) {
  double sum = 0;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    float acc[kLanes] = {};
    for (size_t k = i; k < i + kBlock; k += kLanes) {
      for (size_t j = 0; j < kLanes; ++j) {
        const float d = Dq::at(a, k + j) - Dq::at(b, k + j);
        if constexpr (kApply) x[k + j] += scale * d;
        acc[j] += d * d;
      }
    }
    float part = 0;
    for (float v : acc) part += v;
    sum += part;
  }
  float part = 0;
  for (; i < n; ++i) {
    const float d = Dq::at(a, i) - Dq::at(b, i);
    if constexpr (kApply) x[i] += scale * d;
    part += d * d;
  }
  return sum + part;
}

// --- kernels: one pass over a blob each ------------------------------------

GOSSIP_VECTOR_CLONES void encode_bf16(const float* __restrict src, uint8_t* __restrict dst,
                                      float* __restrict dq, size_t n) {
  if (dq != nullptr) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = bf16_of(bits(src[i]));
      store16(dst + 2 * i, h);
      dq[i] = from_bits(static_cast<uint32_t>(h) << 16);
    }
  } else {
    for (size_t i = 0; i < n; ++i) store16(dst + 2 * i, bf16_of(bits(src[i])));
  }
}

// fp16 kernels stay baseline-only: vectorised for AVX2, GCC computes the
// subnormal branch of every element in float arithmetic, and the subnormal
// results make the AVX2 build 1.6-2x slower than the scalar one.
void encode_fp16(const float* __restrict src, uint8_t* __restrict dst, float* __restrict dq,
                 size_t n) {
  if (dq != nullptr) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = fp16_of(bits(src[i]));
      store16(dst + 2 * i, h);
      dq[i] = from_bits(fp16_bits_to_float_bits(h));
    }
  } else {
    for (size_t i = 0; i < n; ++i) store16(dst + 2 * i, fp16_of(bits(src[i])));
  }
}

// Nonzero when any of the n 32-bit floats at p is infinite or NaN.
GOSSIP_VECTOR_CLONES uint32_t any_non_finite32(const uint8_t* __restrict p, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, p + 4 * i, 4);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  return bad;
}

// Nonzero when any of the n 16-bit values at p has all exponent bits set.
GOSSIP_VECTOR_CLONES uint32_t any_non_finite16(const uint8_t* __restrict p, size_t n,
                                               uint32_t exp_mask) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i)
    bad |= static_cast<uint32_t>((load16(p + 2 * i) & exp_mask) == exp_mask);
  return bad;
}

// Dequantize n values; nonzero when any was infinite or NaN.
GOSSIP_VECTOR_CLONES uint32_t decode_bf16(const uint8_t* __restrict src, float* __restrict dst,
                                          size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t h = load16(src + 2 * i);
    bad |= static_cast<uint32_t>((h & 0x7f80u) == 0x7f80u);
    dst[i] = from_bits(h << 16);
  }
  return bad;
}

uint32_t decode_fp16(const uint8_t* __restrict src, float* __restrict dst, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t h = load16(src + 2 * i);
    bad |= static_cast<uint32_t>((h & 0x7c00u) == 0x7c00u);
    dst[i] = from_bits(fp16_bits_to_float_bits(h));
  }
  return bad;
}

GOSSIP_VECTOR_CLONES double apply_fp32(float scale, const uint8_t* a, const uint8_t* b, float* x,
                                       size_t n) {
  return delta_pass<DqFp32, true>(scale, a, b, x, n);
}
GOSSIP_VECTOR_CLONES double apply_bf16(float scale, const uint8_t* a, const uint8_t* b, float* x,
                                       size_t n) {
  return delta_pass<DqBf16, true>(scale, a, b, x, n);
}
double apply_fp16(float scale, const uint8_t* a, const uint8_t* b, float* x, size_t n) {
  return delta_pass<DqFp16, true>(scale, a, b, x, n);
}
GOSSIP_VECTOR_CLONES double distance_fp32(const uint8_t* a, const uint8_t* b, size_t n) {
  return delta_pass<DqFp32, false>(0.0f, a, b, nullptr, n);
}

// --- rare paths --------------------------------------------------------------

uint32_t exp_mask_of(WireFormat format) {
  return format == WireFormat::kBf16 ? 0x7f80u : 0x7c00u;
}

// Index of the first non-finite element (n if none): only called once a
// kernel has said there is one.
size_t find_non_finite(WireFormat format, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (format == WireFormat::kFp32) {
      uint32_t u;
      std::memcpy(&u, p + 4 * i, 4);
      if ((u & 0x7f800000u) == 0x7f800000u) return i;
    } else if ((load16(p + 2 * i) & exp_mask_of(format)) == exp_mask_of(format)) {
      return i;
    }
  }
  return n;
}

}  // namespace

void encode(WireFormat format, std::span<const float> in, std::span<uint8_t> wire,
            std::span<float> dequantized) {
  assert(wire.size() == wire_bytes(format, in.size()));
  assert(dequantized.empty() || dequantized.size() == in.size());
  const size_t n = in.size();
  const float* src = in.data();
  uint8_t* dst = wire.data();
  float* dq = dequantized.empty() ? nullptr : dequantized.data();
  switch (format) {
    case WireFormat::kFp32:
      if (static_cast<const void*>(dst) != static_cast<const void*>(src))
        std::memcpy(dst, src, n * 4);
      if (dq != nullptr && dq != src) std::memcpy(dq, src, n * 4);
      return;
    case WireFormat::kBf16:
      encode_bf16(src, dst, dq, n);
      return;
    case WireFormat::kFp16:
      encode_fp16(src, dst, dq, n);
      return;
    case WireFormat::kInt8:
    case WireFormat::kRandK:
      assert(false && "block codecs encode through codec.hpp");
      return;
  }
}

double squared_distance(std::span<const float> a, std::span<const float> b) {
  assert(a.size() == b.size());
  return distance_fp32(reinterpret_cast<const uint8_t*>(a.data()),
                       reinterpret_cast<const uint8_t*>(b.data()), a.size());
}

double apply_wire_delta(WireFormat format, float scale, std::span<const uint8_t> other,
                        std::span<const uint8_t> own, std::span<float> x) {
  assert(other.size() == wire_bytes(format, x.size()) && own.size() == other.size());
  switch (format) {
    case WireFormat::kFp32:
      return apply_fp32(scale, other.data(), own.data(), x.data(), x.size());
    case WireFormat::kBf16:
      return apply_bf16(scale, other.data(), own.data(), x.data(), x.size());
    case WireFormat::kFp16:
      return apply_fp16(scale, other.data(), own.data(), x.data(), x.size());
    case WireFormat::kInt8:
    case WireFormat::kRandK:
      assert(false && "block codecs apply through codec.hpp");
      break;
  }
  return 0;
}

size_t first_non_finite_wire(WireFormat format, std::span<const uint8_t> wire) {
  const size_t eb = wire_element_bytes(format);
  assert(wire.size() % eb == 0);
  const size_t n = wire.size() / eb;
  const uint32_t bad = format == WireFormat::kFp32
                           ? any_non_finite32(wire.data(), n)
                           : any_non_finite16(wire.data(), n, exp_mask_of(format));
  return bad == 0 ? n : find_non_finite(format, wire.data(), n);
}

size_t decode(WireFormat format, std::span<const uint8_t> wire, std::span<float> out) {
  assert(wire.size() == wire_bytes(format, out.size()));
  const size_t n = out.size();
  const uint8_t* src = wire.data();
  float* dst = out.data();
  uint32_t bad = 0;
  switch (format) {
    case WireFormat::kFp32:
      if (static_cast<const void*>(dst) != static_cast<const void*>(src))
        std::memcpy(dst, src, n * 4);
      return core::first_non_finite(out);
    case WireFormat::kBf16:
      bad = decode_bf16(src, dst, n);
      break;
    case WireFormat::kFp16:
      bad = decode_fp16(src, dst, n);
      break;
    case WireFormat::kInt8:
    case WireFormat::kRandK:
      assert(false && "block codecs decode through codec.hpp");
      return n;
  }
  return bad == 0 ? n : find_non_finite(format, src, n);
}

}  // namespace gossip::averaging
