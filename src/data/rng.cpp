// Rng implementation: xoshiro256** (Blackman and Vigna), splitmix64 seeding,
// Lemire's bounded integers, Box-Muller normals and Marsaglia-Tsang gammas.
#include "gossip/data/rng.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

#include "gossip/core/hash.hpp"

namespace gossip::data {
namespace {

using core::splitmix64;

__extension__ typedef unsigned __int128 U128;  // GCC/Clang extension, quiet under -Wpedantic

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL);
  splitmix64(s);
  return splitmix64(s);
}

Rng::Rng(uint64_t seed) {
  uint64_t s = seed;
  for (auto& word : s_) word = splitmix64(s);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::uniform_int(uint64_t n) {
  assert(n > 0);
  // Lemire's nearly-divisionless method: unbiased, one multiply in the common case.
  U128 m = static_cast<U128>(next_u64()) * n;
  auto low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<U128>(next_u64()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

double Rng::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_normal_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_normal_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

double Rng::log_gamma_draw(double shape) {
  assert(shape > 0.0);
  // For shape < 1: Gamma(a) = Gamma(a + 1) * U^(1/a), taken in logs.
  double log_boost = 0.0;
  if (shape < 1.0) {
    double u = uniform();
    while (u <= 0.0) u = uniform();
    log_boost = std::log(u) / shape;
    shape += 1.0;
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform();
    if (u <= 0.0) continue;
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) {
      return std::log(d * v) + log_boost;
    }
  }
}

std::vector<double> Rng::dirichlet(double alpha, int k) {
  assert(k >= 1);
  std::vector<double> p(static_cast<size_t>(k));
  for (auto& v : p) v = log_gamma_draw(alpha);
  const double top = *std::max_element(p.begin(), p.end());
  double sum = 0.0;
  for (auto& v : p) {
    v = std::exp(v - top);
    sum += v;
  }
  for (auto& v : p) v /= sum;
  return p;
}

}  // namespace gossip::data
