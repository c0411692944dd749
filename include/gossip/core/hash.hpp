// Two small, fully specified functions behind every seeded or hashed value
// that must be the same on every platform, compiler and release: the
// splitmix64 generator and the FNV-1a 64-bit hash. Never std:: distributions
// or std::hash, whose results differ between standard libraries.
#pragma once

#include <cstdint>
#include <string_view>

namespace gossip::core {

// splitmix64's increment, 2^64 / golden ratio: the k-th value a generator
// seeded with s returns (k = 1, 2, ...) mixes s + k * kSplitMix64Gamma, so a
// caller can jump straight to it.
inline constexpr uint64_t kSplitMix64Gamma = 0x9E3779B97F4A7C15ull;

// One step of splitmix64 (Steele, Lea, Flood 2014; Vigna's reference
// splitmix64.c): advances `state` by kSplitMix64Gamma and returns the mixed
// value. The only copy in the project: model initialisation, data shuffles,
// shard plans and the link filter's drops are all seeded through it, so its
// output must never change.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += kSplitMix64Gamma);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// splitmix64 as a generator: tiny, well-mixed, fully specified.
// Not thread-safe: one instance per thread.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() { return splitmix64(state_); }
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
