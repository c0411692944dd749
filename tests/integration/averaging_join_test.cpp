// Joiner: a new peer downloads the full training state (parameters, momentum,
// step) from a trained 4-peer swarm that keeps training while it serves. The
// first donor tried dies in the middle of the download (its Node is closed
// while the state blob streams through a relay): the joiner must fall back to
// another member, and its first evaluation must be within 1 point of the
// swarm's accuracy. Failures: nobody reachable (kUnavailable naming each
// address), and donors that refuse another model (kInvalidArgument).
#include <doctest/doctest.h>

#include "averaging_test_support.hpp"
#include "gossip/averaging/protocol.hpp"

using namespace gossip;
using namespace gossip::averaging;
using namespace gossip::averaging::testing;
using net::testing::Action;
using net::testing::Relay;

TEST_CASE("a joiner downloads state, falling back when its donor dies mid-download") {
  IoThreads io(2);
  const BlobTask task;
  train::OptimizerSpec sgd;  // momentum 0.9: the state includes the velocity
  sgd.lr = 0.03;
  const std::vector<int> layers{16, 256, 256, 4};  // ~71k params: the state spans many messages
  Swarm swarm(
      io, 4, [&](int i) { return small_model(300 + i, layers); },
      [](int i) {
        Options o;
        o.interval_steps = 2;
        o.backoff = 5ms;
        o.exchange_timeout = 3s;
        o.state_timeout = 3s;
        o.seed = 400 + i;
        return o;
      },
      sgd);
  auto train_fn = [&task](TestPeer& p, std::mt19937_64& rng) {
    std::vector<float> x;
    std::vector<int32_t> y;
    task.sample(rng, 32, x, y);
    p.backend->train_step(task.batch(x, y), 0.03f);
  };
  swarm.start_loops(train_fn);
  REQUIRE_MESSAGE(swarm.wait_steps(300), "a peer's loop did not reach step 300 within 60 s");

  // The first candidate is reached through a relay that kills it once the
  // state blob is flowing (dir 1 = donor to joiner; index 0 is handshake
  // message 2, then STATE, BLOB_BEGIN and the chunks).
  TestPeer& victim = *swarm.peers[0];
  std::atomic<bool> killed{false};
  Relay relay(victim.node->local_endpoint(),
              [&](size_t, int dir, size_t index, std::vector<uint8_t>&) {
                if (dir == 1 && index >= 4) {
                  if (!killed.exchange(true)) victim.node->close();
                  return Action::kDrop;
                }
                return Action::kForward;
              });
  std::vector<Member> candidates{{victim.node->peer_id(), {"127.0.0.1", relay.endpoint().port()}},
                                 swarm.peers[1]->member(),
                                 swarm.peers[2]->member(),
                                 swarm.peers[3]->member()};

  Options jo;
  jo.state_timeout = 3s;
  TestPeer& joiner = swarm.add_peer(small_model(999, layers), jo, sgd);
  const double acc_fresh = task.accuracy(*joiner.backend);
  const auto t0 = std::chrono::steady_clock::now();
  auto fetched = joiner.engine->fetch_state(*joiner.backend, candidates);
  const double fetch_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(fetched.is_ok());
  CHECK(killed.load());
  CHECK(fetched->donor == swarm.peers[1]->node->peer_id());
  CHECK(fetched->step >= 300);
  CHECK(fetched->optimizer_steps == fetched->step);
  CHECK(joiner.backend->optimizer_steps() == fetched->optimizer_steps);
  CHECK(joiner.engine->counters().state_fetch_failed == 1);
  // The donor counts a state as served when its last byte left, which can be
  // a moment after the joiner has it all.
  for (int i = 0; i < 200 && swarm.peers[1]->engine->counters().states_served == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(swarm.peers[1]->engine->counters().states_served == 1);
  {
    std::vector<float> momentum(joiner.backend->optimizer_state_count());
    joiner.backend->read_optimizer_state(momentum);
    double norm = 0;
    for (float m : momentum) norm += m * m;
    CHECK(norm > 0);  // the velocity came along
  }

  // Compare with the swarm (the three survivors) once it is quiet.
  swarm.peers[0]->running = false;
  REQUIRE(swarm.quiesce(10s));
  swarm.stop_loops();
  double swarm_acc = 0;
  for (int i = 1; i < 4; ++i) swarm_acc += task.accuracy(*swarm.peers[i]->backend, 4096) / 3;
  const double joiner_acc = task.accuracy(*joiner.backend, 4096);
  MESSAGE("joiner: fresh " << acc_fresh << ", after download " << joiner_acc << " (swarm "
                           << swarm_acc << "), state from step " << fetched->step << " in "
                           << fetch_s << " s including one dead donor");
  CHECK(std::fabs(joiner_acc - swarm_acc) <= 0.01);
  CHECK(swarm_acc > 0.8);
}

TEST_CASE("fetch_state with no reachable member reports every failure") {
  IoThreads io(2);
  Swarm swarm(
      io, 1, [](int) { return small_model(1); },
      [](int) {
        Options o;
        o.state_timeout = 1s;
        return o;
      });
  auto& p = *swarm.peers[0];
  const std::string nobody(64, 'a');
  auto r = p.engine->fetch_state(*p.backend, {{nobody, "127.0.0.1", 1}});
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == core::Code::kUnavailable);
  CHECK(r.status().message().find("127.0.0.1:1") != std::string::npos);
}

TEST_CASE(
    "fetch_state: donors with another model refuse for good (kInvalidArgument), not "
    "'unavailable'") {
  IoThreads io(2);
  // Two members of a 16-32-4 swarm; the joiner has 16-48-4.
  Swarm swarm(
      io, 2,
      [](int i) {
        return small_model(10 + i, {16, 32, 4});
      },
      [](int) {
        Options o;
        o.state_timeout = 2s;
        return o;
      });
  Options jo;
  jo.state_timeout = 2s;
  TestPeer& joiner = swarm.add_peer(small_model(99, {16, 48, 4}), jo);
  auto r = joiner.engine->fetch_state(*joiner.backend,
                                      {swarm.peers[0]->member(), swarm.peers[1]->member()});
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == core::Code::kInvalidArgument);
  CAPTURE(r.status().message());
  CHECK(r.status().message().find("every member refused this peer's model") != std::string::npos);
  CHECK(r.status().message().find(
            fingerprint_hex(swarm.peers[0]->backend->model().fingerprint())) != std::string::npos);

  // One refusal and one dead member: not a settled mismatch, so the usual
  // 'unavailable' (the peer may still find a matching member later).
  auto mixed = joiner.engine->fetch_state(
      *joiner.backend, {swarm.peers[0]->member(), {std::string(64, 'b'), "127.0.0.1", 1}});
  REQUIRE_FALSE(mixed.is_ok());
  CHECK(mixed.status().code() == core::Code::kUnavailable);
}
