// The Prometheus text writer and the peer's metric families: escaping as the
// format specifies, numbers as Prometheus reads them, one HELP/TYPE per
// family with every peer's samples under it, the histogram cumulative.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "gossip/peer/exposition.hpp"
#include "gossip/peer/observe.hpp"

using namespace gossip::peer;

namespace {

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("label values and HELP text are escaped as the text format says") {
  CHECK(escape_label_value(R"(a"b\c)"
                           "\n"
                           "d") == R"(a\"b\\c\nd)");
  Exposition e;
  e.family("x_total", "counter", "line one\nback\\slash \"quoted\"");
  e.sample("x_total", {{"path", "C:\\tmp\n\"q\""}}, 3);
  CHECK(e.text() ==
        "# HELP x_total line one\\nback\\\\slash \"quoted\"\n"
        "# TYPE x_total counter\n"
        "x_total{path=\"C:\\\\tmp\\n\\\"q\\\"\"} 3\n");
  CHECK_THROWS_AS(e.family("bad-name", "gauge", ""), std::invalid_argument);
  CHECK_THROWS_AS(e.sample("ok", {{"1bad", "v"}}, 1), std::invalid_argument);
}

TEST_CASE("numbers: integers exact, shortest round-trip otherwise, NaN and infinities named") {
  CHECK(format_sample_value(0) == "0");
  CHECK(format_sample_value(123456789012.0) == "123456789012");
  CHECK(format_sample_value(0.25) == "0.25");
  CHECK(format_sample_value(0.1) == "0.1");
  CHECK(std::stod(format_sample_value(1.0 / 3)) == 1.0 / 3);
  CHECK(format_sample_value(std::nan("")) == "NaN");
  CHECK(format_sample_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_sample_value(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("render_metrics: each family once, a sample per peer, cumulative buckets") {
  PeerObservation a;
  a.facts = {"aa",
             "0.1.0",
             1,
             "127.0.0.1:7400",
             "0x0000000000000001",
             "bf16",
             gossip::averaging::GossipMode::kParams,
             10,
             0,
             {}};
  a.train = {120, 100, 0.5, std::nullopt, std::nullopt};
  a.exchanges_ok = 3;
  a.exchange_s.observe(0.004);  // first bucket
  a.exchange_s.observe(0.3);    // le 0.5
  a.exchange_s.observe(100);    // +Inf only
  a.members = {4, 1, 0, 2};
  PeerObservation b = a;
  b.facts.peer_id = "bb";
  b.last_delta_norm = 0.125;
  const std::string text = render_metrics({{{{"peer", "0"}}, a}, {{{"peer", "1"}}, b}});
  CHECK(occurrences(text, "# HELP gossip_train_steps_total ") == 1);
  CHECK(occurrences(text, "# TYPE gossip_exchange_duration_seconds histogram\n") == 1);
  CHECK(text.find("gossip_train_steps_total{peer=\"0\"} 100\n") != std::string::npos);
  CHECK(text.find("gossip_train_step{peer=\"1\"} 120\n") != std::string::npos);
  CHECK(text.find("gossip_build_info{peer=\"1\",version=\"0.1.0\",peer_id=\"bb\","
                  "model=\"0x0000000000000001\",wire=\"bf16\"} 1\n") != std::string::npos);
  CHECK(text.find("gossip_exchanges_total{peer=\"0\",result=\"ok\"} 3\n") != std::string::npos);
  CHECK(text.find("gossip_exchange_duration_seconds_bucket{peer=\"0\",le=\"0.005\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("gossip_exchange_duration_seconds_bucket{peer=\"0\",le=\"0.25\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("gossip_exchange_duration_seconds_bucket{peer=\"0\",le=\"0.5\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("gossip_exchange_duration_seconds_bucket{peer=\"0\",le=\"60\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("gossip_exchange_duration_seconds_bucket{peer=\"0\",le=\"+Inf\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("gossip_exchange_duration_seconds_count{peer=\"0\"} 3\n") != std::string::npos);
  CHECK(text.find("gossip_members{peer=\"0\",state=\"left\"} 2\n") != std::string::npos);
  // The delta norm only where there is one.
  CHECK(text.find("gossip_last_delta_norm{peer=\"0\"}") == std::string::npos);
  CHECK(text.find("gossip_last_delta_norm{peer=\"1\"} 0.125\n") != std::string::npos);
  // Every family's samples follow its TYPE line, none after another family's.
  const auto type_at = text.find("# TYPE gossip_members gauge");
  CHECK(text.find("gossip_members{", 0) > type_at);
}

TEST_CASE("observe counts this peer alive and the others by state, and says how each is reached") {
  gossip::averaging::Counters c;
  c.exchanges_ok = 2;
  c.exchanges_busy = 1;
  c.last_delta_norm = 0.5;
  c.ok_by_peer["cc"] = 2;
  std::vector<gossip::membership::Member> members(3);
  members[0].id = "cc";  // alive, a session open
  members[1].id = "aa";
  members[1].state = gossip::membership::MemberState::kSuspect;
  members[2].id = "bb";
  members[2].state = gossip::membership::MemberState::kLeft;
  gossip::net::CounterSnapshot net;
  net.bytes_received = 10;
  net.bytes_sent = 20;
  const gossip::peer::PeerFacts facts;
  const std::vector<std::string> open = {"cc"};
  const auto o = observe({facts, {7, 5, 0.25, 1.5, std::nullopt}, c, members, net, open, 4});
  CHECK(o.members == std::array<int64_t, 4>{2, 1, 0, 1});
  CHECK(o.exchanges_ok == 2);
  CHECK(o.exchanges_busy == 1);
  CHECK(o.wire_bytes_in == 10);
  CHECK(o.wire_bytes_out == 20);
  CHECK(o.last_delta_norm == 0.5);
  CHECK(o.train.steps_run == 5);
  CHECK(o.sessions == 4);
  // The view, sorted by id: how each member is reached and the exchanges with it.
  REQUIRE(o.view.size() == 3);
  CHECK(o.view[0].id == "aa");
  CHECK(o.view[0].reached == "unreachable");
  CHECK(o.view[1].id == "bb");
  CHECK(o.view[1].reached == "unknown");
  CHECK(o.view[1].state == "left");
  CHECK(o.view[2].id == "cc");
  CHECK(o.view[2].reached == "direct");
  CHECK(o.view[2].exchanges == 2);
  // STATUS's form: absent figures are null, at most max_view members.
  const auto details = gossip::peer::status_details(o, 2);
  CHECK(details["loss"] == 0.25);
  CHECK(details["test_loss"] == 1.5);
  CHECK(details["test_accuracy"].is_null());
  CHECK(details["view"].size() == 2);
  CHECK(details["view_total"] == 3);
  gossip::averaging::Counters none;
  const std::vector<gossip::membership::Member> nobody;
  const std::vector<std::string> no_sessions;
  const auto empty = observe({facts, {}, none, nobody, net, no_sessions, 0});
  CHECK_FALSE(empty.last_delta_norm.has_value());
  CHECK(gossip::peer::status_details(empty)["loss"].is_null());
}

TEST_CASE("STATUS says the averaging mode: the interval in params mode, H, lr, momentum, syncs") {
  gossip::averaging::Counters c;
  c.exchanges_ok = 3;
  const std::vector<gossip::membership::Member> nobody;
  const std::vector<std::string> no_sessions;
  const gossip::net::CounterSnapshot net;
  gossip::peer::PeerFacts facts;
  facts.interval_steps = 20;
  auto details = status_details(observe({facts, {}, c, nobody, net, no_sessions, 0}));
  CHECK(details["gossip"] ==
        nlohmann::json{{"mode", "params"}, {"interval_steps", 20}, {"interval_ms", 0}});
  facts.mode = gossip::averaging::GossipMode::kOuter;
  facts.outer = {400, 0.5, 0.8};
  details = status_details(observe({facts, {}, c, nobody, net, no_sessions, 0}));
  // Each applied exchange of an outer-mode peer is one outer step.
  CHECK(details["gossip"] ==
        nlohmann::json{{"mode", "outer"},
                       {"outer", {{"steps", 400}, {"lr", 0.5}, {"momentum", 0.8}, {"syncs", 3}}}});
}
