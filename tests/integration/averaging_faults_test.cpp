// Faults: a partner killed mid-exchange, a hostile peer sending a wrong-size
// blob and a NaN blob, a peer with another model, and a BUSY storm (every
// peer initiating after every step) while real training runs. Nothing may be
// applied from a failed exchange, nothing may deadlock, and every trainer's
// step counter must keep rising throughout.
#include <doctest/doctest.h>

#include "averaging_test_support.hpp"
#include "gossip/averaging/protocol.hpp"
#include "gossip/core/finite.hpp"

using namespace gossip;
using namespace gossip::averaging;
using namespace gossip::averaging::testing;

namespace {

bool finite(const std::vector<float>& v) {
  return core::first_non_finite(v) == v.size();
}

// A scripted peer speaking the averaging frames by hand over a real session.
class Hostile : public net::SessionHandler {
 public:
  void on_frame(net::Session&, uint8_t type, std::span<const uint8_t> body) override {
    std::lock_guard l(mu);
    frames.emplace_back(type, std::string(body.begin(), body.end()));
    cv.notify_all();
  }
  // Waits for a frame of `type` (or `alt`) whose body mentions `xid`.
  std::optional<std::pair<uint8_t, std::string>> wait_for(uint64_t xid,
                                                          std::vector<uint8_t> types) {
    std::unique_lock l(mu);
    std::optional<std::pair<uint8_t, std::string>> hit;
    cv.wait_for(l, 5s, [&] {
      for (auto& f : frames) {
        const bool t = std::find(types.begin(), types.end(), f.first) != types.end();
        if (t && f.second.find(std::to_string(xid)) != std::string::npos) hit = f;
      }
      return hit.has_value();
    });
    return hit;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<uint8_t, std::string>> frames;
};

}  // namespace

TEST_CASE("partner killed mid-exchange: survivor applies nothing and carries on with others") {
  IoThreads io(2);
  Swarm swarm(
      io, 3, [](int i) { return small_model(10 + i); },
      [](int i) {
        Options o;
        o.interval = 5ms;
        o.backoff = 5ms;
        o.exchange_timeout = 5s;
        o.seed = 70 + i;
        return o;
      });
  TestPeer& a = *swarm.peers[0];
  TestPeer& b = *swarm.peers[1];
  TestPeer& c = *swarm.peers[2];
  a.directory->set({b.member()});  // a can only pick b
  b.engine->set_initiating(false);
  c.engine->set_initiating(false);
  b.paused = true;  // b accepts a's OFFER but its trainer never snapshots
  const auto before = swarm.parameters()[0];
  swarm.start_loops();
  const auto t0 = std::chrono::steady_clock::now();
  while (b.engine->idle() && std::chrono::steady_clock::now() - t0 < 5s)
    std::this_thread::sleep_for(1ms);
  REQUIRE_FALSE(b.engine->idle());    // b is inside a's exchange
  std::this_thread::sleep_for(20ms);  // a's snapshot streams to b meanwhile
  b.node->close();                    // b dies abruptly
  while (a.engine->counters().exchanges_failed == 0 &&
         std::chrono::steady_clock::now() - t0 < 10s) {
    std::this_thread::sleep_for(1ms);
  }
  a.engine->set_initiating(false);
  REQUIRE(swarm.quiesce(5s));
  const auto ca = a.engine->counters();
  CHECK(ca.exchanges_failed == 1);
  CHECK(ca.exchanges_ok == 0);
  CHECK(ca.last_failure.find("closed") != std::string::npos);
  {
    std::vector<float> now(a.backend->param_count());
    a.backend->read_parameters(now);
    CHECK(now == before);  // bit for bit: nothing applied
  }
  // a carries on with c.
  a.directory->set({c.member()});
  a.engine->set_initiating(true);
  while (a.engine->counters().exchanges_ok < 3 && std::chrono::steady_clock::now() - t0 < 20s) {
    std::this_thread::sleep_for(2ms);
  }
  CHECK(a.engine->counters().exchanges_ok >= 3);
  CHECK(c.engine->counters().exchanges_ok >= 3);
  b.running = false;
  b.paused = false;
}

TEST_CASE("hostile blobs, another model and a BUSY storm while training: no corruption, no stall") {
  IoThreads io(2);
  const BlobTask task;
  train::OptimizerSpec sgd;
  sgd.lr = 0.05;
  constexpr int kGood = 5;
  auto model_of = [](int i) {
    auto m = small_model(20 + i, {16, 32, 4});
    if (i == kGood) m.activation = train::Activation::kTanh;  // same sizes, other fingerprint
    return m;
  };
  Swarm swarm(
      io, kGood + 1, model_of,
      [](int i) {
        Options o;
        o.interval_steps = 1;  // everyone initiates after every step: BUSY storm
        o.backoff = 5ms;
        o.exchange_timeout = 3s;
        o.seed = 90 + i;
        return o;
      },
      sgd);
  TestPeer& other_model = *swarm.peers[kGood];
  swarm.start_loops([&task](TestPeer& p, std::mt19937_64& rng) {
    std::vector<float> x;
    std::vector<int32_t> y;
    task.sample(rng, 32, x, y);
    p.backend->train_step(task.batch(x, y), 0.05f);
    std::this_thread::sleep_for(200us);
  });

  // The hostile peer: right fingerprint and count, then a bad blob.
  auto hostile = std::make_shared<Hostile>();
  auto router = std::make_shared<net::Router>();
  router->add(kFirstType, kLastType, hostile);
  TestPeer& victim = *swarm.peers[0];
  const size_t n = victim.backend->param_count();
  const std::string fp = fingerprint_hex(victim.backend->model().fingerprint());
  auto h_node = swarm.bare_node(router);
  auto s = io.run(h_node->dial(victim.node->local_endpoint(), victim.node->peer_id()));
  REQUIRE(s.is_ok());
  std::vector<std::string> refusals;
  // Attempts: an fp32 blob one element short, an fp32 blob with a NaN, an
  // int8 blob whose second scale is NaN.
  const WireCodec int8(WireFormat::kInt8, 64, 1.0);
  for (int attempt = 0; attempt < 3; ++attempt) {
    for (int tries = 0; tries < 200; ++tries) {
      const uint64_t xid = 1000 + attempt * 1000 + tries;
      Offer o{xid, 1, 1.0, attempt == 2 ? int8 : WireFormat::kFp32, n, fp};
      REQUIRE(io.run((*s)->send_frame(kOffer, encode(o))).is_ok());
      auto ans = hostile->wait_for(xid, {kReply, kBusy});
      REQUIRE(ans.has_value());
      if (ans->first == kBusy) {
        std::this_thread::sleep_for(2ms);
        continue;
      }
      std::vector<float> blob(attempt == 0 ? n - 1 : n, 0.01f);  // wrong size / NaN
      if (attempt == 1) blob[n / 2] = std::numeric_limits<float>::quiet_NaN();
      if (attempt == 2) {
        blob.assign((make_layout(int8, n, xid).bytes() + 3) / 4, 0.0f);
        blob[1] = std::numeric_limits<float>::quiet_NaN();
      }
      const auto header = blob_header(kSnapshotBlob, xid);
      const size_t blob_bytes = attempt == 2 ? make_layout(int8, n, xid).bytes() : blob.size() * 4;
      (void)io.run(
          (*s)->send_blob(header, {reinterpret_cast<const uint8_t*>(blob.data()), blob_bytes}));
      auto refused = hostile->wait_for(xid, {kRefuse});
      REQUIRE(refused.has_value());
      refusals.push_back(refused->second);
      break;
    }
  }
  REQUIRE(refusals.size() == 3);
  CHECK(refusals[0].find("expected exactly") != std::string::npos);
  CHECK(refusals[1].find("non-finite value at element " + std::to_string(n / 2)) !=
        std::string::npos);
  CHECK(refusals[2].find("int8 scale 1 of") != std::string::npos);
  // A codec the victim does not know: refused at once, naming the field.
  const std::string body = R"({"xid":5000,"step":1,"weight":1,"format":"int4","count":)" +
                           std::to_string(n) + R"(,"fingerprint":")" + fp + "\"}";
  REQUIRE(
      io.run((*s)->send_frame(kOffer, {reinterpret_cast<const uint8_t*>(body.data()), body.size()}))
          .is_ok());
  auto unknown = hostile->wait_for(5000, {kRefuse});
  REQUIRE(unknown.has_value());
  CHECK(unknown->second.find("OFFER rejected: OFFER: field 'format' must be") != std::string::npos);

  // Training keeps running throughout the storm: rounds 150 ms apart, at
  // least 10 and until every good peer has completed an exchange, and in
  // each every trainer takes a step within 1 s. A between_steps() that
  // waited for an exchange (timeout 3 s) would miss that; a loaded machine
  // still leaves every thread a slice within a second.
  auto all_exchanged = [&] {
    for (int i = 0; i < kGood; ++i) {
      if (swarm.peers[i]->engine->counters().exchanges_ok == 0) return false;
    }
    return true;
  };
  const auto storm_end = std::chrono::steady_clock::now() + 30s;
  for (int round = 0;
       round < 10 || (!all_exchanged() && std::chrono::steady_clock::now() < storm_end); ++round) {
    std::vector<int64_t> before(kGood + 1);
    for (int i = 0; i <= kGood; ++i) before[i] = swarm.peers[i]->step.load();
    std::this_thread::sleep_for(150ms);
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    for (int i = 0; i <= kGood; ++i) {
      while (swarm.peers[i]->step.load() == before[i] &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(2ms);
      }
      CAPTURE(round);
      CAPTURE(i);
      CHECK(swarm.peers[i]->step.load() > before[i]);
    }
  }
  REQUIRE(swarm.quiesce(10s));
  swarm.stop_loops();
  uint64_t ok = 0, busy = 0, refused = 0;
  for (int i = 0; i < kGood; ++i) {
    const auto c = swarm.peers[i]->engine->counters();
    ok += c.exchanges_ok;
    busy += c.exchanges_busy + c.busy_answered;
    refused += c.refused;
    CHECK(c.exchanges_ok > 0);
  }
  const auto wc = other_model.engine->counters();
  MESSAGE("storm: " << ok / 2 << " exchanges, " << busy << " busy, " << refused
                    << " refused among good peers; other-model peer: ok " << wc.exchanges_ok
                    << ", refused " << wc.refused << ": " << wc.last_failure);
  CHECK(busy > 0);
  CHECK(wc.exchanges_ok == 0);
  CHECK(wc.refused + wc.exchanges_failed > 0);
  const std::string fp_other = fingerprint_hex(other_model.backend->model().fingerprint());
  CHECK(wc.last_failure.find(fp) != std::string::npos);
  CHECK(wc.last_failure.find(fp_other) != std::string::npos);
  for (auto& x : swarm.parameters()) CHECK(finite(x));
  for (int i = 0; i < kGood; ++i) CHECK(task.accuracy(*swarm.peers[i]->backend) > 0.5);
}

TEST_CASE("a partner that stays busy is retried at the base backoff, not an ever-growing one") {
  IoThreads io(2);
  Swarm swarm(
      io, 3, [](int i) { return small_model(20 + i); },
      [](int i) {
        Options o;
        o.interval = 5ms;
        o.backoff = 40ms;
        o.exchange_timeout = 10s;
        o.seed = 90 + i;
        return o;
      });
  TestPeer& a = *swarm.peers[0];
  TestPeer& b = *swarm.peers[1];
  TestPeer& c = *swarm.peers[2];
  a.directory->set({b.member()});
  c.directory->set({b.member()});
  a.engine->set_initiating(false);
  b.engine->set_initiating(false);
  b.paused = true;  // b accepts c's OFFER, then never snapshots: busy until c's timeout
  swarm.start_loops();
  const auto t0 = std::chrono::steady_clock::now();
  while (b.engine->idle() && std::chrono::steady_clock::now() - t0 < 5s)
    std::this_thread::sleep_for(1ms);
  REQUIRE_FALSE(b.engine->idle());
  c.engine->set_initiating(false);
  a.engine->set_initiating(true);
  std::this_thread::sleep_for(1500ms);
  const auto ca = a.engine->counters();
  // Every attempt meets BUSY. Retries 20-60 ms apart give ~37 in 1.5 s; a
  // backoff doubling per BUSY (40, 80, ... ms) would allow about 6.
  CHECK(ca.exchanges_busy >= 15);
  CHECK(ca.exchanges_failed == 0);
  CHECK(ca.exchanges_ok == 0);
  a.engine->set_initiating(false);
  b.paused = false;  // c's exchange completes; nothing was applied to a
  CHECK(swarm.quiesce(10s));
}
