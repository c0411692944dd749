// The CUDA backend at the sizes and in the conditions the small parity tests
// never reach: a model too large for the device. Exits 77 (skipped) without a
// CUDA device.
#include "gpu_test_util.hpp"

using namespace gossip::train;
using namespace gossip::train::gpu_test;

namespace {

ModelSpec spec(std::vector<int> layers, Activation act, LossKind loss, uint64_t seed = 17) {
  ModelSpec m;
  m.layers = std::move(layers);
  m.activation = act;
  m.loss = loss;
  m.seed = seed;
  return m;
}

OptimizerSpec adam(double wd = 0.0) {
  OptimizerSpec o;
  o.kind = OptimizerKind::kAdam;
  o.lr = 1e-3;
  o.weight_decay = wd;
  return o;
}

}  // namespace

TEST_CASE("a model too large for the device fails make_backend, and the device stays usable") {
  require_device();
  // 20 matrices of 46000 x 46000: 42.3 G parameters, 169 GB for the
  // parameters alone, more than any single GPU holds.
  std::vector<int> layers(21, 46000);
  const ModelSpec huge = spec(layers, Activation::kRelu, LossKind::kSoftmaxCrossEntropy);
  REQUIRE(huge.validate().is_ok());
  BackendOptions opts;
  opts.device = "cuda";
  opts.max_batch = 8;
  auto b = make_backend(huge, adam(), opts);
  REQUIRE_FALSE(b.is_ok());
  INFO(b.status().to_string());
  CHECK(b.status().code() == gossip::core::Code::kUnavailable);
  CHECK(b.status().message().find("max_batch 8") != std::string::npos);
  CHECK(b.status().message().find("cudaErrorMemoryAllocation") != std::string::npos);
  // The failure poisoned nothing: a small model still trains like the CPU.
  const ModelSpec m = spec({12, 30, 6}, Activation::kTanh, LossKind::kSoftmaxCrossEntropy);
  const Problem p(m, 32, 3);
  auto gpu = make(m, adam(), "cuda", 32);
  auto cpu = make(m, adam(), "cpu", 32);
  CHECK(rel_close(gpu->train_step(p.all(), 1e-3f), cpu->train_step(p.all(), 1e-3f), 1e-4));
}
