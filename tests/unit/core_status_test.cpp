// Status / Result behaviour and the rate-limited logger.
#include <doctest/doctest.h>

#include "gossip/core/log.hpp"
#include "gossip/core/status.hpp"

using namespace gossip::core;

namespace {
Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("value: must be > 0, got " + std::to_string(v));
  return v;
}
Status chain(int v) {
  auto r = parse_positive(v);
  if (!r) return r.status().with_context("config");
  return Status::ok();
}
}  // namespace

TEST_CASE("Result carries either a value or a message naming the problem") {
  auto ok = parse_positive(3);
  REQUIRE(ok.is_ok());
  CHECK(*ok == 3);
  auto bad = parse_positive(-2);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().to_string() == "invalid argument: value: must be > 0, got -2");
}

TEST_CASE("with_context prefixes the message and keeps the code") {
  Status s = chain(0);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message() == "config: value: must be > 0, got 0");
  CHECK(chain(5).is_ok());
}

TEST_CASE("log_rate_limited logs a cause once per interval") {
  set_log_level(LogLevel::kInfo);
  CHECK(log_rate_limited(LogLevel::kInfo, "test", "cause-a", "first", std::chrono::hours(1)));
  CHECK_FALSE(log_rate_limited(LogLevel::kInfo, "test", "cause-a", "again", std::chrono::hours(1)));
  CHECK(log_rate_limited(LogLevel::kInfo, "test", "cause-b", "other cause", std::chrono::hours(1)));
  set_log_level(LogLevel::kError);
  CHECK_FALSE(log_rate_limited(LogLevel::kInfo, "test", "cause-c", "below threshold"));
  set_log_level(LogLevel::kInfo);
}
