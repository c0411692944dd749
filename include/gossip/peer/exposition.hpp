// Exposition: writes the Prometheus text exposition format (version 0.0.4,
// what /metrics serves): per family one "# HELP" and one "# TYPE" line, then
// its samples, each `name{label="value",...} number`.
//
// The writer escapes what the format says must be escaped (in HELP text a
// backslash and a newline; in label values also a double quote) and prints
// numbers as Prometheus reads them: integers exactly, other values in the
// shortest form that reads back to the same double, NaN and +Inf/-Inf by
// name. It does not check that a family's samples are written together;
// its callers write each family once, with every sample it has.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gossip::peer {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
 public:
  // "# HELP name help" and "# TYPE name type" (type: counter, gauge,
  // histogram, untyped). Names and label names must match
  // [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*; a bad one is a
  // programmer error (std::invalid_argument).
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample line. `name` is the family's name, or for a histogram the
  // family's name plus _bucket, _sum or _count.
  void sample(std::string_view name, const Labels& labels, double value);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// The label value as the format writes it between its quotes.
std::string escape_label_value(std::string_view value);
// A sample value as the format writes it ("3", "0.25", "NaN", "+Inf").
std::string format_sample_value(double value);

}  // namespace gossip::peer
