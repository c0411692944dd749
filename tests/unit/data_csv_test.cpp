// CSV loading on real files: classification with integer and string labels,
// regression, quoting, and errors that name file, line and column.
#include <doctest/doctest.h>

#include "gossip/data/csv.hpp"
#include "gossip/data/factory.hpp"
#include "unit/data_test_support.hpp"

using namespace gossip;
using namespace gossip::data;
using gossip::data::testing::gzip_bytes;
using gossip::data::testing::TempDir;
using gossip::data::testing::write_bytes;
using gossip::data::testing::write_text;

namespace {

CsvOptions label(const std::string& column) {
  CsvOptions o;
  o.label_column = column;
  return o;
}

// Loads `text` as a CSV file named data.csv and returns the error message.
std::string error_of(const std::string& text, const CsvOptions& options, TempDir& dir) {
  write_text(dir.file("data.csv"), text);
  auto r = load_csv(dir.file("data.csv"), options);
  REQUIRE_FALSE(r.is_ok());
  const std::string msg = r.status().message();
  // Report paths relative to the temp dir, as the user would see them.
  const std::string prefix = dir.file("");
  return msg.rfind(prefix, 0) == 0 ? msg.substr(prefix.size()) : msg;
}

}  // namespace

TEST_CASE("CSV classification with integer labels, CRLF, quotes and blank lines") {
  TempDir dir;
  write_text(dir.file("d.csv"),
             "x1,\"x 2\",label,x3\r\n"
             "1.5, -2,0,1e-3\r\n"
             "\r\n"
             "+3,4,\"2\",5\r\n"
             "6,7,1,8\r\n");
  auto d = load_csv(dir.file("d.csv"), label("label"));
  REQUIRE_MESSAGE(d.is_ok(), d.status().to_string());
  CHECK(d->size() == 3);
  CHECK(d->features() == 3);
  CHECK(d->classes() == 3);
  CHECK(d->class_names().empty());
  CHECK(d->labels()[1] == 2);
  const auto row = d->row(0);
  CHECK(row[0] == doctest::Approx(1.5));
  CHECK(row[1] == doctest::Approx(-2));
  CHECK(row[2] == doctest::Approx(1e-3));
}

TEST_CASE("CSV string labels map to sorted class ids shared with the test file") {
  TempDir dir;
  write_text(dir.file("train.csv"), "a,b,kind\n1,2,cat\n3,4,dog\n5,6,ant\n7,8,dog\n");
  write_text(dir.file("test.csv"), "a,b,kind\n1,1,dog\n2,2,ant\n");
  DatasetSpec spec;
  spec.type = "csv";
  spec.train_csv = dir.file("train.csv");
  spec.test_csv = dir.file("test.csv");
  spec.csv.label_column = "kind";
  auto pair = make_datasets(spec);
  REQUIRE_MESSAGE(pair.is_ok(), pair.status().to_string());
  CHECK(pair->train->class_names() == std::vector<std::string>{"ant", "cat", "dog"});
  CHECK(pair->train->labels()[0] == 1);
  CHECK(pair->test->labels()[0] == 2);
  CHECK(pair->test->labels()[1] == 0);
  // csv defaults to per-feature standardization computed on the training set.
  REQUIRE(pair->train->normalization().mean.size() == 2);
  CHECK(pair->train->normalization().mean[0] == doctest::Approx(4.0));
  CHECK(pair->test->row(0)[0] == pair->train->row(0)[0]);

  write_text(dir.file("test.csv"), "a,b,kind\n1,1,dog\n2,2,eel\n");
  auto bad = make_datasets(spec);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message() ==
        dir.file("test.csv") +
            ":3: column 'kind': label 'eel' is not one of the known classes (ant, cat, dog)");
}

TEST_CASE("CSV regression with named targets and a held-out split, gzip'd") {
  TempDir dir;
  std::string text = "y2,f1,f2,y1\n";
  for (int i = 0; i < 100; ++i) {
    text += std::to_string(i * 2) + "," + std::to_string(i) + "," + std::to_string(-i) + "," +
            std::to_string(i + 1) + "\n";
  }
  write_bytes(dir.file("r.csv.gz"), gzip_bytes(std::vector<uint8_t>(text.begin(), text.end())));
  DatasetSpec spec;
  spec.type = "csv";
  spec.train_csv = dir.file("r.csv.gz");
  spec.csv.target_columns = {"y1", "y2"};
  spec.test_fraction = 0.2;
  spec.normalize = "none";
  auto pair = make_datasets(spec);
  REQUIRE_MESSAGE(pair.is_ok(), pair.status().to_string());
  CHECK(pair->train->size() == 80);
  CHECK(pair->test->size() == 20);
  CHECK(pair->train->task() == Task::kRegression);
  CHECK(pair->train->features() == 2);
  CHECK(pair->train->target_cols() == 2);
  // Each row keeps its targets in the named order: y1 = f1 + 1, y2 = 2 f1.
  for (const auto& d : {pair->train, pair->test}) {
    for (int64_t r = 0; r < d->size(); ++r) {
      const float f1 = d->row(r)[0];
      CHECK(d->targets()[static_cast<size_t>(2 * r)] == doctest::Approx(f1 + 1));
      CHECK(d->targets()[static_cast<size_t>(2 * r + 1)] == doctest::Approx(2 * f1));
    }
  }
}

TEST_CASE("CSV errors name the file, the line and the column") {
  TempDir dir;
  const auto opts = label("label");
  CHECK(error_of("x1,x2,x3,label\n1,2,3,0\n4,5,abc,1\n", opts, dir) ==
        "data.csv:3: column 'x3': not a number: 'abc'");
  CHECK(error_of("x1,x2,label\n1,2,0\n4,5\n", opts, dir) ==
        "data.csv:3: expected 3 fields as in the header, found 2");
  CHECK(error_of("x1,x2,label\n1,,0\n", opts, dir) == "data.csv:2: column 'x2': empty value");
  CHECK(error_of("x1,x2,label\n1,nan,0\n", opts, dir) ==
        "data.csv:2: column 'x2': not a finite number: 'nan'");
  CHECK(error_of("", opts, dir) == "data.csv: empty file (expected a header row)");
  CHECK(error_of("\n  \n", opts, dir) == "data.csv: empty file (expected a header row)");
  CHECK(error_of("x1,label\n", opts, dir) == "data.csv: no data rows after the header");
  CHECK(error_of("x1,x2\n1,2\n", opts, dir) ==
        "data.csv: no label column named 'label' in the header (columns: x1, x2)");
  CHECK(error_of("x1,x1,label\n1,2,0\n", opts, dir) ==
        "data.csv:1: column 'x1' appears twice in the header");
  CHECK(error_of("x1,label\n1,\"0\n", opts, dir) == "data.csv:2: unterminated quote");
  CHECK(error_of("x1,label\n1,0\n2,cat\n", opts, dir) ==
        "data.csv: column 'label' mixes integer class ids (line 2: '0') and names (line 3: 'cat'); "
        "use one or the other");
  CHECK(error_of("x1,label\n1,-1\n", opts, dir) ==
        "data.csv:2: column 'label': class id -1 must be in [0, 2^31 - 1)");
  CHECK(error_of("x1,label\n1,0\n2,1.5\n", opts, dir) ==
        "data.csv:3: column 'label': label '1.5' is a number but not a class id (a whole number in "
        "[0, 2^31 - 1))");
  CHECK(
      error_of("x1,label\n1,99999999999999999999\n", opts, dir) ==
      "data.csv:2: column 'label': label '99999999999999999999' is a number but not a class id (a "
      "whole number in [0, 2^31 - 1))");

  CsvOptions reg;
  reg.target_columns = {"y"};
  CHECK(error_of("x,y\n1,2\n\n3,x\n", reg, dir) == "data.csv:4: column 'y': not a number: 'x'");
  CsvOptions both = reg;
  both.label_column = "x";
  CHECK(error_of("x,y\n1,2\n", both, dir) ==
        "data.csv: name either a label column (classification) or target columns (regression)");

  auto missing = load_csv(dir.file("absent.csv"), opts);
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == core::Code::kNotFound);
}
