// Section: typed readers over one JSON object of a config file, shared by
// every module that owns a config section (each module reads and writes its
// own section; the config module composes them).
//
// Each reader takes a key, checks the JSON type and the value's range, and on
// success stores the value into a field that already holds its default; an
// absent key leaves the default. Every key a reader is asked about becomes
// "known", so finish() can report the keys nobody asked about as unknown,
// with the closest known key as a suggestion. Problems are collected in
// Errors as "full.key.path: what is wrong", so one run reports them all.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/core/endpoint.hpp"

namespace gossip::options {

using Json = nlohmann::json;

// The problems found so far, in the order they were found.
class Errors {
 public:
  void add(const std::string& path, const std::string& message);
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  const std::vector<std::string>& list() const { return list_; }

 private:
  std::vector<std::string> list_;
};

// A compact rendering of a JSON value for messages: "\"64\"", "-3", "[784]",
// cut to a readable length.
std::string show(const Json& value);

// A double as a person writes it: 0, 0.5, 1e-08.
std::string num(double value);

// Edit distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

// The closest of `candidates` to `word`, or "" when none is close enough to
// be a plausible typo.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

// "a, b or c" (`last` joins the last two).
std::string join_names(const std::vector<std::string>& names, const char* last = " or ");

// A whole number in [min, max] (also when written 1e3); false, leaving `out`
// alone, otherwise.
bool whole_number(const Json& v, int64_t min, int64_t max, int64_t& out);

class Section {
 public:
  // `object` may be null (section absent: every read keeps its default).
  // `path` is the dotted path of this object ("" for the top level).
  Section(const Json* object, std::string path, const std::filesystem::path& base_dir,
          Errors& errors);

  bool present() const { return object_ != nullptr; }
  // Whether `key` is present and not null; marks the key known.
  bool has(const char* key);
  // "optimizer.schedule" + "gamma" -> "optimizer.schedule.gamma".
  std::string key_path(const char* key) const;
  // Records "path.key: message".
  void error(const char* key, const std::string& message);
  // Records a message that already names its key (e.g. from train's own
  // validate(), which writes "optimizer.lr: ...").
  void error_named(const std::string& message);
  // Problems recorded so far by any Section sharing these Errors.
  size_t error_count() const { return errors_.size(); }
  // The raw value at `key` (null when absent or JSON null); marks it known.
  const Json* value(const char* key) { return get(key); }
  const std::filesystem::path& base_dir() const { return base_dir_; }

  // The nested object at `key` (absent: a Section reading nothing; not an
  // object: an error, and a Section reading nothing).
  Section child(const char* key);

  // Typed readers: return true when the key was present and valid (the
  // field then holds the new value).
  bool boolean(const char* key, bool& out);
  bool integer(const char* key, int64_t& out, int64_t min, int64_t max);
  bool positive(const char* key, int64_t& out) { return integer(key, out, 1, kMaxInt64); }
  bool positive(const char* key, int& out);
  bool non_negative(const char* key, int64_t& out) { return integer(key, out, 0, kMaxInt64); }
  bool non_negative(const char* key, int& out);
  bool seed(const char* key, uint64_t& out);
  // Finite numbers; `min_exclusive` picks "> min" over ">= min".
  bool number(const char* key, double& out, double min, bool min_exclusive);
  // Finite numbers in the interval [lo, hi], ends open as asked ("[0, 1)").
  bool number_in(const char* key, double& out, double lo, double hi, bool lo_open, bool hi_open);
  bool string(const char* key, std::string& out);
  // Arrays: at least one element; errors name the element ("key[2]").
  bool strings(const char* key, std::vector<std::string>& out);
  bool numbers(const char* key, std::vector<float>& out);
  // One of `names`; stores the matching name. A near miss gets a suggestion.
  bool choice(const char* key, const std::vector<std::string>& names, std::string& out);
  // A non-empty path, resolved against `relative_to` (default: base_dir).
  bool path(const char* key, std::filesystem::path& out);
  bool path(const char* key, std::filesystem::path& out, const std::filesystem::path& relative_to);
  bool endpoint(const char* key, core::Endpoint& out, bool allow_port_zero);
  // A local service's listen address (core::ServiceAddress).
  bool service_address(const char* key, core::ServiceAddress& out);

  // Marks `key` known; when `used` is false and the key is present, records
  // "path.key: not used <why>". Returns whether the key may be read.
  bool only_if(const char* key, bool used, const std::string& why);

  // Reports every key of this object that no reader asked about.
  void finish();

  static constexpr int64_t kMaxInt64 = INT64_MAX;

 private:
  const Json* get(const char* key);  // marks known; null when absent or JSON null
  void type_error(const char* key, const std::string& expected, const Json& got);

  const Json* object_;
  std::string path_;
  std::filesystem::path base_dir_;
  Errors& errors_;
  std::vector<std::string> known_;
};

}  // namespace gossip::options
