// Shared helpers of the gpu suite: the skip rule (require_device()), random
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

// The skip rule, called first in every test case so the result does not
// depend on test order or filters. Exits 77 (Meson's "skipped") only when
// there is nothing to test: a build without the CUDA backend, or a machine
// with no CUDA driver and no GPU, or whose driver reports no device. Any other
// probe failure (a driver older than the toolkit, a device node without its
// driver library) fails the suite with the CUDA error: that machine has a GPU
// the backend cannot use.
inline void require_device() {
  static const CudaProbe probe = probe_cuda();
  switch (probe.outcome) {
    case CudaProbe::Outcome::kPresent:
      return;
    case CudaProbe::Outcome::kNotCompiled:
    case CudaProbe::Outcome::kNoDevice:
      std::fprintf(stderr, "skipping the gpu suite: %s\n", probe.detail.c_str());
      std::exit(77);
    case CudaProbe::Outcome::kFailed:
      break;
  }
  std::fprintf(stderr, "the gpu suite cannot run: %s\n", probe.detail.c_str());
  std::exit(1);
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
