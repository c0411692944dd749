// CSV parsing: one pass over the whole file in memory (gzip'd files too,
// through read_file_maybe_gzip), fields split per line with minimal quoting,
// numbers parsed with std::from_chars. Label columns are collected as text
// first so that integer ids and string names can be told apart over the
// whole file, not just the first row.
#include "gossip/data/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string_view>
#include <unordered_map>

#include "gossip/data/idx.hpp"

namespace gossip::data {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool is_blank(std::string_view s) {
  return trim(s).empty();
}

// Splits one line into fields; false on an unterminated quote.
bool split_fields(std::string_view line, char delim, std::vector<std::string>& fields) {
  fields.clear();
  size_t i = 0;
  for (;;) {
    std::string field;
    // Skip leading blanks to find an opening quote.
    size_t j = i;
    while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
    if (j < line.size() && line[j] == '"') {
      ++j;
      bool closed = false;
      while (j < line.size()) {
        if (line[j] == '"') {
          if (j + 1 < line.size() && line[j + 1] == '"') {
            field.push_back('"');
            j += 2;
            continue;
          }
          closed = true;
          ++j;
          break;
        }
        field.push_back(line[j++]);
      }
      if (!closed) return false;
      while (j < line.size() && line[j] != delim) ++j;  // ignore blanks after the quote
      i = j;
    } else {
      size_t end = line.find(delim, i);
      if (end == std::string_view::npos) end = line.size();
      field = std::string(trim(line.substr(i, end - i)));
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= line.size()) return true;
    ++i;  // past the delimiter
  }
}

bool parse_float(std::string_view s, float& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

bool parse_int(std::string_view s, int64_t& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

std::string where(const std::string& path, int64_t line) {
  return path + ":" + std::to_string(line);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

// Maps collected label texts to class ids (see CsvOptions for the rules).
core::Status map_labels(const std::string& path, const std::string& column,
                        const std::vector<std::string>& texts, const std::vector<int64_t>& lines,
                        const CsvOptions& options, std::vector<int32_t>& ids, int& classes,
                        std::vector<std::string>& names) {
  ids.resize(texts.size());
  if (!options.class_names.empty()) {
    std::unordered_map<std::string, int32_t> index;
    for (size_t c = 0; c < options.class_names.size(); ++c) {
      index.emplace(options.class_names[c], static_cast<int32_t>(c));
    }
    for (size_t r = 0; r < texts.size(); ++r) {
      auto it = index.find(texts[r]);
      if (it == index.end()) {
        return core::corrupt(where(path, lines[r]) + ": column '" + column + "': label '" +
                             texts[r] + "' is not one of the known classes (" +
                             join(options.class_names) + ")");
      }
      ids[r] = it->second;
    }
    classes = static_cast<int>(options.class_names.size());
    names = options.class_names;
    return core::Status::ok();
  }
  int64_t first_int = -1;
  int64_t first_text = -1;
  int64_t max_id = 0;
  for (size_t r = 0; r < texts.size(); ++r) {
    int64_t v = 0;
    if (parse_int(texts[r], v)) {
      if (first_int < 0) first_int = static_cast<int64_t>(r);
      if (v < 0 || v > INT32_MAX - 1) {
        return core::corrupt(where(path, lines[r]) + ": column '" + column + "': class id " +
                             texts[r] + " must be in [0, 2^31 - 1)");
      }
      ids[r] = static_cast<int32_t>(v);
      max_id = std::max(max_id, v);
    } else {
      // A number that is not a whole one ("1.5", "1e30"): a mistyped id,
      // not a class name.
      char* end = nullptr;
      const std::string& t = texts[r];
      (void)std::strtod(t.c_str(), &end);
      if (!t.empty() && end == t.c_str() + t.size()) {
        return core::corrupt(where(path, lines[r]) + ": column '" + column + "': label '" + t +
                             "' is a number but not a class id (a whole number in [0, 2^31 - 1))");
      }
      if (first_text < 0) first_text = static_cast<int64_t>(r);
    }
  }
  if (first_int >= 0 && first_text >= 0) {
    const auto fi = static_cast<size_t>(first_int);
    const auto ft = static_cast<size_t>(first_text);
    return core::corrupt(path + ": column '" + column + "' mixes integer class ids (line " +
                         std::to_string(lines[fi]) + ": '" + texts[fi] + "') and names (line " +
                         std::to_string(lines[ft]) + ": '" + texts[ft] +
                         "'); use one or the other");
  }
  if (first_text < 0) {  // integer ids
    classes =
        options.classes > 0 ? options.classes : static_cast<int>(std::max<int64_t>(2, max_id + 1));
    for (size_t r = 0; r < ids.size(); ++r) {
      if (ids[r] >= classes) {
        return core::corrupt(where(path, lines[r]) + ": column '" + column + "': class id " +
                             std::to_string(ids[r]) + " is outside [0, " + std::to_string(classes) +
                             ")");
      }
    }
    return core::Status::ok();
  }
  std::map<std::string, int32_t> sorted;
  for (const auto& t : texts) sorted.emplace(t, 0);
  names.clear();
  for (auto& [name, id] : sorted) {
    id = static_cast<int32_t>(names.size());
    names.push_back(name);
  }
  for (size_t r = 0; r < texts.size(); ++r) ids[r] = sorted[texts[r]];
  classes = static_cast<int>(names.size());
  return core::Status::ok();
}

}  // namespace

core::Result<Dataset> load_csv(const std::string& path, const CsvOptions& options) {
  const bool classify = !options.label_column.empty();
  if (classify == !options.target_columns.empty()) {
    return core::invalid_argument(
        path + ": name either a label column (classification) or target columns (regression)");
  }
  auto file = read_file_maybe_gzip(path);
  if (!file) return file.status();
  std::string_view text(reinterpret_cast<const char*>(file->data()), file->size());
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM

  size_t pos = 0;
  int64_t line_no = 0;
  auto next_line = [&](std::string_view& line) {
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!is_blank(line)) return true;
    }
    return false;
  };

  std::string_view line;
  if (!next_line(line)) return core::corrupt(path + ": empty file (expected a header row)");
  std::vector<std::string> header;
  if (!split_fields(line, options.delimiter, header)) {
    return core::corrupt(where(path, line_no) + ": unterminated quote in the header");
  }
  std::unordered_map<std::string, int> column_of;
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c].empty()) {
      return core::corrupt(where(path, line_no) + ": header column " + std::to_string(c + 1) +
                           " has no name");
    }
    if (!column_of.emplace(header[c], static_cast<int>(c)).second) {
      return core::corrupt(where(path, line_no) + ": column '" + header[c] +
                           "' appears twice in the header");
    }
  }
  auto find = [&](const std::string& name, const char* role) -> core::Result<int> {
    auto it = column_of.find(name);
    if (it == column_of.end()) {
      return core::invalid_argument(path + ": no " + role + " column named '" + name +
                                    "' in the header (columns: " + join(header) + ")");
    }
    return it->second;
  };

  std::vector<int> outputs;  // label or target column indices
  if (classify) {
    auto c = find(options.label_column, "label");
    if (!c) return c.status();
    outputs.push_back(*c);
  } else {
    for (const auto& name : options.target_columns) {
      auto c = find(name, "target");
      if (!c) return c.status();
      outputs.push_back(*c);
    }
  }
  std::vector<int> inputs;
  if (options.feature_columns.empty()) {
    for (int c = 0; c < static_cast<int>(header.size()); ++c) {
      if (std::find(outputs.begin(), outputs.end(), c) == outputs.end()) inputs.push_back(c);
    }
  } else {
    for (const auto& name : options.feature_columns) {
      auto c = find(name, "feature");
      if (!c) return c.status();
      if (std::find(outputs.begin(), outputs.end(), *c) != outputs.end()) {
        return core::invalid_argument(path + ": column '" + name +
                                      "' cannot be both a feature and a label/target");
      }
      inputs.push_back(*c);
    }
  }
  if (inputs.empty()) return core::invalid_argument(path + ": no feature columns left");

  std::vector<float> x;
  std::vector<float> targets;
  std::vector<std::string> label_texts;
  std::vector<int64_t> label_lines;
  std::vector<std::string> fields;
  int64_t rows = 0;
  auto number = [&](const std::vector<std::string>& f, int c, float& out) -> core::Status {
    const std::string& s = f[static_cast<size_t>(c)];
    const std::string& name = header[static_cast<size_t>(c)];
    if (s.empty())
      return core::corrupt(where(path, line_no) + ": column '" + name + "': empty value");
    if (!parse_float(s, out)) {
      return core::corrupt(where(path, line_no) + ": column '" + name + "': not a number: '" + s +
                           "'");
    }
    if (!std::isfinite(out)) {
      return core::corrupt(where(path, line_no) + ": column '" + name +
                           "': not a finite number: '" + s + "'");
    }
    return core::Status::ok();
  };
  while (next_line(line)) {
    if (!split_fields(line, options.delimiter, fields)) {
      return core::corrupt(where(path, line_no) + ": unterminated quote");
    }
    if (fields.size() != header.size()) {
      return core::corrupt(where(path, line_no) + ": expected " + std::to_string(header.size()) +
                           " fields as in the header, found " + std::to_string(fields.size()));
    }
    for (int c : inputs) {
      float v = 0;
      GOSSIP_RETURN_IF_ERROR(number(fields, c, v));
      x.push_back(v);
    }
    if (classify) {
      const size_t c = static_cast<size_t>(outputs[0]);
      if (fields[c].empty()) {
        return core::corrupt(where(path, line_no) + ": column '" + header[c] + "': empty label");
      }
      label_texts.push_back(std::move(fields[c]));
      label_lines.push_back(line_no);
    } else {
      for (int c : outputs) {
        float v = 0;
        GOSSIP_RETURN_IF_ERROR(number(fields, c, v));
        targets.push_back(v);
      }
    }
    ++rows;
  }
  if (rows == 0) return core::corrupt(path + ": no data rows after the header");

  const int features = static_cast<int>(inputs.size());
  if (!classify) {
    return Dataset::regression_f32(path, rows, features, std::move(x), std::move(targets),
                                   static_cast<int>(outputs.size()));
  }
  std::vector<int32_t> ids;
  int classes = 0;
  std::vector<std::string> names;
  GOSSIP_RETURN_IF_ERROR(map_labels(path, options.label_column, label_texts, label_lines, options,
                                    ids, classes, names));
  auto d = Dataset::classification_f32(path, rows, features, std::move(x), std::move(ids), classes);
  if (d) d->set_class_names(std::move(names));
  return d;
}

}  // namespace gossip::data
