// Rng: the seeded random source behind shuffles, shards and synthetic data.
//
// Data order must be reproducible from a seed on every platform (a checkpoint
// restores the data-order position by recomputing an epoch's permutation), so
// this module does not use std::shuffle or the std:: distributions, whose
// algorithms differ between standard libraries. Rng is xoshiro256** seeded by
// splitmix64; bounded integers use Lemire's method; normals Box-Muller;
// gammas Marsaglia-Tsang. Not thread-safe: one Rng per thread.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace gossip::data {

// Mixes (seed, stream) into an independent seed, e.g. derive_seed(seed, epoch)
// for the permutation of one epoch. Pure function.
uint64_t derive_seed(uint64_t seed, uint64_t stream);

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // Uniform 64-bit value.
  uint64_t next_u64();
  // Uniform integer in [0, n); requires n > 0.
  uint64_t uniform_int(uint64_t n);
  // Uniform double in [0, 1).
  double uniform();
  // Standard normal N(0, 1).
  double normal();
  // log of a Gamma(shape, 1) draw; requires shape > 0. Works in log space so
  // that tiny shapes (Dirichlet alpha 0.01) do not underflow to zero.
  double log_gamma_draw(double shape);
  // One draw from Dirichlet(alpha, ..., alpha) over k >= 1 components; the
  // result sums to 1 (up to rounding).
  std::vector<double> dirichlet(double alpha, int k);

 private:
  uint64_t s_[4];
  double spare_normal_ = 0.0;
  bool has_spare_ = false;
};

// Fisher-Yates shuffle of `items` driven by `rng`; the same seed gives the
// same order on every platform.
template <typename T>
void shuffle(std::span<T> items, Rng& rng) {
  for (size_t i = items.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.uniform_int(i));
    std::swap(items[i - 1], items[j]);
  }
}

}  // namespace gossip::data
