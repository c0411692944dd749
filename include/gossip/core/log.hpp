// Logging: one line per event on stderr, with level, time since start and a
// component tag. Thread-safe. Secrets must never be passed here.
//
// Two formats (GOSSIP_LOG_FORMAT, read once by check_log_format_env()):
//   text (default): "[  12.345s] W net: message [key=value ...]"
//   json: one JSON object per line, for log collectors:
//     {"time":1765139000.123,"level":"warn","peer":"3f2a…c901","module":"net",
//      "message":"...","fields":{"key":value,...}}
//   `time` is Unix seconds (millisecond resolution), `peer` the short peer id
//   the logging thread runs for (null when none, e.g. before the keys load),
//   `fields` the structured values a call passes (an empty object if none).
//
// `log_rate_limited(level, component, cause, message, interval)` rate-limits
// repeated causes (refused connections, bad frames) so a hostile or broken
// peer cannot flood the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Global threshold; default kInfo, or GOSSIP_LOG=debug|info|warn|error|off.
void set_log_level(LogLevel level);
LogLevel log_level();

enum class LogFormat { kText, kJson };

// Reads GOSSIP_LOG_FORMAT (unset or "text": text; "json": JSON lines) and
// sets the format. A bad value is kInvalidArgument naming the variable and
// the accepted values; the format then stays text. Programs call it once at
// start-up (cli::Program::parse does).
Status check_log_format_env();
void set_log_format(LogFormat format);
LogFormat log_format();

// Where lines go (default stderr; tests point it at a file). Not owned.
void set_log_stream(std::FILE* stream);

// The peer this thread works for, as logged in JSON's "peer" (usually the
// short peer id; empty: none). A process hosting many peers sets it on each
// peer's threads.
void set_thread_log_peer(std::string peer);
const std::string& thread_log_peer();

// A structured value of a log line: JSON's "fields", text's "key=value".
using LogValue = std::variant<std::string, int64_t, double, bool>;
using LogFields = std::vector<std::pair<std::string, LogValue>>;

// Writes "[  12.345s] W net: message" (or its JSON line) if level passes the
// threshold. Any thread.
void log(LogLevel level, std::string_view component, std::string_view message,
         const LogFields& fields = {});

inline void log_debug(std::string_view c, std::string_view m, const LogFields& f = {}) {
  log(LogLevel::kDebug, c, m, f);
}
inline void log_info(std::string_view c, std::string_view m, const LogFields& f = {}) {
  log(LogLevel::kInfo, c, m, f);
}
inline void log_warn(std::string_view c, std::string_view m, const LogFields& f = {}) {
  log(LogLevel::kWarn, c, m, f);
}
inline void log_error(std::string_view c, std::string_view m, const LogFields& f = {}) {
  log(LogLevel::kError, c, m, f);
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
