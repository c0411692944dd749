// Teacher-network regression data. Streams: the teacher, the train inputs
// and the test inputs each draw from their own derived seed, so changing the
// test size leaves the training set unchanged.
#include "gossip/data/synthetic.hpp"

#include <algorithm>
#include <cmath>

#include "gossip/data/rng.hpp"

namespace gossip::data {
namespace {

struct Teacher {
  int inputs = 0;
  int hidden = 0;
  bool relu = false;
  std::vector<double> w1;  // hidden x inputs
  std::vector<double> b1;  // hidden
  std::vector<double> w2;  // hidden
  double b2 = 0.0;

  double operator()(const float* x) const {
    double y = b2;
    for (int h = 0; h < hidden; ++h) {
      double a = b1[static_cast<size_t>(h)];
      const double* w = w1.data() + static_cast<size_t>(h) * static_cast<size_t>(inputs);
      for (int i = 0; i < inputs; ++i) a += w[i] * x[i];
      a = relu ? std::max(0.0, a) : std::tanh(a);
      y += w2[static_cast<size_t>(h)] * a;
    }
    return y;
  }
};

core::Result<Dataset> sample(const Teacher& t, int64_t n, double noise_std, uint64_t seed,
                             const std::string& name) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n) * static_cast<size_t>(t.inputs));
  std::vector<float> y(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    float* row = x.data() + static_cast<size_t>(r) * static_cast<size_t>(t.inputs);
    for (int i = 0; i < t.inputs; ++i) row[i] = static_cast<float>(rng.normal());
    y[static_cast<size_t>(r)] = static_cast<float>(t(row) + noise_std * rng.normal());
  }
  return Dataset::regression_f32(name, n, t.inputs, std::move(x), std::move(y), 1);
}

}  // namespace

core::Result<SyntheticRegression> make_synthetic_regression(const SyntheticRegressionSpec& spec) {
  if (spec.train_samples <= 0 || spec.test_samples <= 0) {
    return core::invalid_argument(
        "synthetic_regression: train_samples and test_samples must be > 0");
  }
  if (spec.inputs <= 0 || spec.hidden <= 0) {
    return core::invalid_argument("synthetic_regression: inputs and hidden must be > 0");
  }
  if (spec.activation != "tanh" && spec.activation != "relu") {
    return core::invalid_argument("synthetic_regression: activation must be tanh or relu, got '" +
                                  spec.activation + "'");
  }
  if (!(spec.noise_std >= 0.0) || !(spec.gain > 0.0)) {
    return core::invalid_argument("synthetic_regression: noise_std must be >= 0 and gain > 0");
  }
  Teacher t;
  t.inputs = spec.inputs;
  t.hidden = spec.hidden;
  t.relu = spec.activation == "relu";
  Rng rng(derive_seed(spec.seed, 0));
  const double s1 = spec.gain / std::sqrt(static_cast<double>(spec.inputs));
  const double s2 = 1.0 / std::sqrt(static_cast<double>(spec.hidden));
  t.w1.resize(static_cast<size_t>(spec.hidden) * static_cast<size_t>(spec.inputs));
  for (auto& w : t.w1) w = s1 * rng.normal();
  t.b1.resize(static_cast<size_t>(spec.hidden));
  for (auto& b : t.b1) b = 0.5 * rng.normal();
  t.w2.resize(static_cast<size_t>(spec.hidden));
  for (auto& w : t.w2) w = s2 * rng.normal();
  t.b2 = 0.0;
  // Scale the output to mean 0, std 1 over the input distribution (estimated
  // on a probe sample), so that noise_std reads as a noise-to-signal ratio
  // and losses are comparable across seeds.
  Rng probe(derive_seed(spec.seed, 3));
  std::vector<float> x(static_cast<size_t>(spec.inputs));
  double sum = 0.0;
  double sum_sq = 0.0;
  constexpr int kProbe = 8192;
  for (int i = 0; i < kProbe; ++i) {
    for (auto& v : x) v = static_cast<float>(probe.normal());
    const double y = t(x.data());
    sum += y;
    sum_sq += y * y;
  }
  const double mean = sum / kProbe;
  const double sd = std::sqrt(std::max(1e-12, sum_sq / kProbe - mean * mean));
  for (auto& w : t.w2) w /= sd;
  t.b2 = -mean / sd;

  auto train = sample(t, spec.train_samples, spec.noise_std, derive_seed(spec.seed, 1),
                      "synthetic_regression/train");
  if (!train) return train.status();
  auto test = sample(t, spec.test_samples, spec.noise_std, derive_seed(spec.seed, 2),
                     "synthetic_regression/test");
  if (!test) return test.status();
  return SyntheticRegression{std::move(train).value(), std::move(test).value()};
}

}  // namespace gossip::data
