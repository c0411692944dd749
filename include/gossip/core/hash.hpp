// Two small, fully specified functions behind every seeded or hashed value
// that must be the same on every platform, compiler and release: the
// splitmix64 generator and the FNV-1a 64-bit hash. Never std:: distributions
// or std::hash, whose results differ between standard libraries.
#pragma once

#include <cstdint>
#include <string_view>

namespace gossip::core {

// splitmix64 (Steele, Lea, Flood 2014): tiny, well-mixed, fully specified.
// Not thread-safe: one instance per thread.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double next_unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// FNV-1a 64-bit over bytes: stable across platforms and releases.
inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace gossip::core
