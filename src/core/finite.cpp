// first_non_finite: a branch-free pass that only says whether some value is
// non-finite (GCC vectorises it; built for baseline x86-64 and AVX2), then, in
// the rare bad case, a plain scan for the index. A float is non-finite when
// all its exponent bits are set; testing the bits keeps the check exact under
// any floating-point flags.
#include "gossip/core/finite.hpp"

#include <cstdint>
#include <cstring>

#include "gossip/core/vector_clones.hpp"

namespace gossip::core {
namespace {

constexpr uint32_t kExponent = 0x7f800000u;

inline bool non_finite(const float* p) {
  uint32_t u;
  std::memcpy(&u, p, 4);
  return (u & kExponent) == kExponent;
}

// Nonzero when any of the n floats at p is non-finite.
GOSSIP_VECTOR_CLONES uint32_t any_non_finite(const float* __restrict p, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= static_cast<uint32_t>(non_finite(p + i));
  return bad;
}

}  // namespace

size_t first_non_finite(std::span<const float> values) {
  const float* p = values.data();
  const size_t n = values.size();
  if (any_non_finite(p, n) == 0) return n;
  for (size_t i = 0; i < n; ++i) {
    if (non_finite(p + i)) return i;
  }
  return n;
}

}  // namespace gossip::core
