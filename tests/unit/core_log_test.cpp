// The log's two formats: GOSSIP_LOG_FORMAT=json gives one JSON object per
// line that a JSON parser reads back field for field (escapes, fields, the
// thread's peer, rate-limit counts); the default text format is unchanged;
// a bad GOSSIP_LOG_FORMAT is an error naming the variable.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gossip/core/log.hpp"

using namespace gossip::core;

namespace {

// Lines the log writes while `fn` runs, with `format`.
template <typename Fn>
std::vector<std::string> captured(LogFormat format, Fn fn) {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  set_log_level(LogLevel::kDebug);
  set_log_format(format);
  set_log_stream(file);
  fn();
  set_log_stream(nullptr);
  set_log_format(LogFormat::kText);
  set_log_level(LogLevel::kInfo);
  std::rewind(file);
  std::vector<std::string> lines;
  std::string line;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) {
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line += static_cast<char>(c);
    }
  }
  std::fclose(file);
  CHECK(line.empty());  // every line ends with a newline
  return lines;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

TEST_CASE("json: one object per line with time, level, peer, module, message and fields") {
  const double t0 = unix_now();
  const std::string tricky = "quote \" backslash \\ newline \n tab \t bell \x07 utf-8 \xc3\xa9";
  const auto lines = captured(LogFormat::kJson, [&] {
    log_info("swarm", "joined: 3f2a (127.0.0.1:7400)");
    set_thread_log_peer("3f2a9c01");
    log(LogLevel::kWarn, "averaging", tricky,
        {{"partner", std::string("b7e1")},
         {"bytes", int64_t{1234567890123}},
         {"seconds", 0.25},
         {"ok", false}});
    log_debug("net", "debug passes the threshold here");
    set_thread_log_peer("");
    log_error("peer", "");
  });
  REQUIRE(lines.size() == 4);
  std::vector<nlohmann::json> objs;
  for (const auto& l : lines) {
    CAPTURE(l);
    auto j = nlohmann::json::parse(l);  // throws (fails the test) on a bad line
    REQUIRE(j.is_object());
    CHECK(j.size() == 6);
    for (const char* key : {"time", "level", "peer", "module", "message", "fields"}) {
      CHECK(j.contains(key));
    }
    CHECK(j["time"].is_number());
    CHECK(j["time"].get<double>() >= t0 - 1);
    CHECK(j["time"].get<double>() <= unix_now() + 1);
    CHECK(j["fields"].is_object());
    objs.push_back(std::move(j));
  }
  CHECK(objs[0]["level"] == "info");
  CHECK(objs[0]["module"] == "swarm");
  CHECK(objs[0]["message"] == "joined: 3f2a (127.0.0.1:7400)");
  CHECK(objs[0]["peer"].is_null());
  CHECK(objs[0]["fields"].empty());

  CHECK(objs[1]["level"] == "warn");
  CHECK(objs[1]["peer"] == "3f2a9c01");
  CHECK(objs[1]["message"] == tricky);  // every escape read back to the same bytes
  CHECK(objs[1]["fields"]["partner"] == "b7e1");
  CHECK(objs[1]["fields"]["bytes"].get<int64_t>() == 1234567890123);
  CHECK(objs[1]["fields"]["seconds"].get<double>() == 0.25);
  CHECK(objs[1]["fields"]["ok"] == false);

  CHECK(objs[2]["level"] == "debug");
  CHECK(objs[3]["level"] == "error");
  CHECK(objs[3]["message"] == "");
  CHECK(objs[3]["peer"].is_null());
}

TEST_CASE("json: the peer is per thread, and non-finite numbers are null") {
  const auto lines = captured(LogFormat::kJson, [] {
    set_thread_log_peer("aaaa");
    std::thread other([] {
      set_thread_log_peer("bbbb");
      log_info("peer", "from the other thread", {{"loss", std::nan("")}});
    });
    other.join();
    log_info("peer", "from this thread");
    set_thread_log_peer("");
  });
  REQUIRE(lines.size() == 2);
  const auto a = nlohmann::json::parse(lines[0]);
  const auto b = nlohmann::json::parse(lines[1]);
  CHECK(a["peer"] == "bbbb");
  CHECK(a["fields"]["loss"].is_null());
  CHECK(b["peer"] == "aaaa");
}

TEST_CASE("json: a rate-limited line carries the suppressed count as a field") {
  const auto lines = captured(LogFormat::kJson, [] {
    CHECK(log_rate_limited(LogLevel::kWarn, "net", "json-cause", "refused",
                           std::chrono::milliseconds(30)));
    CHECK_FALSE(log_rate_limited(LogLevel::kWarn, "net", "json-cause", "refused",
                                 std::chrono::milliseconds(30)));
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    CHECK(log_rate_limited(LogLevel::kWarn, "net", "json-cause", "refused",
                           std::chrono::milliseconds(30)));
  });
  REQUIRE(lines.size() == 2);
  CHECK(nlohmann::json::parse(lines[0])["fields"].empty());
  const auto second = nlohmann::json::parse(lines[1]);
  CHECK(second["message"] == "refused");
  CHECK(second["fields"]["suppressed"] == 1);
}

TEST_CASE("text stays the readable default, with fields as key=value") {
  const auto lines = captured(LogFormat::kText, [] {
    log_info("swarm", "joined", {{"members", int64_t{3}}, {"via", std::string("seed")}});
  });
  REQUIRE(lines.size() == 1);
  CAPTURE(lines[0]);
  CHECK(lines[0].front() == '[');
  CHECK(lines[0].find("s] I swarm: joined members=3 via=seed") != std::string::npos);
}

TEST_CASE("GOSSIP_LOG_FORMAT: text, json, or an error naming the variable") {
  ::unsetenv("GOSSIP_LOG_FORMAT");
  CHECK(check_log_format_env().is_ok());
  CHECK(log_format() == LogFormat::kText);
  ::setenv("GOSSIP_LOG_FORMAT", "json", 1);
  CHECK(check_log_format_env().is_ok());
  CHECK(log_format() == LogFormat::kJson);
  ::setenv("GOSSIP_LOG_FORMAT", "text", 1);
  CHECK(check_log_format_env().is_ok());
  CHECK(log_format() == LogFormat::kText);
  ::setenv("GOSSIP_LOG_FORMAT", "JSON ", 1);
  const Status bad = check_log_format_env();
  CHECK(bad.code() == Code::kInvalidArgument);
  CHECK(bad.message() == "GOSSIP_LOG_FORMAT: 'JSON ' is not a log format (use text or json)");
  CHECK(log_format() == LogFormat::kText);
  ::unsetenv("GOSSIP_LOG_FORMAT");
}
