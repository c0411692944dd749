// gossip.mode "outer" over real engines (real Noise sessions on loopback):
// what an outer sync point conserves, checked on the real buffers after real
// training between sync points; peers of different modes refusing each other
// (OFFER and STATE_REQ, REFUSE code mode_mismatch); a joiner downloading phi
// and v with the parameters; and a partner vanishing mid-exchange, which must
// leave phi, v and the parameters bit for bit as they were.
//
// The test thread is the trainer thread of both peers where it drives them by
// hand: between_steps() of one engine is only ever called from one thread.
#include <doctest/doctest.h>

#include <algorithm>

#include "averaging_test_support.hpp"
#include "gossip/averaging/protocol.hpp"

using namespace gossip;
using namespace gossip::averaging;
using namespace gossip::averaging::testing;

namespace {

Options outer_options(double weight, uint64_t seed, double lr = 0.6, double momentum = 0.8) {
  Options o;
  o.interval_steps = 1'000'000;  // only request_exchange() starts one
  o.exchange_timeout = 5s;
  o.backoff = 5ms;
  o.state_timeout = 3s;
  o.weight = weight;
  o.seed = seed;
  o.mode = GossipMode::kOuter;
  o.outer = {100, lr, momentum};
  return o;
}

std::vector<float> params_of(TestPeer& p) {
  std::vector<float> v(p.backend->param_count());
  p.backend->read_parameters(v);
  return v;
}

// `a` starts one exchange with `b`; both are driven from this thread until
// each has applied it (or 10 s pass).
bool exchange_once(TestPeer& a, TestPeer& b) {
  const uint64_t oka = a.engine->counters().exchanges_ok;
  const uint64_t okb = b.engine->counters().exchanges_ok;
  a.engine->request_exchange();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    a.engine->between_steps(*a.backend, a.step);
    b.engine->between_steps(*b.backend, b.step);
    if (a.engine->counters().exchanges_ok > oka && b.engine->counters().exchanges_ok > okb) {
      return true;
    }
    a.engine->wait_for_work(1ms);
  }
  return false;
}

void train_steps(TestPeer& p, const BlobTask& task, std::mt19937_64& rng, int steps) {
  std::vector<float> x;
  std::vector<int32_t> y;
  for (int i = 0; i < steps; ++i) {
    task.sample(rng, 32, x, y);
    p.backend->train_step(task.batch(x, y), 0.05f);
    ++p.step;
  }
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

}  // namespace

TEST_CASE("outer_step: lr 1, momentum 0 lands on the target exactly; Nesterov otherwise") {
  std::vector<float> phi{1.0f, -2.0f, 0.5f}, v{0.1f, 0.0f, -0.3f};
  const std::vector<float> m{0.25f, -1.0f, 0.75f};
  auto p1 = phi, v1 = v;
  outer_step({10, 1.0, 0.0}, p1, v1, m);
  CHECK(p1 == m);  // bit for bit
  auto p2 = phi, v2 = v;
  outer_step({10, 0.7, 0.9}, p2, v2, m);
  for (size_t k = 0; k < phi.size(); ++k) {
    const double g = phi[k] - m[k];
    const double vk = 0.9 * v[k] + g;
    CHECK(v2[k] == doctest::Approx(vk).epsilon(1e-6));
    CHECK(p2[k] == doctest::Approx(phi[k] - 0.7 * (g + 0.9 * vk)).epsilon(1e-6));
  }
}

TEST_CASE("outer sync points conserve the pair's pseudo-gradient, on real buffers") {
  IoThreads io(2);
  const BlobTask task;
  const double wa = 2.0, wb = 5.0, lr = 0.6, mu = 0.8;
  Swarm swarm(
      io, 2,
      [](int i) {
        return small_model(500 + i, {16, 32, 4});
      },
      [&](int i) { return outer_options(i == 0 ? wa : wb, 60 + i, lr, mu); });
  TestPeer& a = *swarm.peers[0];
  TestPeer& b = *swarm.peers[1];
  b.engine->set_initiating(false);
  // The first between_steps() starts phi at the parameters and v at zero.
  a.engine->between_steps(*a.backend, 0);
  b.engine->between_steps(*b.backend, 0);
  CHECK(a.engine->outer_state().phi == params_of(a));
  CHECK(max_abs(a.engine->outer_state().v) == 0.0f);

  std::mt19937_64 ra(1), rb(2);
  for (int round = 0; round < 4; ++round) {
    CAPTURE(round);
    train_steps(a, task, ra, 15);
    train_steps(b, task, rb, 15);
    const auto sa = params_of(a), sb = params_of(b);  // no step runs until applied: s = theta
    const OuterState oa = a.engine->outer_state(), ob = b.engine->outer_state();
    REQUIRE(exchange_once(round % 2 ? b : a, round % 2 ? a : b));
    const auto ta = params_of(a), tb = params_of(b);
    const OuterState na = a.engine->outer_state(), nb = b.engine->outer_state();

    const size_t n = sa.size();
    const float scale = std::max({max_abs(sa), max_abs(sb), max_abs(oa.phi), max_abs(ob.phi)});
    double worst_sum = 0, worst_step = 0, worst_theta = 0, consensus = 0;
    for (size_t k = 0; k < n; ++k) {
      const double ga = na.v[k] - mu * oa.v[k], gb = nb.v[k] - mu * ob.v[k];
      // (1) the consensus parts cancel: sum of w*g = sum of w*(phi - s).
      const double lhs = wa * ga + wb * gb;
      const double rhs = wa * (oa.phi[k] - sa[k]) + wb * (ob.phi[k] - sb[k]);
      worst_sum = std::max(worst_sum, std::fabs(lhs - rhs));
      // The Nesterov step on phi, and theta = phi' (no step since the snapshot).
      worst_step =
          std::max(worst_step, std::fabs(na.phi[k] - (oa.phi[k] - lr * (ga + mu * na.v[k]))));
      worst_step =
          std::max(worst_step, std::fabs(nb.phi[k] - (ob.phi[k] - lr * (gb + mu * nb.v[k]))));
      worst_theta = std::max(worst_theta, static_cast<double>(std::fabs(ta[k] - na.phi[k])));
      worst_theta = std::max(worst_theta, static_cast<double>(std::fabs(tb[k] - nb.phi[k])));
      // The pull towards the partner is really there (g differs from phi - s).
      consensus = std::max(consensus, std::fabs(ga - (oa.phi[k] - sa[k])));
    }
    MESSAGE("round " << round << ": max |sum w g - sum w (phi - s)| = " << worst_sum
                     << ", consensus part up to " << consensus << ", |x| up to " << scale);
    CHECK(worst_sum <= 2e-6 * (wa + wb) * scale);
    CHECK(worst_step <= 2e-6 * scale);
    CHECK(worst_theta <= 2e-6 * scale);
    CHECK(consensus > 1e-2);
  }
}

TEST_CASE("peers of different gossip.mode refuse each other: OFFER and STATE_REQ") {
  IoThreads io(2);
  Swarm swarm(
      io, 2, [](int) { return small_model(7); },
      [](int i) {
        Options o = outer_options(1.0, 80 + i);
        if (i == 0) o.mode = GossipMode::kParams;
        return o;
      });
  TestPeer& params = *swarm.peers[0];
  TestPeer& outer = *swarm.peers[1];
  params.engine->set_initiating(false);
  outer.engine->set_initiating(false);
  const auto p0 = params_of(params), o0 = params_of(outer);

  for (int dir = 0; dir < 2; ++dir) {
    TestPeer& from = dir == 0 ? params : outer;
    TestPeer& to = dir == 0 ? outer : params;
    from.engine->request_exchange();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (from.engine->counters().exchanges_failed == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      from.engine->between_steps(*from.backend, 1);
      to.engine->between_steps(*to.backend, 1);
      from.engine->wait_for_work(1ms);
    }
    const auto cf = from.engine->counters(), ct = to.engine->counters();
    CHECK(cf.exchanges_failed == 1);
    CHECK(cf.exchanges_ok + ct.exchanges_ok == 0);
    CHECK(ct.refused == 1);
    CHECK(cf.last_failure.find(kModeMismatch) != std::string::npos);
    CHECK(cf.last_failure.find("\"params\"") != std::string::npos);
    CHECK(cf.last_failure.find("\"outer\"") != std::string::npos);
  }
  CHECK(params_of(params) == p0);
  CHECK(params_of(outer) == o0);

  // A params-mode joiner asking an outer-mode donor: refused for good.
  swarm.start_loop(outer, {}, 5);
  Options jo;
  jo.state_timeout = 3s;
  TestPeer& joiner = swarm.add_peer(small_model(7), jo);
  auto fetched = joiner.engine->fetch_state(*joiner.backend, {outer.member()});
  REQUIRE_FALSE(fetched.is_ok());
  CHECK(fetched.status().code() == core::Code::kInvalidArgument);
  CHECK(fetched.status().message().find(kModeMismatch) != std::string::npos);
}

TEST_CASE("an outer-mode joiner downloads phi and v with the parameters") {
  IoThreads io(2);
  const BlobTask task;
  train::OptimizerSpec sgd;  // momentum: optimizer state travels too
  Swarm swarm(
      io, 2,
      [](int i) {
        return small_model(600 + i, {16, 32, 4});
      },
      [](int i) { return outer_options(1.0 + i, 90 + i); }, sgd);
  TestPeer& a = *swarm.peers[0];
  TestPeer& b = *swarm.peers[1];
  b.engine->set_initiating(false);
  a.engine->between_steps(*a.backend, 0);
  b.engine->between_steps(*b.backend, 0);
  std::mt19937_64 ra(3), rb(4);
  for (int round = 0; round < 3; ++round) {
    train_steps(a, task, ra, 10);
    train_steps(b, task, rb, 10);
    REQUIRE(exchange_once(a, b));
  }
  train_steps(a, task, ra, 5);  // theta differs from phi at the download
  const OuterState donor_outer = a.engine->outer_state();
  const auto donor_params = params_of(a);
  std::vector<float> donor_opt(a.backend->optimizer_state_count());
  a.backend->read_optimizer_state(donor_opt);
  REQUIRE(max_abs(donor_outer.v) > 0.0f);
  REQUIRE(donor_outer.phi != donor_params);

  a.engine->set_initiating(false);
  swarm.start_loop(a, {}, 6);  // serves the state between its "steps" (none train)
  TestPeer& joiner = swarm.add_peer(small_model(777, {16, 32, 4}), outer_options(1.0, 99), sgd);
  auto fetched = joiner.engine->fetch_state(*joiner.backend, {a.member()});
  REQUIRE(fetched.is_ok());
  CHECK(joiner.engine->outer_state().phi == donor_outer.phi);  // bit for bit
  CHECK(joiner.engine->outer_state().v == donor_outer.v);
  CHECK(params_of(joiner) == donor_params);
  std::vector<float> opt(joiner.backend->optimizer_state_count());
  joiner.backend->read_optimizer_state(opt);
  CHECK(opt == donor_opt);
}

TEST_CASE("outer mode: a partner vanishing mid-exchange changes nothing") {
  IoThreads io(2);
  Swarm swarm(
      io, 2, [](int i) { return small_model(20 + i); },
      [](int i) {
        Options o = outer_options(1.0, 110 + i);
        o.interval = 5ms;  // a initiates on its own, time-based
        return o;
      });
  TestPeer& a = *swarm.peers[0];
  TestPeer& b = *swarm.peers[1];
  b.engine->set_initiating(false);
  b.paused = true;  // b accepts a's OFFER but its trainer never snapshots
  const auto before = params_of(a);
  swarm.start_loops();
  const auto t0 = std::chrono::steady_clock::now();
  while (b.engine->idle() && std::chrono::steady_clock::now() - t0 < 5s)
    std::this_thread::sleep_for(1ms);
  REQUIRE_FALSE(b.engine->idle());  // b is inside a's exchange
  std::this_thread::sleep_for(20ms);
  b.node->close();  // b dies abruptly
  while (a.engine->counters().exchanges_failed == 0 &&
         std::chrono::steady_clock::now() - t0 < 10s) {
    std::this_thread::sleep_for(1ms);
  }
  swarm.stop_loops();
  const auto ca = a.engine->counters();
  CHECK(ca.exchanges_failed >= 1);
  CHECK(ca.exchanges_ok == 0);
  CHECK(params_of(a) == before);  // bit for bit
  CHECK(a.engine->outer_state().phi == before);
  CHECK(max_abs(a.engine->outer_state().v) == 0.0f);
}
