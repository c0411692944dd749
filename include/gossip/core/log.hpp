// Logging: one line per event on stderr, with level, time since start and a
// component tag. Thread-safe. Secrets must never be passed here.
//
// `log_rate_limited(level, component, cause, message, interval)` rate-limits
// repeated causes (refused connections, bad frames) so a hostile or broken
// peer cannot flood the log.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace gossip::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Global threshold; default kInfo, or GOSSIP_LOG=debug|info|warn|error|off.
void set_log_level(LogLevel level);
LogLevel log_level();

// Writes "[  12.345s] W net: message" to stderr if level passes the threshold.
// Any thread.
void log(LogLevel level, std::string_view component, std::string_view message);

inline void log_debug(std::string_view c, std::string_view m) {
  log(LogLevel::kDebug, c, m);
}
inline void log_info(std::string_view c, std::string_view m) {
  log(LogLevel::kInfo, c, m);
}
inline void log_warn(std::string_view c, std::string_view m) {
  log(LogLevel::kWarn, c, m);
}
inline void log_error(std::string_view c, std::string_view m) {
  log(LogLevel::kError, c, m);
}

// Logs at most once per `interval` for the same `cause` key; returns whether it
// logged. Suppressed repeats are counted and reported with the next line.
// Any thread.
bool log_rate_limited(LogLevel level, std::string_view component, std::string_view cause,
                      std::string_view message,
                      std::chrono::milliseconds interval = std::chrono::seconds(10));

// Seconds since the process started logging (monotonic).
double uptime_s();

}  // namespace gossip::core
