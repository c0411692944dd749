// Reach (frames 0x60..0x63) over real loopback sessions: a joiner learns the
// address a member sees it at and is confirmed public by a real dial-back;
// a DIALBACK_REQ aimed at another IP than the session's is refused, repeats
// are rate-limited, and a DIALBACK_RESULT claiming success confirms nothing.
// The NAT cases (private, mapped) run in the namespace lab (nat_lab_test.py).
#include <doctest/doctest.h>

#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "gossip/membership/reach.hpp"
#include "membership_cluster.hpp"

using namespace gossip;
using namespace gossip::membership;
using namespace gossip::membership::testing;
using nlohmann::json;

namespace {

// Records every reach frame a raw Node receives.
struct Recorder final : net::SessionHandler {
  void on_frame(net::Session&, uint8_t type, std::span<const uint8_t> body) override {
    std::lock_guard l(mu);
    frames.emplace_back(type, json::parse(body.begin(), body.end(), nullptr, false));
  }
  std::vector<std::pair<uint8_t, json>> of(uint8_t type) {
    std::lock_guard l(mu);
    std::vector<std::pair<uint8_t, json>> out;
    for (const auto& f : frames) {
      if (f.first == type) out.push_back(f);
    }
    return out;
  }
  std::mutex mu;
  std::vector<std::pair<uint8_t, json>> frames;
};

void send(net::Session& s, uint8_t type, const json& j) {
  const std::string text = j.dump();
  REQUIRE(s.try_send_frame(type, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
}

}  // namespace

TEST_CASE("a joiner is dialed back at the address a member sees, and confirmed public") {
  Cluster c(fast_options());
  const int a = c.add(), b = c.add();
  c.start(a);
  c.start(b);
  ReachConfig ra, rc;
  ra.listen_port = c.peer(a).port;
  rc.listen_port = c.peer(b).port;
  Reach reach_a(c.io(), c.peer(a).node, *c.peer(a).swarm, ra, c.peer(a).address);
  Reach reach_b(c.io(), c.peer(b).node, *c.peer(b).swarm, rc, c.peer(b).address);
  // Registered after start: the Router's table is only read when frames come.
  reach_a.attach(*c.peer(a).router);
  reach_b.attach(*c.peer(b).router);
  REQUIRE(c.peer(b).swarm->join_wait({c.peer(a).address}, 5s).is_ok());
  const auto took =
      Cluster::wait_until([&] { return reach_b.status().state == Reachability::kPublic; }, 5s);
  REQUIRE_MESSAGE(took, "state " << reachability_name(reach_b.status().state) << ", failure "
                                 << reach_b.status().last_failure);
  const auto st = reach_b.status();
  CHECK(st.observed.rfind("127.0.0.1:", 0) == 0);
  CHECK(st.observed_by == c.peer(a).id);
  CHECK(st.address == c.peer(b).address);
  CHECK(st.confirmed_by == c.peer(a).id);
  CHECK(reach_a.status().dialbacks_served == 1);
  CHECK_FALSE(c.peer(b).swarm->self().is_private());
  // The dial-back session a opened told a where it comes from, and b
  // returns the favour: the founder is confirmed too, never private.
  CHECK(Cluster::wait_until([&] { return reach_a.status().state == Reachability::kPublic; }, 5s));
  MESSAGE("confirmed public " << *took << " s after the join returned");
  reach_a.stop();
  reach_b.stop();
}

TEST_CASE("a mapping granted just after a failed dial-back is confirmed without the retry") {
  // b's first candidate (observed IP, a port nobody listens on) fails; the
  // router's mapping (here: b's real address) arrives at once after. The
  // helper serves one request per requester per 5 s, so asking again at
  // once would be refused as rate limited and b would stay private for the
  // 30 s retry; b must wait out the helper's interval and be confirmed then.
  Cluster c(fast_options());
  const int a = c.add(), b = c.add();
  c.start(a);
  c.start(b);
  uint16_t closed_port = 0;
  {
    asio::ip::tcp::acceptor probe(c.io(), {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  ReachConfig ra, rb;
  ra.listen_port = c.peer(a).port;
  rb.listen_port = closed_port;
  Reach reach_a(c.io(), c.peer(a).node, *c.peer(a).swarm, ra, c.peer(a).address);
  Reach reach_b(c.io(), c.peer(b).node, *c.peer(b).swarm, rb, c.peer(b).address);
  reach_a.attach(*c.peer(a).router);
  reach_b.attach(*c.peer(b).router);
  REQUIRE(c.peer(b).swarm->join_wait({c.peer(a).address}, 5s).is_ok());
  REQUIRE_MESSAGE(
      Cluster::wait_until([&] { return reach_b.status().state == Reachability::kPrivate; }, 10s),
      "state " << std::string(reachability_name(reach_b.status().state)));
  CHECK(reach_b.status().last_failure.find(std::to_string(closed_port)) != std::string::npos);
  reach_b.set_mapped_address(c.peer(b).address);
  const auto took =
      Cluster::wait_until([&] { return reach_b.status().state == Reachability::kPublic; }, 12s);
  REQUIRE_MESSAGE(took, "state " << reachability_name(reach_b.status().state) << ", failure "
                                 << reach_b.status().last_failure);
  CHECK(reach_b.status().address == c.peer(b).address);
  CHECK(reach_b.status().mapped == c.peer(b).address);
  CHECK(Cluster::wait_until([&] { return c.peer(b).swarm->self().flags == kMemberMapped; }, 2s));
  CHECK(reach_a.status().dialbacks_refused == 0);
  MESSAGE("confirmed at the mapping " << *took << " s after it was granted");
  reach_a.stop();
  reach_b.stop();
}

TEST_CASE("dial-back requests: another IP is refused, repeats are rate-limited") {
  Cluster c(fast_options());
  const int v = c.add();
  c.start(v);
  Reach victim(c.io(), c.peer(v).node, *c.peer(v).swarm, ReachConfig{}, c.peer(v).address);
  victim.attach(*c.peer(v).router);

  // The asker: a raw Node on 127.0.0.1 with a listener of its own.
  auto recorder = std::make_shared<Recorder>();
  auto asker = std::make_shared<net::Node>(c.io(), net::NetConfig{},
                                           crypto::StaticKeypair::generate(), c.swarm_key());
  asker->set_handler(recorder);
  REQUIRE(asker->listen({asio::ip::make_address("127.0.0.1"), 0}).is_ok());
  const uint16_t port = asker->local_endpoint().port();
  std::promise<core::Result<std::shared_ptr<net::Session>>> dialed;
  const asio::ip::tcp::endpoint victim_ep(asio::ip::make_address("127.0.0.1"), c.peer(v).port);
  asio::co_spawn(
      c.io(), [&]() -> asio::awaitable<void> { dialed.set_value(co_await asker->dial(victim_ep)); },
      asio::detached);
  auto session = dialed.get_future().get();
  REQUIRE(session.is_ok());
  // The victim accepted: it tells the asker where it saw it.
  REQUIRE(Cluster::wait_until([&] { return !recorder->of(kObservedFrame).empty(); }, 3s));
  CHECK(recorder->of(kObservedFrame)[0].second["addr"].get<std::string>().rfind("127.0.0.1:", 0) ==
        0);

  // Aimed at a third party: refused without a dial.
  send(**session, kDialbackReqFrame, {{"addr", "127.0.0.2:" + std::to_string(port)}, {"nonce", 1}});
  // The asker's own IP: dialed back; the DIALBACK arrives on a new session.
  send(**session, kDialbackReqFrame, {{"addr", "127.0.0.1:" + std::to_string(port)}, {"nonce", 2}});
  // Again at once: rate-limited.
  send(**session, kDialbackReqFrame, {{"addr", "127.0.0.1:" + std::to_string(port)}, {"nonce", 3}});
  REQUIRE(Cluster::wait_until([&] { return recorder->of(kDialbackResultFrame).size() == 3; }, 5s));
  REQUIRE(Cluster::wait_until([&] { return recorder->of(kDialbackFrame).size() == 1; }, 5s));
  std::map<uint64_t, json> verdict;
  for (const auto& [type, j] : recorder->of(kDialbackResultFrame)) verdict[j["nonce"]] = j;
  CHECK(verdict[1]["ok"] == false);
  CHECK(verdict[1]["reason"].get<std::string>().find("not the IP") != std::string::npos);
  CHECK(verdict[2]["ok"] == true);
  CHECK(verdict[3]["ok"] == false);
  CHECK(verdict[3]["reason"] == "rate limited");
  CHECK(recorder->of(kDialbackFrame)[0].second["nonce"] == 2);
  CHECK(victim.status().dialbacks_served == 1);
  CHECK(victim.status().dialbacks_refused == 2);

  // A forged verdict: "ok" for a request the victim never made changes nothing.
  send(**session, kDialbackResultFrame, {{"nonce", 7}, {"ok", true}, {"reason", ""}});
  send(**session, kDialbackFrame, {{"nonce", 7}});
  std::this_thread::sleep_for(300ms);
  CHECK(victim.status().state == Reachability::kUnknown);
  CHECK(c.peer(v).swarm->self().address == c.peer(v).address);
  victim.stop();
  asker->close();
}
