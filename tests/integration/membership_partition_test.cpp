// Partitions and mass restarts over real loopback TCP with real encryption.
// The partition is real: each peer's net::LinkFilter refuses dials to, and
// closes sessions with, the other half, so the two halves see exactly what a
// network split shows them.
#include <doctest/doctest.h>

#include <future>
#include <set>

#include "membership_cluster.hpp"

using namespace gossip;
using namespace gossip::membership;
using namespace gossip::membership::testing;

TEST_CASE(
    "a 12-peer swarm split in two for 20 s keeps working in each half and merges within two sync "
    "intervals") {
  const Options o = fast_options();  // sync every 2 s
  Cluster c(o);
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  for (int i = 1; i < 12; ++i) REQUIRE(c.start_and_join(c.add(), {i - 1}).is_ok());
  REQUIRE(Cluster::wait_until([&] { return c.converged(); }, 10s).has_value());

  std::vector<int> left, right;
  std::set<std::string> left_ids, right_ids;
  for (int i = 0; i < 12; ++i) {
    (i < 6 ? left : right).push_back(i);
    (i < 6 ? left_ids : right_ids).insert(c.peer(i).id);
  }
  for (int i = 0; i < 12; ++i) {
    const std::set<std::string>& other = i < 6 ? right_ids : left_ids;
    c.peer(i).filter->block(
        [other](std::string_view id) { return other.count(std::string(id)) != 0; });
  }
  // While split: each half keeps a consistent view of itself and writes the
  // other half off.
  const auto t_split = std::chrono::steady_clock::now();
  auto halves_settled = [&] {
    if (!c.converged(left) || !c.converged(right)) return false;
    for (int i = 0; i < 12; ++i) {
      for (int j : (i < 6 ? right : left)) {
        if (c.view(i, j) != MemberState::kDead) return false;
      }
    }
    return true;
  };
  const auto settled = Cluster::wait_until(halves_settled, 18s);
  REQUIRE_MESSAGE(settled.has_value(), "the halves did not settle while split");
  MESSAGE("split: each half wrote the other off after " << *settled << " s");
  while (std::chrono::steady_clock::now() - t_split < 20s) {
    CHECK(c.converged(left));
    CHECK(c.converged(right));
    std::this_thread::sleep_for(250ms);
  }
  // A dial across the split is refused by the Node before it connects.
  {
    auto node = c.peer(0).node;
    const std::string to = c.peer(6).address, id = c.peer(6).id;
    auto dial_status = [](std::shared_ptr<net::Node> n, std::string a,
                          std::string i) -> asio::awaitable<core::Status> {
      auto ep = net::parse_endpoint(a);
      if (!ep) co_return ep.status();
      auto r = co_await n->dial(*ep, i);
      co_return r.status();
    };
    const auto st = asio::co_spawn(c.io(), dial_status(node, to, id), asio::use_future).get();
    CHECK(st.code() == core::Code::kUnavailable);
    CHECK(st.message().find("link filter") != std::string::npos);
  }
  uint64_t refused = 0;
  for (int i = 0; i < 12; ++i) refused += c.peer(i).filter->refused();
  CHECK(refused > 0);  // the split was enforced by the network layer

  for (int i = 0; i < 12; ++i) c.peer(i).filter->clear();
  const auto merged = Cluster::wait_until([&] { return c.converged(); }, 2 * o.sync_interval);
  REQUIRE_MESSAGE(merged.has_value(), "the views did not merge within two sync intervals");
  MESSAGE("healed: views merged after " << *merged << " s (sync interval "
                                        << o.sync_interval.count() << " ms)");
}

TEST_CASE("all peers restarting at once with the same identities: nobody stays marked dead") {
  Cluster c(fast_options());
  const int n = 10;
  REQUIRE(c.start_and_join(c.add(), {}).is_ok());
  for (int i = 1; i < n; ++i) REQUIRE(c.start_and_join(c.add(), {0}).is_ok());
  REQUIRE(Cluster::wait_until([&] { return c.converged(); }, 10s).has_value());
  std::vector<uint64_t> old_incarnation;
  for (int i = 0; i < n; ++i) old_incarnation.push_back(c.peer(i).swarm->self().incarnation);

  for (int i = 0; i < n; ++i) c.crash(i);
  std::this_thread::sleep_for(300ms);
  // Everyone back on its old address, each with the whole old swarm as its
  // bootstrap list, all joining at once.
  std::vector<std::string> bootstrap;
  for (int i = 0; i < n; ++i) bootstrap.push_back(c.peer(i).address);
  for (int i = 0; i < n; ++i) c.start(i);
  std::vector<std::future<core::Status>> joins;
  for (int i = 0; i < n; ++i) {
    Swarm* s = c.peer(i).swarm.get();
    joins.push_back(
        std::async(std::launch::async, [s, bootstrap] { return s->join_wait(bootstrap, 5s); }));
  }
  for (auto& j : joins) {
    const auto st = j.get();
    CHECK_MESSAGE(st.is_ok(), st.to_string());
  }
  const auto took = Cluster::wait_until([&] { return c.converged(); }, 10s);
  REQUIRE_MESSAGE(took.has_value(), "the restarted swarm did not converge");
  MESSAGE("all " << n << " peers restarted: every view complete after " << *took << " s");
  for (int i = 0; i < n; ++i) {
    CHECK(c.peer(i).swarm->self().incarnation > old_incarnation[static_cast<size_t>(i)]);
  }
  // And it stays that way: nobody is (or becomes) dead.
  std::this_thread::sleep_for(1500ms);
  for (int i = 0; i < n; ++i) {
    for (const Member& m : c.peer(i).swarm->members()) CHECK(m.state == MemberState::kAlive);
  }
}
