// Dataset: N samples held once in memory, read by many peers at once.
//
// In simulation mode every peer of a process trains from the same Dataset, so
// it is immutable once shared: all const methods are safe to call from any
// number of threads concurrently. Features are stored compactly (uint8 for
// images, ~47 MB for Fashion-MNIST's training set; float for tabular and
// synthetic data) and converted to float per batch by gather(), which applies
// one affine map per feature: [0,1] scaling of bytes followed by the optional
// standardization. gather() is the training hot path: a plain loop the
// compiler vectorises, no allocation, no locks.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::data {

// kLanguageModel: each row is a window of block + 1 byte values (text.hpp),
// read as tokens (gather_tokens), never as features.
enum class Task { kClassification, kRegression, kLanguageModel };

// How features are standardized after the [0,1] scaling of byte data.
enum class NormalizationMode {
  kNone,        // bytes -> [0,1], floats unchanged
  kGlobal,      // one mean / std over all features (images)
  kPerFeature,  // one mean / std per column (tabular data)
};

// "none" | "global" | "per_feature"; anything else is invalid_argument naming it.
core::Result<NormalizationMode> parse_normalization_mode(std::string_view name);

// Standardization parameters: x' = (x - mean) / stddev, where x is the [0,1]
// scaled byte or the stored float. Both empty: none; size 1: the same for
// every feature; size features(): per feature.
struct Normalization {
  std::vector<float> mean;
  std::vector<float> stddev;
  bool empty() const { return mean.empty(); }
};

class Dataset {
 public:
  // Validating constructors. `x` holds rows x features values, row-major.
  // Labels must lie in [0, classes); targets hold rows x target_cols values.
  // `name` appears in error messages and logs (usually the file name).
  static core::Result<Dataset> classification_u8(std::string name, int64_t rows, int features,
                                                 std::vector<uint8_t> x,
                                                 std::vector<int32_t> labels, int classes);
  static core::Result<Dataset> classification_f32(std::string name, int64_t rows, int features,
                                                  std::vector<float> x, std::vector<int32_t> labels,
                                                  int classes);
  static core::Result<Dataset> regression_f32(std::string name, int64_t rows, int features,
                                              std::vector<float> x, std::vector<float> targets,
                                              int target_cols);
  // A language-model dataset: the windows of `window` bytes at stride
  // window - 1 over `bytes` (row r starts at byte r (window - 1)), stored
  // one after another. invalid_argument naming `name` when window < 2 or
  // bytes are shorter than one window (with both sizes).
  static core::Result<Dataset> token_windows(std::string name, std::span<const uint8_t> bytes,
                                             int window);

  Dataset(Dataset&&) noexcept = default;
  Dataset& operator=(Dataset&&) noexcept = default;
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  const std::string& name() const { return name_; }
  Task task() const { return task_; }
  int64_t size() const { return rows_; }
  int features() const { return features_; }
  int classes() const { return classes_; }          // 0 for regression, 256 byte values for LM
  int target_cols() const { return target_cols_; }  // 0 for classification
  bool stores_bytes() const { return !x_u8_.empty(); }
  // Bytes held for features, labels and targets.
  size_t memory_bytes() const;

  // All labels (classification) / all targets (regression), row order.
  std::span<const int32_t> labels() const { return labels_; }
  std::span<const float> targets() const { return targets_; }

  // Optional class names (CSV string labels), index = class id; empty otherwise.
  const std::vector<std::string>& class_names() const { return class_names_; }
  void set_class_names(std::vector<std::string> names) { class_names_ = std::move(names); }

  // Mean / std of the [0,1]-scaled features over this dataset, computed in
  // double precision; a std below 1e-6 (constant pixel or column) becomes 1.
  // kNone returns an empty Normalization.
  Normalization compute_normalization(NormalizationMode mode) const;

  // Installs the standardization gather() applies. Only before the dataset is
  // shared (not thread-safe). invalid_argument if sizes do not match
  // features() or a std is not finite and > 0.
  core::Status set_normalization(const Normalization& norm);
  const Normalization& normalization() const { return norm_; }

  // Gathers rows `indices` (each in [0, size())) into `x` (indices.size() x
  // features() floats, converted and standardized), and into `labels`
  // (classification) or `targets` (regression, indices.size() x
  // target_cols()). Pointers for the other task may be null. Any thread.
  void gather(std::span<const int64_t> indices, float* x, int32_t* labels, float* targets) const;

  // Language model: copies rows `indices` into tokens (indices.size() x
  // features() byte values). Any thread.
  void gather_tokens(std::span<const int64_t> indices, int32_t* tokens) const;
  // One feature row, converted like gather() does; for tests and inspection.
  std::vector<float> row(int64_t index) const;

  // A new dataset made of rows `indices` (e.g. a held-out split), with the
  // same normalization and class names. Requires valid indices.
  Dataset subset(std::span<const int64_t> indices, std::string name) const;

 private:
  Dataset() = default;
  static core::Status check_common(const std::string& name, int64_t rows, int features,
                                   size_t x_size);
  void rebuild_affine();

  std::string name_;
  Task task_ = Task::kClassification;
  int64_t rows_ = 0;
  int features_ = 0;
  int classes_ = 0;
  int target_cols_ = 0;
  std::vector<uint8_t> x_u8_;
  std::vector<float> x_f32_;
  std::vector<int32_t> labels_;
  std::vector<float> targets_;
  std::vector<std::string> class_names_;
  Normalization norm_;
  // gather() computes x' = raw * scale + shift; uniform_ when one pair serves
  // every feature (the common image case), else per-feature arrays.
  bool uniform_ = true;
  float scale_ = 1.0f;
  float shift_ = 0.0f;
  std::vector<float> scales_;
  std::vector<float> shifts_;
};

}  // namespace gossip::data
