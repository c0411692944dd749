// SecondsHistogram: a fixed-bucket histogram of durations, the shape a
// Prometheus histogram exposes (cumulative bucket counts, a sum and a count).
//
// The bounds are fixed at compile time, so a histogram is a plain value:
// copied with the counters it sits in, compared, summed, without allocation.
// They span what one averaging exchange takes, from a few milliseconds (a
// small model on loopback) to the timeout range of a large one. Not
// thread-safe: its owner guards it (the averaging engine's counter mutex).
#pragma once

#include <array>
#include <cstdint>

namespace gossip::core {

struct SecondsHistogram {
  // Upper bounds (inclusive, seconds) of the finite buckets; a last bucket,
  // +Inf, holds everything above.
  static constexpr std::array<double, 13> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
                                                     1.0,   2.5,  5.0,   10.0, 30.0, 60.0};

  // counts[i]: observations in (kBounds[i-1], kBounds[i]]; counts.back():
  // above the last bound. Not cumulative (exposition sums them).
  std::array<uint64_t, kBounds.size() + 1> counts{};
  uint64_t count = 0;
  double sum = 0.0;

  void observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    ++counts[i];
    ++count;
    sum += seconds;
  }
  bool operator==(const SecondsHistogram&) const = default;
};

}  // namespace gossip::core
