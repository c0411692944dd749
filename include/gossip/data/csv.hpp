// CSV loader for users' own tabular data.
//
// Format: a header row naming the columns, then one sample per line; fields
// separated by `delimiter`, optionally double-quoted ("" inside quotes is a
// quote); CRLF accepted; blank lines skipped. Feature columns must be finite
// numbers. Classification names one label column: integer labels >= 0 are
// used as class ids, otherwise distinct strings become classes in sorted
// order. Regression names one or more target columns. Every error names the
// file, the line and the column: "data.csv:17: column 'x3': not a number: 'abc'".
#pragma once

#include <string>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/data/dataset.hpp"

namespace gossip::data {

struct CsvOptions {
  // Exactly one of these two selects the task.
  std::string label_column;                 // classification
  std::vector<std::string> target_columns;  // regression
  // Feature columns; empty means every column that is not a label/target.
  std::vector<std::string> feature_columns;
  char delimiter = ',';
  // For a test file loaded after its training file: the training set's class
  // names (string labels) or class count (integer labels), so both files use
  // the same class ids. An unseen string label is then an error.
  std::vector<std::string> class_names;
  int classes = 0;
};

// Loads `path`. kNotFound / kIo when the file cannot be read, kCorrupt with
// "path:line: ..." for bad content, kInvalidArgument for bad options (no
// label or target column named, both named, a named column missing).
core::Result<Dataset> load_csv(const std::string& path, const CsvOptions& options);

}  // namespace gossip::data
