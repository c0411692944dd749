// Shared helpers of the gpu suite: the skip rule (exit 77, Meson's "skipped",
// when no CUDA device is present or the build has no CUDA backend), random
// problems, backend construction through make_backend, and a float-tolerance
// comparison that reports the worst element.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gossip/train/backend.hpp"

namespace gossip::train::gpu_test {

// Ends the process with 77 unless a CUDA device can be used. Called first in
// every test case, so the result does not depend on test order or filters.
inline void require_device() {
  static const bool present = cuda_device_present();
  if (!present) {
    std::fprintf(stderr, "%s\n",
                 cuda_compiled() ? "no CUDA device present: skipping the gpu suite"
                                 : "built without the CUDA backend: skipping the gpu suite");
    std::exit(77);
  }
}

// A random regression or classification problem shaped for `model`.
struct Problem {
  std::vector<float> x;
  std::vector<int32_t> labels;
  std::vector<float> targets;
  int rows = 0;
  int cols = 0;
  int outputs = 0;
  bool classification = true;

  Problem(const ModelSpec& model, int rows_, uint32_t seed)
      : rows(rows_),
        cols(model.layers.front()),
        outputs(model.layers.back()),
        classification(model.loss == LossKind::kSoftmaxCrossEntropy) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    x.resize(static_cast<size_t>(rows) * cols);
    for (float& v : x) v = n01(gen);
    if (classification) {
      std::uniform_int_distribution<int> pick(0, outputs - 1);
      labels.resize(rows);
      for (int32_t& l : labels) l = pick(gen);
    } else {
      targets.resize(static_cast<size_t>(rows) * outputs);
      for (float& t : targets) t = n01(gen);
    }
  }

  // Rows [begin, begin + n).
  data::Batch batch(int begin, int n) const {
    data::Batch b;
    b.rows = n;
    b.cols = cols;
    b.x = x.data() + static_cast<size_t>(begin) * cols;
    if (classification) {
      b.labels = labels.data() + begin;
    } else {
      b.targets = targets.data() + static_cast<size_t>(begin) * outputs;
      b.target_cols = outputs;
    }
    return b;
  }
  data::Batch all() const { return batch(0, rows); }
};

inline std::unique_ptr<Backend> make(const ModelSpec& m, const OptimizerSpec& o,
                                     const std::string& device, int max_batch = 64,
                                     bool tf32 = false) {
  BackendOptions opts;
  opts.device = device;
  opts.max_batch = max_batch;
  opts.allow_tf32 = tf32;
  auto b = make_backend(m, o, opts);
  INFO(device << ": " << b.status().to_string());
  REQUIRE(b.is_ok());
  return std::move(b).value();
}

inline std::vector<float> params_of(Backend& b) {
  std::vector<float> p(b.param_count());
  b.read_parameters(p);
  return p;
}

inline std::vector<float> state_of(Backend& b) {
  std::vector<float> s(b.optimizer_state_count());
  b.read_optimizer_state(s);
  return s;
}

// Checks |got - want| <= rtol*|want| + atol*scale element-wise, where scale is
// the largest |want| (so atol is relative to the array's magnitude).
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, double rtol,
                        double atol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  double scale = 0.0;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::fabs(w)));
  size_t worst = 0;
  double worst_excess = -1.0;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double tol = rtol * std::fabs(static_cast<double>(want[i])) + atol * scale;
    if (!(diff <= tol)) ++bad;
    if (!(diff - tol <= worst_excess)) {
      worst_excess = diff - tol;
      worst = i;
    }
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements out of tolerance; worst [" << worst
            << "] got " << (got.empty() ? 0.0f : got[worst]) << " want "
            << (want.empty() ? 0.0f : want[worst]) << " (array scale " << scale << ")");
  CHECK(bad == 0);
}

inline bool rel_close(double got, double want, double rtol) {
  return std::fabs(got - want) <= rtol * std::max(1.0, std::fabs(want));
}

}  // namespace gossip::train::gpu_test
