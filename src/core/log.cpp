// Logging to stderr with a process-wide threshold, format and per-cause rate
// limits. The JSON format is written here by hand (core depends on nothing
// of the project nor on a JSON library): strings escaped per RFC 8259,
// non-finite numbers as null.
#include "gossip/core/log.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace gossip::core {
namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point kStart = Clock::now();

LogLevel level_from_env() {
  const char* v = std::getenv("GOSSIP_LOG");
  if (v == nullptr) return LogLevel::kInfo;
  if (std::strcmp(v, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(v, "warn") == 0) return LogLevel::kWarn;
  if (std::strcmp(v, "error") == 0) return LogLevel::kError;
  if (std::strcmp(v, "off") == 0) return LogLevel::kOff;
  return LogLevel::kInfo;
}

std::atomic<LogLevel>& threshold() {
  static std::atomic<LogLevel> level{level_from_env()};
  return level;
}

std::mutex& out_mutex() {
  static std::mutex m;
  return m;
}

char level_char(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarn:
      return 'W';
    case LogLevel::kError:
      return 'E';
    case LogLevel::kOff:
      return '-';
  }
  return '?';
}

std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<std::FILE*> g_stream{nullptr};  // null: stderr
thread_local std::string t_peer;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kOff:
      return "off";
  }
  return "?";
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;  // UTF-8 passes through
        }
    }
  }
  out += '"';
}

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  out += buf;
}

void append_value(std::string& out, const LogValue& v, bool json) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (json) {
      append_json_string(out, *s);
    } else {
      out += *s;
    }
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out += std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    if (json) {
      append_number(out, *d);
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", *d);
      out += buf;
    }
  } else {
    out += std::get<bool>(v) ? "true" : "false";
  }
}

std::string json_line(LogLevel level, std::string_view component, std::string_view message,
                      const LogFields& fields) {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string out = "{\"time\":";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", now);
  out += buf;
  out += ",\"level\":\"";
  out += level_name(level);
  out += "\",\"peer\":";
  if (t_peer.empty()) {
    out += "null";
  } else {
    append_json_string(out, t_peer);
  }
  out += ",\"module\":";
  append_json_string(out, component);
  out += ",\"message\":";
  append_json_string(out, message);
  out += ",\"fields\":{";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, fields[i].first);
    out += ':';
    append_value(out, fields[i].second, true);
  }
  out += "}}\n";
  return out;
}

std::string text_line(LogLevel level, std::string_view component, std::string_view message,
                      const LogFields& fields) {
  char head[48];
  std::snprintf(head, sizeof head, "[%9.3fs] %c ", uptime_s(), level_char(level));
  std::string out = head;
  out += component;
  out += ": ";
  out += message;
  for (const auto& [key, value] : fields) {
    out += ' ';
    out += key;
    out += '=';
    append_value(out, value, false);
  }
  out += '\n';
  return out;
}

struct CauseState {
  Clock::time_point last{};
  unsigned long suppressed = 0;
};

}  // namespace

void set_log_level(LogLevel level) {
  threshold().store(level);
}
LogLevel log_level() {
  return threshold().load();
}

double uptime_s() {
  return std::chrono::duration<double>(Clock::now() - kStart).count();
}

Status check_log_format_env() {
  const char* v = std::getenv("GOSSIP_LOG_FORMAT");
  if (v == nullptr || std::strcmp(v, "text") == 0) {
    set_log_format(LogFormat::kText);
  } else if (std::strcmp(v, "json") == 0) {
    set_log_format(LogFormat::kJson);
  } else {
    set_log_format(LogFormat::kText);
    return invalid_argument(std::string("GOSSIP_LOG_FORMAT: '") + v +
                            "' is not a log format (use text or json)");
  }
  return Status::ok();
}

void set_log_format(LogFormat format) {
  g_format.store(format);
}
LogFormat log_format() {
  return g_format.load();
}
void set_log_stream(std::FILE* stream) {
  g_stream.store(stream);
}
void set_thread_log_peer(std::string peer) {
  t_peer = std::move(peer);
}
const std::string& thread_log_peer() {
  return t_peer;
}

void log(LogLevel level, std::string_view component, std::string_view message,
         const LogFields& fields) {
  if (level < threshold().load(std::memory_order_relaxed)) return;
  const std::string line = g_format.load(std::memory_order_relaxed) == LogFormat::kJson
                               ? json_line(level, component, message, fields)
                               : text_line(level, component, message, fields);
  std::FILE* out = g_stream.load(std::memory_order_relaxed);
  std::lock_guard lock(out_mutex());
  std::fwrite(line.data(), 1, line.size(), out ? out : stderr);
  if (out) std::fflush(out);
}

bool log_rate_limited(LogLevel level, std::string_view component, std::string_view cause,
                      std::string_view message, std::chrono::milliseconds interval) {
  if (level < threshold().load(std::memory_order_relaxed)) return false;
  static std::mutex m;
  static std::unordered_map<std::string, CauseState> causes;
  unsigned long suppressed = 0;
  {
    std::lock_guard lock(m);
    std::string key(component);
    key += '/';
    key += cause;
    CauseState& st = causes[key];
    auto now = Clock::now();
    if (st.last != Clock::time_point{} && now - st.last < interval) {
      ++st.suppressed;
      return false;
    }
    st.last = now;
    suppressed = st.suppressed;
    st.suppressed = 0;
  }
  if (suppressed == 0) {
    log(level, component, message);
  } else if (log_format() == LogFormat::kJson) {
    log(level, component, message, {{"suppressed", static_cast<int64_t>(suppressed)}});
  } else {
    std::string line(message);
    line += " (" + std::to_string(suppressed) + " similar suppressed)";
    log(level, component, line);
  }
  return true;
}

}  // namespace gossip::core
