// Logging to stderr with a process-wide threshold and per-cause rate limits.
#include "gossip/core/log.hpp"

#include <atomic>
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

struct CauseState {
  Clock::time_point last{};
  unsigned long suppressed = 0;
};

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

void log(LogLevel level, std::string_view component, std::string_view message) {
  if (level < threshold().load(std::memory_order_relaxed)) return;
  std::lock_guard lock(out_mutex());
  std::fprintf(stderr, "[%9.3fs] %c %.*s: %.*s\n", uptime_s(), level_char(level),
               static_cast<int>(component.size()), component.data(),
               static_cast<int>(message.size()), message.data());
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
  } else {
    std::string line(message);
    line += " (" + std::to_string(suppressed) + " similar suppressed)";
    log(level, component, line);
  }
  return true;
}

}  // namespace gossip::core
