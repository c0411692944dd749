// Shared by the config unit tests: the smallest valid config, and parsing a
// JSON value into a Config or into its error message.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "gossip/config/config.hpp"

namespace config_test {

using Json = nlohmann::json;

// The smallest valid config: everything else takes its default.
inline Json base() {
  return Json::parse(R"({
    "model": {"layers": [784, 32, 10]},
    "data": {"dataset": {"type": "fashion_mnist"}}
  })");
}

// Parses `j` (relative paths against `dir`); the test fails if it does not.
inline gossip::config::Config parse_ok(const Json& j,
                                       const std::filesystem::path& dir = "/srv/cfg") {
  auto c = gossip::config::parse_config(j.dump(), dir);
  REQUIRE_MESSAGE(c.is_ok(), c.status().message());
  return std::move(c).value();
}

// Parses `j` and returns the error message ("" when it parsed).
inline std::string error_of(const Json& j) {
  auto c = gossip::config::parse_config(j.dump(), "/tmp/gossip-config-test");
  return c ? std::string() : c.status().message();
}

}  // namespace config_test
