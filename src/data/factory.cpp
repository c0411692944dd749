// make_datasets: dispatch on the dataset type, then one shared normalization
// step so that train and test always go through the same affine map.
#include "gossip/data/factory.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "gossip/data/idx.hpp"
#include "gossip/data/rng.hpp"
#include "gossip/data/text.hpp"

namespace gossip::data {
namespace {

struct Loaded {
  Dataset train;
  std::optional<Dataset> test;
};

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// dir/base.gz, else dir/base.
core::Result<std::string> pick(const std::string& dir, const std::string& base) {
  const std::string gz = dir + "/" + base + ".gz";
  if (is_file(gz)) return gz;
  if (is_file(dir + "/" + base)) return dir + "/" + base;
  return core::not_found("fashion_mnist: " + gz +
                         " not found (install the Debian package "
                         "dataset-fashion-mnist, or set the data dir)");
}

core::Result<Loaded> load_fashion_mnist(const DatasetSpec& spec) {
  std::string paths[4];
  const char* bases[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (int i = 0; i < 4; ++i) {
    auto p = pick(spec.dir, bases[i]);
    if (!p) return p.status();
    paths[i] = *p;
  }
  auto train = load_idx_dataset(paths[0], paths[1], 10);
  if (!train) return train.status();
  auto test = load_idx_dataset(paths[2], paths[3], 10);
  if (!test) return test.status();
  return Loaded{std::move(train).value(), std::move(test).value()};
}

core::Result<Loaded> load_idx(const DatasetSpec& spec) {
  if (spec.train_images.empty() || spec.train_labels.empty()) {
    return core::invalid_argument("idx: train_images and train_labels must both be set");
  }
  if (spec.test_images.empty() != spec.test_labels.empty()) {
    return core::invalid_argument("idx: set both test_images and test_labels, or neither");
  }
  auto train = load_idx_dataset(spec.train_images, spec.train_labels, spec.classes);
  if (!train) return train.status();
  Loaded out{std::move(train).value(), std::nullopt};
  if (!spec.test_images.empty()) {
    auto test = load_idx_dataset(spec.test_images, spec.test_labels, out.train.classes());
    if (!test) return test.status();
    out.test = std::move(test).value();
  }
  return out;
}

core::Result<Loaded> load_csv_pair(const DatasetSpec& spec) {
  if (spec.train_csv.empty()) return core::invalid_argument("csv: train_csv must be set");
  if (!(spec.test_fraction >= 0.0 && spec.test_fraction < 1.0)) {
    return core::invalid_argument("csv: test_fraction must be in [0, 1)");
  }
  auto train = load_csv(spec.train_csv, spec.csv);
  if (!train) return train.status();
  if (!spec.test_csv.empty()) {
    CsvOptions opts = spec.csv;
    if (train->task() == Task::kClassification) {
      opts.class_names = train->class_names();
      opts.classes = train->classes();
    }
    auto test = load_csv(spec.test_csv, opts);
    if (!test) return test.status();
    return Loaded{std::move(train).value(), std::move(test).value()};
  }
  if (spec.test_fraction == 0.0) return Loaded{std::move(train).value(), std::nullopt};
  const int64_t n = train->size();
  const auto held = static_cast<int64_t>(std::llround(static_cast<double>(n) * spec.test_fraction));
  if (held < 1 || held >= n) {
    return core::invalid_argument("csv: test_fraction " + std::to_string(spec.test_fraction) +
                                  " of " + std::to_string(n) + " rows leaves an empty split");
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(derive_seed(spec.seed, 0xC5F));
  shuffle(std::span<int64_t>(order), rng);
  std::vector<int64_t> test_rows(order.begin(), order.begin() + held);
  std::vector<int64_t> train_rows(order.begin() + held, order.end());
  std::sort(test_rows.begin(), test_rows.end());
  std::sort(train_rows.begin(), train_rows.end());
  Dataset test = train->subset(test_rows, spec.train_csv + "#test");
  Dataset rest = train->subset(train_rows, spec.train_csv + "#train");
  return Loaded{std::move(rest), std::move(test)};
}

core::Result<Loaded> load_synthetic(const DatasetSpec& spec) {
  auto sets = make_synthetic_regression(spec.synthetic);
  if (!sets) return sets.status();
  return Loaded{std::move(sets->train), std::move(sets->test)};
}

core::Result<Loaded> load_text(const DatasetSpec& spec) {
  auto bytes = read_text_corpus(spec.text_paths);
  if (!bytes) return bytes.status();
  const std::string name = spec.text_paths.size() == 1
                               ? spec.text_paths.front()
                               : spec.text_paths.front() + " and " +
                                     std::to_string(spec.text_paths.size() - 1) + " more";
  auto split = split_text(name, *bytes, spec.window, spec.val_fraction);
  if (!split) return split.status();
  return Loaded{std::move(split->train), std::move(split->validation)};
}

core::Status check_compatible(const Dataset& train, const Dataset& test) {
  if (train.features() != test.features() || train.task() != test.task() ||
      train.classes() != test.classes() || train.target_cols() != test.target_cols()) {
    return core::corrupt(
        test.name() + " does not match " + train.name() + ": " + std::to_string(test.features()) +
        " vs " + std::to_string(train.features()) + " features, " + std::to_string(test.classes()) +
        " vs " + std::to_string(train.classes()) + " classes");
  }
  return core::Status::ok();
}

}  // namespace

core::Result<DatasetPair> make_datasets(const DatasetSpec& spec) {
  core::Result<Loaded> loaded =
      core::invalid_argument("data.type: unknown dataset type '" + spec.type +
                             "' (expected fashion_mnist, idx, csv, synthetic_regression or text)");
  std::string default_norm = "none";
  if (spec.type == "fashion_mnist") {
    loaded = load_fashion_mnist(spec);
  } else if (spec.type == "idx") {
    loaded = load_idx(spec);
  } else if (spec.type == "csv") {
    loaded = load_csv_pair(spec);
    default_norm = "per_feature";
  } else if (spec.type == "synthetic_regression") {
    loaded = load_synthetic(spec);
  } else if (spec.type == "text") {
    loaded = load_text(spec);
  }
  if (!loaded) return loaded.status();
  Loaded& sets = loaded.value();
  if (sets.test) GOSSIP_RETURN_IF_ERROR(check_compatible(sets.train, *sets.test));

  Normalization norm;
  if (!spec.mean.empty() || !spec.stddev.empty()) {
    norm.mean = spec.mean;
    norm.stddev = spec.stddev;
  } else {
    auto mode = parse_normalization_mode(spec.normalize.empty() ? default_norm : spec.normalize);
    if (!mode) return mode.status();
    norm = sets.train.compute_normalization(*mode);
  }
  GOSSIP_RETURN_IF_ERROR(sets.train.set_normalization(norm));
  if (sets.test) GOSSIP_RETURN_IF_ERROR(sets.test->set_normalization(norm));

  DatasetPair pair;
  pair.train = std::make_shared<const Dataset>(std::move(sets.train));
  if (sets.test) pair.test = std::make_shared<const Dataset>(std::move(*sets.test));
  return pair;
}

}  // namespace gossip::data
