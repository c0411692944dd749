// Synthetic regression: the seed project's toy task, made reproducible.
//
// A fixed random teacher network inputs -> hidden -> 1 (tanh or relu hidden
// layer) labels Gaussian inputs; Gaussian noise is added to the targets. The
// teacher depends only on the seed, so train and test sets (and every peer
// that builds them) agree. Teacher weights are drawn N(0, gain^2 / fan_in),
// with gain chosen so that hidden units work in their nonlinear range: a
// linear fit leaves a clear share of the variance unexplained (R^2 about
// 0.75-0.87 for tanh). The teacher's output is scaled to mean 0 and std 1
// over the input distribution, so noise_std is the noise-to-signal ratio.
#pragma once

#include <cstdint>
#include <string>

#include "gossip/core/status.hpp"
#include "gossip/data/dataset.hpp"

namespace gossip::data {

struct SyntheticRegressionSpec {
  int64_t train_samples = 8192;
  int64_t test_samples = 2048;
  int inputs = 10;
  int hidden = 20;
  std::string activation = "tanh";  // "tanh" | "relu"
  double noise_std = 0.05;          // std of the additive target noise
  double gain = 2.0;                // teacher first-layer weight scale
  uint64_t seed = 1;
};

struct SyntheticRegression {
  Dataset train;
  Dataset test;
};

// Builds both sets from one teacher. invalid_argument for non-positive sizes,
// an unknown activation, or a negative noise_std.
core::Result<SyntheticRegression> make_synthetic_regression(const SyntheticRegressionSpec& spec);

}  // namespace gossip::data
