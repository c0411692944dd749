// Dataset storage, normalization statistics and the per-batch gather.
//
// The gather keeps each row conversion a simple loop over restrict pointers
// (out[j] = raw[j] * a + b) so that -O2/-O3 turns it into SIMD byte->float
// conversions; rows themselves are scattered (shuffled indices), so the loop
// per row is the unit of work.
#include "gossip/data/dataset.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

namespace gossip::data {
namespace {

constexpr float kByteScale = 1.0f / 255.0f;
constexpr double kMinStd = 1e-6;
constexpr size_t kPrefetchRows = 4;

void convert_u8(const uint8_t* __restrict src, float* __restrict dst, int n, float a, float b) {
  for (int j = 0; j < n; ++j) dst[j] = static_cast<float>(src[j]) * a + b;
}

void convert_u8_per(const uint8_t* __restrict src, float* __restrict dst, int n,
                    const float* __restrict a, const float* __restrict b) {
  for (int j = 0; j < n; ++j) dst[j] = static_cast<float>(src[j]) * a[j] + b[j];
}

void convert_f32(const float* __restrict src, float* __restrict dst, int n, float a, float b) {
  for (int j = 0; j < n; ++j) dst[j] = src[j] * a + b;
}

void convert_f32_per(const float* __restrict src, float* __restrict dst, int n,
                     const float* __restrict a, const float* __restrict b) {
  for (int j = 0; j < n; ++j) dst[j] = src[j] * a[j] + b[j];
}

}  // namespace

core::Result<NormalizationMode> parse_normalization_mode(std::string_view name) {
  if (name == "none") return NormalizationMode::kNone;
  if (name == "global") return NormalizationMode::kGlobal;
  if (name == "per_feature") return NormalizationMode::kPerFeature;
  return core::invalid_argument("normalize: unknown mode '" + std::string(name) +
                                "' (expected none, global or per_feature)");
}

core::Status Dataset::check_common(const std::string& name, int64_t rows, int features,
                                   size_t x_size) {
  if (rows <= 0) return core::invalid_argument(name + ": dataset has no samples");
  if (features <= 0) return core::invalid_argument(name + ": dataset has no features");
  if (x_size != static_cast<size_t>(rows) * static_cast<size_t>(features)) {
    return core::invalid_argument(name + ": feature buffer holds " + std::to_string(x_size) +
                                  " values, expected " + std::to_string(rows) + " x " +
                                  std::to_string(features));
  }
  return core::Status::ok();
}

namespace {
core::Status check_labels(const std::string& name, int64_t rows, const std::vector<int32_t>& labels,
                          int classes) {
  if (classes <= 0) return core::invalid_argument(name + ": classes must be > 0");
  if (labels.size() != static_cast<size_t>(rows)) {
    return core::invalid_argument(name + ": " + std::to_string(labels.size()) + " labels for " +
                                  std::to_string(rows) + " samples");
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      return core::invalid_argument(name + ": sample " + std::to_string(i) + " has label " +
                                    std::to_string(labels[i]) + ", outside [0, " +
                                    std::to_string(classes) + ")");
    }
  }
  return core::Status::ok();
}
}  // namespace

core::Result<Dataset> Dataset::classification_u8(std::string name, int64_t rows, int features,
                                                 std::vector<uint8_t> x,
                                                 std::vector<int32_t> labels, int classes) {
  GOSSIP_RETURN_IF_ERROR(check_common(name, rows, features, x.size()));
  GOSSIP_RETURN_IF_ERROR(check_labels(name, rows, labels, classes));
  Dataset d;
  d.name_ = std::move(name);
  d.task_ = Task::kClassification;
  d.rows_ = rows;
  d.features_ = features;
  d.classes_ = classes;
  d.x_u8_ = std::move(x);
  d.labels_ = std::move(labels);
  d.rebuild_affine();
  return d;
}

core::Result<Dataset> Dataset::classification_f32(std::string name, int64_t rows, int features,
                                                  std::vector<float> x, std::vector<int32_t> labels,
                                                  int classes) {
  GOSSIP_RETURN_IF_ERROR(check_common(name, rows, features, x.size()));
  GOSSIP_RETURN_IF_ERROR(check_labels(name, rows, labels, classes));
  Dataset d;
  d.name_ = std::move(name);
  d.task_ = Task::kClassification;
  d.rows_ = rows;
  d.features_ = features;
  d.classes_ = classes;
  d.x_f32_ = std::move(x);
  d.labels_ = std::move(labels);
  d.rebuild_affine();
  return d;
}

core::Result<Dataset> Dataset::regression_f32(std::string name, int64_t rows, int features,
                                              std::vector<float> x, std::vector<float> targets,
                                              int target_cols) {
  GOSSIP_RETURN_IF_ERROR(check_common(name, rows, features, x.size()));
  if (target_cols <= 0) return core::invalid_argument(name + ": target_cols must be > 0");
  if (targets.size() != static_cast<size_t>(rows) * static_cast<size_t>(target_cols)) {
    return core::invalid_argument(name + ": target buffer holds " + std::to_string(targets.size()) +
                                  " values, expected " + std::to_string(rows) + " x " +
                                  std::to_string(target_cols));
  }
  Dataset d;
  d.name_ = std::move(name);
  d.task_ = Task::kRegression;
  d.rows_ = rows;
  d.features_ = features;
  d.target_cols_ = target_cols;
  d.x_f32_ = std::move(x);
  d.targets_ = std::move(targets);
  d.rebuild_affine();
  return d;
}

core::Result<Dataset> Dataset::token_windows(std::string name, std::span<const uint8_t> bytes,
                                             int window) {
  if (window < 2) {
    return core::invalid_argument(name + ": a window needs at least 2 bytes, got " +
                                  std::to_string(window));
  }
  if (bytes.size() < static_cast<size_t>(window)) {
    return core::invalid_argument(name + ": " + std::to_string(bytes.size()) +
                                  " bytes, shorter than one window of " + std::to_string(window) +
                                  " bytes (model.block + 1)");
  }
  const size_t stride = static_cast<size_t>(window) - 1;
  const auto rows = static_cast<int64_t>((bytes.size() - 1) / stride);
  Dataset d;
  d.name_ = std::move(name);
  d.task_ = Task::kLanguageModel;
  d.rows_ = rows;
  d.features_ = window;
  d.classes_ = 256;
  d.x_u8_.resize(static_cast<size_t>(rows) * static_cast<size_t>(window));
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(d.x_u8_.data() + static_cast<size_t>(r) * static_cast<size_t>(window),
                bytes.data() + static_cast<size_t>(r) * stride, static_cast<size_t>(window));
  }
  d.rebuild_affine();
  return d;
}

void Dataset::gather_tokens(std::span<const int64_t> indices, int32_t* tokens) const {
  const size_t f = static_cast<size_t>(features_);
  for (size_t r = 0; r < indices.size(); ++r) {
    assert(indices[r] >= 0 && indices[r] < rows_);
    const uint8_t* src = x_u8_.data() + static_cast<size_t>(indices[r]) * f;
    for (size_t j = 0; j < f; ++j) tokens[r * f + j] = src[j];
  }
}

size_t Dataset::memory_bytes() const {
  return x_u8_.size() + x_f32_.size() * sizeof(float) + labels_.size() * sizeof(int32_t) +
         targets_.size() * sizeof(float);
}

Normalization Dataset::compute_normalization(NormalizationMode mode) const {
  Normalization norm;
  if (mode == NormalizationMode::kNone) return norm;
  const double base = stores_bytes() ? static_cast<double>(kByteScale) : 1.0;
  const size_t f = static_cast<size_t>(features_);
  const size_t n = static_cast<size_t>(rows_);
  auto finish = [&](double sum, double sum_sq, double count, float& mean_out, float& std_out) {
    const double mean = sum / count;
    const double var = std::max(0.0, sum_sq / count - mean * mean);
    const double sd = std::sqrt(var);
    mean_out = static_cast<float>(mean);
    std_out = static_cast<float>(sd < kMinStd ? 1.0 : sd);
  };
  if (mode == NormalizationMode::kGlobal) {
    double sum = 0.0;
    double sum_sq = 0.0;
    if (stores_bytes()) {
      // A 256-bin histogram: exact, and one pass of cheap increments.
      // Four interleaved histograms avoid a store-to-load stall on runs of
      // equal pixels (most of an image is background).
      std::vector<uint64_t> lanes(4 * 256, 0);
      const size_t total = x_u8_.size();
      size_t k = 0;
      for (; k + 4 <= total; k += 4) {
        ++lanes[x_u8_[k]];
        ++lanes[256 + x_u8_[k + 1]];
        ++lanes[512 + x_u8_[k + 2]];
        ++lanes[768 + x_u8_[k + 3]];
      }
      for (; k < total; ++k) ++lanes[x_u8_[k]];
      std::vector<uint64_t> hist(256, 0);
      for (size_t v = 0; v < 256; ++v) {
        hist[v] = lanes[v] + lanes[256 + v] + lanes[512 + v] + lanes[768 + v];
      }
      for (int v = 0; v < 256; ++v) {
        const double s = v * base;
        sum += static_cast<double>(hist[static_cast<size_t>(v)]) * s;
        sum_sq += static_cast<double>(hist[static_cast<size_t>(v)]) * s * s;
      }
    } else {
      for (float v : x_f32_) {
        sum += v;
        sum_sq += static_cast<double>(v) * v;
      }
    }
    norm.mean.resize(1);
    norm.stddev.resize(1);
    finish(sum, sum_sq, static_cast<double>(n * f), norm.mean[0], norm.stddev[0]);
    return norm;
  }
  std::vector<double> sum(f, 0.0);
  std::vector<double> sum_sq(f, 0.0);
  for (size_t r = 0; r < n; ++r) {
    for (size_t j = 0; j < f; ++j) {
      const double v = stores_bytes() ? x_u8_[r * f + j] * base : x_f32_[r * f + j];
      sum[j] += v;
      sum_sq[j] += v * v;
    }
  }
  norm.mean.resize(f);
  norm.stddev.resize(f);
  for (size_t j = 0; j < f; ++j) {
    finish(sum[j], sum_sq[j], static_cast<double>(n), norm.mean[j], norm.stddev[j]);
  }
  return norm;
}

core::Status Dataset::set_normalization(const Normalization& norm) {
  if (norm.mean.size() != norm.stddev.size()) {
    return core::invalid_argument(name_ + ": normalization has " +
                                  std::to_string(norm.mean.size()) + " means but " +
                                  std::to_string(norm.stddev.size()) + " stds");
  }
  if (!norm.mean.empty() && norm.mean.size() != 1 &&
      norm.mean.size() != static_cast<size_t>(features_)) {
    return core::invalid_argument(
        name_ + ": normalization has " + std::to_string(norm.mean.size()) +
        " values; expected 1 or one per feature (" + std::to_string(features_) + ")");
  }
  for (size_t j = 0; j < norm.mean.size(); ++j) {
    if (!std::isfinite(norm.mean[j]) || !std::isfinite(norm.stddev[j]) || norm.stddev[j] <= 0) {
      return core::invalid_argument(name_ + ": normalization value " + std::to_string(j) +
                                    " is not usable (mean " + std::to_string(norm.mean[j]) +
                                    ", std " + std::to_string(norm.stddev[j]) +
                                    "); std must be finite and > 0");
    }
  }
  norm_ = norm;
  rebuild_affine();
  return core::Status::ok();
}

void Dataset::rebuild_affine() {
  const float base = stores_bytes() ? kByteScale : 1.0f;
  scales_.clear();
  shifts_.clear();
  if (norm_.mean.size() <= 1) {
    uniform_ = true;
    const float mean = norm_.mean.empty() ? 0.0f : norm_.mean[0];
    const float sd = norm_.mean.empty() ? 1.0f : norm_.stddev[0];
    scale_ = base / sd;
    shift_ = -mean / sd;
    return;
  }
  uniform_ = false;
  scales_.resize(static_cast<size_t>(features_));
  shifts_.resize(static_cast<size_t>(features_));
  for (size_t j = 0; j < scales_.size(); ++j) {
    scales_[j] = base / norm_.stddev[j];
    shifts_[j] = -norm_.mean[j] / norm_.stddev[j];
  }
}

void Dataset::gather(std::span<const int64_t> indices, float* x, int32_t* labels,
                     float* targets) const {
  const int f = features_;
  const size_t fs = static_cast<size_t>(f);
  const bool bytes = stores_bytes();
  const size_t row_bytes = fs * (bytes ? 1 : sizeof(float));
  const auto* base = bytes ? static_cast<const char*>(static_cast<const void*>(x_u8_.data()))
                           : static_cast<const char*>(static_cast<const void*>(x_f32_.data()));
  // Shuffled rows are scattered over the whole dataset, so each row is a run
  // of cache misses; prefetching a few rows ahead overlaps them with the
  // conversion of the current row.
  auto prefetch_row = [&](size_t r) {
    const char* p = base + static_cast<size_t>(indices[r]) * row_bytes;
    for (size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(p + off, 0, 0);
  };
  for (size_t r = 0; r < std::min(indices.size(), kPrefetchRows); ++r) prefetch_row(r);
  for (size_t r = 0; r < indices.size(); ++r) {
    const int64_t i = indices[r];
    assert(i >= 0 && i < rows_);
    if (r + kPrefetchRows < indices.size()) prefetch_row(r + kPrefetchRows);
    const size_t src = static_cast<size_t>(i) * fs;
    float* dst = x + r * fs;
    if (bytes) {
      if (uniform_) {
        convert_u8(x_u8_.data() + src, dst, f, scale_, shift_);
      } else {
        convert_u8_per(x_u8_.data() + src, dst, f, scales_.data(), shifts_.data());
      }
    } else if (uniform_) {
      convert_f32(x_f32_.data() + src, dst, f, scale_, shift_);
    } else {
      convert_f32_per(x_f32_.data() + src, dst, f, scales_.data(), shifts_.data());
    }
  }
  if (task_ == Task::kClassification) {
    if (labels != nullptr) {
      for (size_t r = 0; r < indices.size(); ++r) {
        labels[r] = labels_[static_cast<size_t>(indices[r])];
      }
    }
  } else if (targets != nullptr) {
    const size_t t = static_cast<size_t>(target_cols_);
    for (size_t r = 0; r < indices.size(); ++r) {
      std::memcpy(targets + r * t, targets_.data() + static_cast<size_t>(indices[r]) * t,
                  t * sizeof(float));
    }
  }
}

std::vector<float> Dataset::row(int64_t index) const {
  std::vector<float> out(static_cast<size_t>(features_));
  int32_t label = 0;
  std::vector<float> target(static_cast<size_t>(target_cols_));
  gather(std::span<const int64_t>(&index, 1), out.data(), &label, target.data());
  return out;
}

Dataset Dataset::subset(std::span<const int64_t> indices, std::string name) const {
  Dataset d;
  d.name_ = std::move(name);
  d.task_ = task_;
  d.rows_ = static_cast<int64_t>(indices.size());
  d.features_ = features_;
  d.classes_ = classes_;
  d.target_cols_ = target_cols_;
  d.class_names_ = class_names_;
  d.norm_ = norm_;
  const size_t fs = static_cast<size_t>(features_);
  const size_t t = static_cast<size_t>(target_cols_);
  if (stores_bytes())
    d.x_u8_.resize(indices.size() * fs);
  else
    d.x_f32_.resize(indices.size() * fs);
  if (task_ == Task::kClassification)
    d.labels_.resize(indices.size());
  else
    d.targets_.resize(indices.size() * t);
  for (size_t r = 0; r < indices.size(); ++r) {
    const size_t i = static_cast<size_t>(indices[r]);
    assert(indices[r] >= 0 && indices[r] < rows_);
    if (stores_bytes()) {
      std::memcpy(d.x_u8_.data() + r * fs, x_u8_.data() + i * fs, fs);
    } else {
      std::memcpy(d.x_f32_.data() + r * fs, x_f32_.data() + i * fs, fs * sizeof(float));
    }
    if (task_ == Task::kClassification)
      d.labels_[r] = labels_[i];
    else
      std::memcpy(d.targets_.data() + r * t, targets_.data() + i * t, t * sizeof(float));
  }
  d.rebuild_affine();
  return d;
}

}  // namespace gossip::data
