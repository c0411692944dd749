// Dataset factory: a "type" string and its options -> train and test sets.
//
// read_data (data/options.hpp) fills a DatasetSpec from the `data` section; the peer or
// the simulator calls make_datasets() once and shares the result read-only.
// Types:
//   fashion_mnist         dir with {train,t10k}-{images-idx3,labels-idx1}-ubyte(.gz)
//   idx                   four explicit IDX file paths (test pair optional)
//   csv                   train_csv (+ test_csv, or a seeded test_fraction split)
//   synthetic_regression  the seed's teacher-network task (see synthetic.hpp)
//   text                  byte-level language modelling on text_paths (text.hpp):
//                         windows of `window` (block + 1) bytes; the last
//                         val_fraction of the bytes is the test set
// Normalization ("none" | "global" | "per_feature"; empty = the type's
// default: none for images and synthetic, per_feature for csv) is computed on
// the training set, or taken from `mean`/`stddev` when given, and applied to
// both sets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/data/csv.hpp"
#include "gossip/data/dataset.hpp"
#include "gossip/data/synthetic.hpp"

namespace gossip::data {

inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct DatasetSpec {
  std::string type = "fashion_mnist";
  // fashion_mnist
  std::string dir = kDefaultFashionMnistDir;
  // idx
  std::string train_images, train_labels, test_images, test_labels;
  int classes = 0;  // idx: 0 = max label + 1
  // csv
  std::string train_csv, test_csv;
  double test_fraction = 0.0;  // csv without test_csv: rows held out, in [0, 1)
  CsvOptions csv;
  // synthetic_regression
  SyntheticRegressionSpec synthetic;
  // text
  std::vector<std::string> text_paths;  // files and folders, in order
  double val_fraction = 0.1;            // in [0, 1)
  int window = 0;                       // model.block + 1, set from the model
  // all types
  std::string normalize;            // see above
  std::vector<float> mean, stddev;  // given statistics (size 1 or features)
  uint64_t seed = 1;                // csv split; synthetic uses synthetic.seed
};

// Both sets share features, task and classes. `test` is null only for csv
// without test_csv and with test_fraction 0, and text with val_fraction 0.
struct DatasetPair {
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> test;
};

// Loads or generates the datasets. Errors: invalid_argument (unknown type,
// bad option, naming it), not_found / io / corrupt from the loaders, and
// corrupt when train and test disagree in shape or classes.
core::Result<DatasetPair> make_datasets(const DatasetSpec& spec);

}  // namespace gossip::data
