// Typed readers over one JSON object of a config file; see reader.hpp.
#include "gossip/options/reader.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <utility>

namespace gossip::options {

void Errors::add(const std::string& path, const std::string& message) {
  list_.push_back(path.empty() ? message : path + ": " + message);
}

std::string show(const Json& value) {
  std::string text = value.dump();
  constexpr size_t kMax = 48;
  if (text.size() > kMax) text = text.substr(0, kMax - 3) + "...";
  return text;
}

std::string num(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment: insert, delete, substitute, or swap two
  // neighbours, each costing 1 (typos are mostly one of these), ignoring case.
  const auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
  const size_t n = a.size();
  const size_t m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d <= limit ? best : std::string();
}

std::string join_names(const std::vector<std::string>& names, const char* last) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += (i + 1 == names.size()) ? last : ", ";
    out += names[i];
  }
  return out;
}

bool whole_number(const Json& v, int64_t min, int64_t max, int64_t& out) {
  int64_t value = 0;
  bool ok = false;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(INT64_MAX);
    value = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    value = v.get<int64_t>();
    ok = true;
  } else if (v.is_number_float()) {
    // 1e6 parses as a float; accept it when it is a whole number.
    const double d = v.get<double>();
    ok = std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e18;
    value = ok ? static_cast<int64_t>(d) : 0;
  }
  if (!ok || value < min || value > max) return false;
  out = value;
  return true;
}

namespace {

std::string integer_expectation(int64_t min, int64_t max) {
  if (max == INT64_MAX || max == INT_MAX) {
    if (min == 1) return "a positive integer";
    if (min == 0) return "a non-negative integer";
    return "an integer >= " + std::to_string(min);
  }
  return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

}  // namespace

Section::Section(const Json* object, std::string path, const std::filesystem::path& base_dir,
                 Errors& errors)
    : object_(object), path_(std::move(path)), base_dir_(base_dir), errors_(errors) {}

std::string Section::key_path(const char* key) const {
  return path_.empty() ? std::string(key) : path_ + "." + key;
}

void Section::error(const char* key, const std::string& message) {
  errors_.add(key_path(key), message);
}

void Section::type_error(const char* key, const std::string& expected, const Json& got) {
  error(key, "expected " + expected + ", got " + show(got));
}

const Json* Section::get(const char* key) {
  known_.emplace_back(key);
  if (object_ == nullptr) return nullptr;
  auto it = object_->find(key);
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

void Section::error_named(const std::string& message) {
  errors_.add("", message);
}

bool Section::has(const char* key) {
  return get(key) != nullptr;
}

Section Section::child(const char* key) {
  const Json* v = get(key);
  if (v != nullptr && !v->is_object()) {
    type_error(key, "an object", *v);
    v = nullptr;
  }
  return Section(v, key_path(key), base_dir_, errors_);
}

bool Section::boolean(const char* key, bool& out) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) {
    type_error(key, "true or false", *v);
    return false;
  }
  out = v->get<bool>();
  return true;
}

bool Section::integer(const char* key, int64_t& out, int64_t min, int64_t max) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!whole_number(*v, min, max, out)) {
    type_error(key, integer_expectation(min, max), *v);
    return false;
  }
  return true;
}

bool Section::positive(const char* key, int& out) {
  int64_t v = out;
  if (!integer(key, v, 1, INT_MAX)) return false;
  out = static_cast<int>(v);
  return true;
}

bool Section::non_negative(const char* key, int& out) {
  int64_t v = out;
  if (!integer(key, v, 0, INT_MAX)) return false;
  out = static_cast<int>(v);
  return true;
}

bool Section::seed(const char* key, uint64_t& out) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) {
    out = v->get<uint64_t>();
    return true;
  }
  type_error(key, "a non-negative integer", *v);
  return false;
}

bool Section::number(const char* key, double& out, double min, bool min_exclusive) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  const std::string expected = std::string("a number ") + (min_exclusive ? "> " : ">= ") + num(min);
  if (!v->is_number()) {
    type_error(key, expected, *v);
    return false;
  }
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < min || (min_exclusive && d == min)) {
    type_error(key, expected, *v);
    return false;
  }
  out = d;
  return true;
}

bool Section::number_in(const char* key, double& out, double lo, double hi, bool lo_open,
                        bool hi_open) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  const std::string expected = std::string("a number in ") + (lo_open ? "(" : "[") + num(lo) +
                               ", " + num(hi) + (hi_open ? ")" : "]");
  const double d = v->is_number() ? v->get<double>() : NAN;
  if (!std::isfinite(d) || d < lo || d > hi || (lo_open && d == lo) || (hi_open && d == hi)) {
    type_error(key, expected, *v);
    return false;
  }
  out = d;
  return true;
}

bool Section::string(const char* key, std::string& out) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!v->is_string()) {
    type_error(key, "a string", *v);
    return false;
  }
  out = v->get<std::string>();
  return true;
}

bool Section::strings(const char* key, std::vector<std::string>& out) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!v->is_array() || v->empty()) {
    type_error(key, "a non-empty array of strings", *v);
    return false;
  }
  std::vector<std::string> list;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_string() || e.get<std::string>().empty()) {
      const std::string element = std::string(key) + "[" + std::to_string(i) + "]";
      type_error(element.c_str(), "a non-empty string", e);
      return false;
    }
    list.push_back(e.get<std::string>());
  }
  out = std::move(list);
  return true;
}

bool Section::numbers(const char* key, std::vector<float>& out) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!v->is_array() || v->empty()) {
    type_error(key, "a non-empty array of numbers", *v);
    return false;
  }
  std::vector<float> list;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_number() || !std::isfinite(e.get<double>())) {
      const std::string element = std::string(key) + "[" + std::to_string(i) + "]";
      type_error(element.c_str(), "a number", e);
      return false;
    }
    list.push_back(e.get<float>());
  }
  out = std::move(list);
  return true;
}

bool Section::choice(const char* key, const std::vector<std::string>& names, std::string& out) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (v->is_string()) {
    const auto s = v->get<std::string>();
    if (std::find(names.begin(), names.end(), s) != names.end()) {
      out = s;
      return true;
    }
    const std::string near = closest(s, names);
    error(key, "expected " + join_names(names) + ", got " + show(*v) +
                   (near.empty() ? "" : " (did you mean " + near + "?)"));
    return false;
  }
  type_error(key, join_names(names), *v);
  return false;
}

bool Section::path(const char* key, std::filesystem::path& out) {
  return path(key, out, base_dir_);
}

bool Section::path(const char* key, std::filesystem::path& out,
                   const std::filesystem::path& relative_to) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!v->is_string() || v->get<std::string>().empty()) {
    type_error(key, "a non-empty path", *v);
    return false;
  }
  std::filesystem::path p(v->get<std::string>());
  out = (p.is_absolute() ? p : relative_to / p).lexically_normal();
  return true;
}

bool Section::endpoint(const char* key, core::Endpoint& out, bool allow_port_zero) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!v->is_string()) {
    type_error(key, "a \"host:port\" string", *v);
    return false;
  }
  auto parsed = core::parse_endpoint(v->get<std::string>(), allow_port_zero);
  if (!parsed) {
    error(key, parsed.status().message());
    return false;
  }
  out = std::move(parsed).value();
  return true;
}

bool Section::service_address(const char* key, core::ServiceAddress& out) {
  const Json* v = get(key);
  if (v == nullptr) return false;
  if (!v->is_string()) {
    type_error(key, "a \"host:port\", \":port\" or \"port\" string", *v);
    return false;
  }
  auto parsed = core::parse_service_address(v->get<std::string>());
  if (!parsed) {
    error(key, parsed.status().message());
    return false;
  }
  out = std::move(parsed).value();
  return true;
}

bool Section::only_if(const char* key, bool used, const std::string& why) {
  if (used) return true;
  if (get(key) != nullptr) error(key, "not used " + why);
  return false;
}

void Section::finish() {
  if (object_ == nullptr) return;
  for (const auto& item : object_->items()) {
    if (std::find(known_.begin(), known_.end(), item.key()) != known_.end()) continue;
    const std::string near = closest(item.key(), known_);
    std::string message = "unknown key";
    if (!near.empty()) {
      message += " (did you mean " + key_path(near.c_str()) + "?)";
    } else {
      std::vector<std::string> names = known_;
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
      message += " (known keys " +
                 (path_.empty() ? std::string("at the top level") : "in " + path_) + ": " +
                 join_names(names) + ")";
    }
    errors_.add(key_path(item.key().c_str()), message);
  }
}

}  // namespace gossip::options
