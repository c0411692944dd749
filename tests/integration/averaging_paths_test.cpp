// The two ways averaging reaches parameters (src/averaging/snapshot.cpp):
// in place through Backend::host_parameters() (the CPU backend) and staged
// through Backend::snapshot() / apply_delta() (any backend that keeps its
// parameters off the host, i.e. CUDA). No GPU is needed to run the staged
// path: a CPU backend that hides its host view takes it. Peers of both kinds
// average with each other over loopback and the weighted sum stays put.
#include <doctest/doctest.h>

#include "averaging_test_support.hpp"

using namespace gossip;
using namespace gossip::averaging;
using namespace gossip::averaging::testing;

namespace {

// A CPU backend seen as a device backend: no host view of its parameters.
class StagedOnly final : public train::Backend {
 public:
  explicit StagedOnly(std::unique_ptr<train::Backend> inner) : inner_(std::move(inner)) {}
  std::string device_name() const override { return inner_->device_name(); }
  const train::ModelSpec& model() const override { return inner_->model(); }
  const train::OptimizerSpec& optimizer() const override { return inner_->optimizer(); }
  float train_step(const data::Batch& b, float lr) override { return inner_->train_step(b, lr); }
  train::EvalStats evaluate(const data::Batch& b) override { return inner_->evaluate(b); }
  std::span<const float> snapshot() override {
    ++snapshots;
    return inner_->snapshot();
  }
  void apply_delta(float scale, std::span<const float> other, std::span<const float> own) override {
    ++deltas;
    inner_->apply_delta(scale, other, own);
  }
  // host_parameters(): the default, empty.
  void read_parameters(std::span<float> out) override { inner_->read_parameters(out); }
  void write_parameters(std::span<const float> in) override { inner_->write_parameters(in); }
  void read_optimizer_state(std::span<float> out) override { inner_->read_optimizer_state(out); }
  void write_optimizer_state(std::span<const float> in) override {
    inner_->write_optimizer_state(in);
  }
  int64_t optimizer_steps() const override { return inner_->optimizer_steps(); }
  void set_optimizer_steps(int64_t s) override { inner_->set_optimizer_steps(s); }

  std::atomic<int> snapshots{0}, deltas{0};

 private:
  std::unique_ptr<train::Backend> inner_;
};

long double weighted_sum(const std::vector<std::vector<float>>& xs) {
  long double s = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    for (float v : xs[k]) s += static_cast<long double>(k + 1) * v;
  }
  return s;
}
long double abs_weighted_sum(const std::vector<std::vector<float>>& xs) {
  long double s = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    for (float v : xs[k]) s += static_cast<long double>(k + 1) * std::fabs(v);
  }
  return s;
}

void run_mixed(WireCodec wire) {
  IoThreads io(2);
  Swarm swarm(
      io, 4, [](int i) { return small_model(200 + i); },
      [wire](int i) {
        Options o;
        o.interval = 4ms;
        o.wire = wire;
        o.weight = i + 1.0;
        o.backoff = 2ms;
        o.exchange_timeout = 5s;
        o.seed = 30 + i;
        return o;
      });
  std::vector<StagedOnly*> staged;
  for (size_t i = 1; i < swarm.peers.size(); i += 2) {
    auto wrapped = std::make_unique<StagedOnly>(std::move(swarm.peers[i]->backend));
    staged.push_back(wrapped.get());
    swarm.peers[i]->backend = std::move(wrapped);
  }
  const auto x0 = swarm.parameters();
  const double d0 = consensus_distance(x0);
  const auto t0 = std::chrono::steady_clock::now();
  swarm.start_loops();
  while (swarm.total_ok() < 200 && std::chrono::steady_clock::now() - t0 < 30s) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(swarm.quiesce());
  swarm.stop_loops();
  const auto x1 = swarm.parameters();
  REQUIRE(swarm.total_ok() >= 200);
  REQUIRE(swarm.total_ok() % 2 == 0);
  // The staged peers really went through snapshot() and apply_delta().
  for (StagedOnly* b : staged) {
    CHECK(b->snapshots > 0);
    CHECK(b->deltas > 0);
  }
  const double rel =
      static_cast<double>(std::fabs(weighted_sum(x1) - weighted_sum(x0)) / abs_weighted_sum(x0));
  MESSAGE(describe(wire) << ": " << swarm.total_ok() / 2 << " exchanges, |dS|/A = " << rel);
  CHECK(rel <= 1e-6);
  CHECK(consensus_distance(x1) < 1e-2 * d0);
}

}  // namespace

TEST_CASE("in-place and staged peers average together, fp32 wire") {
  run_mixed(WireFormat::kFp32);
}

TEST_CASE("in-place and staged peers average together, bf16 wire") {
  run_mixed(WireFormat::kBf16);
}

// The staged path decodes and calls Backend::apply_delta; the in-place path
// applies from the two int8 blobs: the same float expression per element,
// so the mass holds across the two.
TEST_CASE("in-place and staged peers average together, int8 wire") {
  run_mixed(WireFormat::kInt8);
}

TEST_CASE("in-place and staged peers average together, randk wire") {
  run_mixed(WireCodec(WireFormat::kRandK, 64, 0.5));
}
