// The "data" section of a config file: reading it (filling the data
// module's DatasetSpec and ShardSpec as they are) and writing it back.
//
// Paths resolve against the config file's folder (idx file names against the
// dataset's "dir" when one is given). Keys that belong to another dataset or
// shard type are errors, so a config says only what it means; data_json
// writes exactly the keys the reader accepts for the chosen types.
#include "gossip/data/options.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "gossip/options/reader.hpp"

namespace gossip::data {

bool DataConfig::regression() const {
  return dataset.type == "synthetic_regression" ||
         (dataset.type == "csv" && !dataset.csv.target_columns.empty());
}

namespace {

using options::Json;
using options::Section;
using Path = std::filesystem::path;

const std::vector<std::string> kDatasetNames = {"fashion_mnist", "idx", "csv",
                                                "synthetic_regression", "text"};
const std::vector<std::string> kShardNames = {"random", "block", "label_skew"};

const std::vector<std::string> kNormalizeNames = {"none", "global", "per_feature"};
const std::vector<std::string> kTeacherActivations = {"tanh", "relu"};

// Reads a path key into a string field, resolved against `relative_to`.
void path_string(Section& d, const char* key, std::string& out, const Path& relative_to) {
  Path p;
  if (d.path(key, p, relative_to)) out = p.string();
}

void read_idx(Section& d, DatasetSpec& out) {
  const bool fashion = out.type == "fashion_mnist";
  const bool idx = out.type == "idx";
  const std::string for_type = "by dataset type " + out.type;
  Path dir = fashion ? Path(kDefaultFashionMnistDir) : d.base_dir();
  if (d.only_if("dir", fashion || idx, for_type)) d.path("dir", dir);
  if (fashion) out.dir = dir.string();  // idx: only the folder its file names start from
  for (const char* key :
       {"train_images", "train_labels", "test_images", "test_labels", "classes"}) {
    d.only_if(key, idx, for_type);
  }
  if (!idx) return;
  for (const char* key : {"train_images", "train_labels"}) {
    if (!d.has(key)) d.error(key, "required for dataset type idx");
  }
  path_string(d, "train_images", out.train_images, dir);
  path_string(d, "train_labels", out.train_labels, dir);
  path_string(d, "test_images", out.test_images, dir);
  path_string(d, "test_labels", out.test_labels, dir);
  if (out.test_images.empty() != out.test_labels.empty()) {
    d.error(out.test_images.empty() ? "test_images" : "test_labels",
            "give both test_images and test_labels, or neither");
  }
  d.non_negative("classes", out.classes);
}

void read_csv(Section& d, DatasetSpec& out, bool csv) {
  const std::string for_type = "by dataset type " + out.type;
  if (d.only_if("train_csv", csv, for_type)) {
    if (!d.has("train_csv")) d.error("train_csv", "required for dataset type csv");
    path_string(d, "train_csv", out.train_csv, d.base_dir());
  }
  if (d.only_if("test_csv", csv, for_type)) path_string(d, "test_csv", out.test_csv, d.base_dir());
  if (csv) out.test_fraction = out.test_csv.empty() ? 0.1 : 0.0;
  if (d.only_if("test_fraction", csv && out.test_csv.empty(),
                csv ? "when data.dataset.test_csv is set" : for_type)) {
    d.number_in("test_fraction", out.test_fraction, 0, 1, false, true);
  }
  CsvOptions& o = out.csv;
  if (d.only_if("label_column", csv, for_type) && d.string("label_column", o.label_column) &&
      o.label_column.empty()) {
    d.error("label_column", "expected a column name, got \"\"");
  }
  if (d.only_if("target_columns", csv, for_type)) d.strings("target_columns", o.target_columns);
  if (d.only_if("feature_columns", csv, for_type)) d.strings("feature_columns", o.feature_columns);
  std::string delimiter(1, o.delimiter);
  if (d.only_if("delimiter", csv, for_type) && d.string("delimiter", delimiter)) {
    if (delimiter.size() != 1 || delimiter == "\"" || delimiter == "\n") {
      d.error("delimiter",
              "expected one character such as \",\" or \";\", got \"" + delimiter + "\"");
    } else {
      o.delimiter = delimiter[0];
    }
  }
  if (csv && o.label_column.empty() == o.target_columns.empty()) {
    d.error(o.label_column.empty() ? "label_column" : "target_columns",
            "give label_column (classification) or target_columns (regression), exactly one");
  }
}

void read_synthetic(Section& d, SyntheticRegressionSpec& out, bool synthetic,
                    const std::string& type) {
  const std::string for_type = "by dataset type " + type;
  if (d.only_if("train_samples", synthetic, for_type))
    d.positive("train_samples", out.train_samples);
  if (d.only_if("test_samples", synthetic, for_type)) d.positive("test_samples", out.test_samples);
  if (d.only_if("inputs", synthetic, for_type)) d.positive("inputs", out.inputs);
  if (d.only_if("hidden", synthetic, for_type)) d.positive("hidden", out.hidden);
  if (d.only_if("activation", synthetic, for_type)) {
    d.choice("activation", kTeacherActivations, out.activation);
  }
  if (d.only_if("noise_std", synthetic, for_type)) d.number("noise_std", out.noise_std, 0.0, false);
  if (d.only_if("gain", synthetic, for_type)) d.number("gain", out.gain, 0.0, true);
  if (d.only_if("seed", synthetic, for_type)) d.seed("seed", out.seed);
}

// text: "path", one file or folder or a list of them (read in that order),
// and val_fraction.
void read_text(Section& d, DatasetSpec& out, bool text) {
  const std::string for_type = "by dataset type " + out.type;
  if (d.only_if("val_fraction", text, for_type)) {
    d.number_in("val_fraction", out.val_fraction, 0, 1, false, true);
  }
  if (!d.only_if("path", text, for_type)) return;
  const Json* v = d.value("path");
  if (v == nullptr) {
    d.error("path", "required for dataset type text: a file or folder, or a list of them");
    return;
  }
  std::vector<std::string> items;
  if (v->is_string()) {
    items.push_back(v->get<std::string>());
  } else if (v->is_array() && !v->empty() &&
             std::all_of(v->begin(), v->end(), [](const Json& e) { return e.is_string(); })) {
    for (const auto& e : *v) items.push_back(e.get<std::string>());
  } else {
    d.error("path", "expected a file or folder name, or a non-empty list of them, got " +
                        options::show(*v));
    return;
  }
  out.text_paths.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].empty()) {
      d.error("path", "entry " + std::to_string(i) + " is an empty name");
      continue;
    }
    out.text_paths.push_back((d.base_dir() / items[i]).lexically_normal().string());
  }
}

void read_dataset(Section& s, DatasetSpec& out) {
  if (!s.has("dataset")) {
    s.error("dataset",
            "required: an object with \"type\": fashion_mnist, idx, csv, "
            "synthetic_regression or text");
    return;
  }
  Section d = s.child("dataset");
  if (!d.present()) return;
  if (!d.has("type")) {
    d.error("type", "required: fashion_mnist, idx, csv, synthetic_regression or text");
  }
  d.choice("type", kDatasetNames, out.type);
  read_idx(d, out);
  read_csv(d, out, out.type == "csv");
  read_synthetic(d, out.synthetic, out.type == "synthetic_regression", out.type);
  read_text(d, out, out.type == "text");
  d.finish();
}

void read_shard(Section& s, bool regression, ShardConfig& out) {
  Section sh = s.child("shard");
  std::string type = out.spec.type;
  if (sh.has("type") && sh.value("type")->is_string() &&
      sh.value("type")->get<std::string>() == "label-skew") {
    type = "label_skew";  // the spelling used in prose
  } else {
    sh.choice("type", kShardNames, type);
  }
  out.spec.type = type;
  const bool skew = type == "label_skew";
  if (skew && regression) {
    sh.error("type", "label_skew needs a classification dataset (labels to skew)");
  }
  const std::string for_type = "by shard type " + type;
  if (sh.only_if("alpha", skew, for_type)) sh.number("alpha", out.spec.alpha, 0.0, true);
  if (sh.only_if("min_shard_size", skew, for_type)) {
    sh.positive("min_shard_size", out.spec.min_shard_size);
  }
  sh.positive("num_shards", out.num_shards);
  sh.non_negative("index", out.index);
  if (out.index >= out.num_shards) {
    sh.error("index", "must be below data.shard.num_shards (" + std::to_string(out.num_shards) +
                          "), got " + std::to_string(out.index));
  }
  sh.finish();
}

}  // namespace

void read_data(Section& top, DataConfig& out) {
  if (!top.has("data")) {
    top.error("data", "required section missing (at least \"dataset\": {\"type\": ...})");
    return;
  }
  Section s = top.child("data");
  if (!s.present()) return;
  read_dataset(s, out.dataset);
  read_shard(s, out.regression(), out.shard);
  s.positive("batch", out.batch);
  s.seed("seed", out.seed);
  out.dataset.seed = out.seed;
  DatasetSpec& d = out.dataset;
  d.normalize = d.type == "csv" ? "per_feature" : "none";
  s.choice("normalize", kNormalizeNames, d.normalize);
  s.numbers("mean", d.mean);
  s.numbers("stddev", d.stddev);
  if (d.mean.empty() != d.stddev.empty()) {
    s.error(d.mean.empty() ? "mean" : "stddev", "give both data.mean and data.stddev, or neither");
  } else if (!d.mean.empty() && d.normalize == "none") {
    s.error("mean", "not used when data.normalize is \"none\"");
  } else if (!d.mean.empty() && d.mean.size() != d.stddev.size()) {
    s.error("stddev", "must have as many entries as data.mean (" + std::to_string(d.mean.size()) +
                          "), got " + std::to_string(d.stddev.size()));
  }
  for (size_t i = 0; i < d.stddev.size(); ++i) {
    if (!(d.stddev[i] > 0.0f)) {
      const std::string key = "stddev[" + std::to_string(i) + "]";
      s.error(key.c_str(), "expected a number > 0, got " + options::num(d.stddev[i]));
    }
  }
  s.boolean("drop_last", out.drop_last);
  s.finish();
}

namespace {

Json strings_or_null(const std::vector<std::string>& v) {
  return v.empty() ? Json(nullptr) : Json(v);
}

Json dataset_json(const DatasetSpec& d) {
  Json j = {{"type", d.type}};
  if (d.type == "fashion_mnist") {
    j["dir"] = d.dir;
  } else if (d.type == "idx") {
    j["train_images"] = d.train_images;
    j["train_labels"] = d.train_labels;
    j["test_images"] = d.test_images.empty() ? Json(nullptr) : Json(d.test_images);
    j["test_labels"] = d.test_labels.empty() ? Json(nullptr) : Json(d.test_labels);
    j["classes"] = d.classes;
  } else if (d.type == "csv") {
    j["train_csv"] = d.train_csv;
    j["test_csv"] = d.test_csv.empty() ? Json(nullptr) : Json(d.test_csv);
    if (d.test_csv.empty()) j["test_fraction"] = d.test_fraction;
    j["label_column"] = d.csv.label_column.empty() ? Json(nullptr) : Json(d.csv.label_column);
    j["target_columns"] = strings_or_null(d.csv.target_columns);
    j["feature_columns"] = strings_or_null(d.csv.feature_columns);
    j["delimiter"] = std::string(1, d.csv.delimiter);
  } else if (d.type == "synthetic_regression") {
    const SyntheticRegressionSpec& s = d.synthetic;
    j["train_samples"] = s.train_samples;
    j["test_samples"] = s.test_samples;
    j["inputs"] = s.inputs;
    j["hidden"] = s.hidden;
    j["activation"] = s.activation;
    j["noise_std"] = s.noise_std;
    j["gain"] = s.gain;
    j["seed"] = s.seed;
  } else if (d.type == "text") {
    j["path"] = d.text_paths;
    j["val_fraction"] = d.val_fraction;
  }
  return j;
}

}  // namespace

nlohmann::json data_json(const DataConfig& d) {
  Json shard = {
      {"type", d.shard.spec.type}, {"num_shards", d.shard.num_shards}, {"index", d.shard.index}};
  if (d.shard.spec.type == "label_skew") {
    shard["alpha"] = d.shard.spec.alpha;
    shard["min_shard_size"] = d.shard.spec.min_shard_size;
  }
  const DatasetSpec& ds = d.dataset;
  const bool stats = !ds.mean.empty();
  return {{"dataset", dataset_json(ds)},
          {"shard", shard},
          {"batch", d.batch},
          {"seed", d.seed},
          {"normalize", ds.normalize},
          {"mean", stats ? Json(ds.mean) : Json(nullptr)},
          {"stddev", stats ? Json(ds.stddev) : Json(nullptr)},
          {"drop_last", d.drop_last}};
}

}  // namespace gossip::data
