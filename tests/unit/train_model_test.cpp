// ModelSpec: parsing, validation, flat layout, fingerprint and the seeded
// initialisation that every backend starts from.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "gossip/train/model.hpp"

using namespace gossip::train;

namespace {
ModelSpec mnist_mlp() {
  ModelSpec s;
  s.layers = {784, 256, 128, 10};
  return s;
}
}  // namespace

TEST_CASE("activation and loss names parse and print back") {
  for (const char* name : {"relu", "tanh", "gelu"}) {
    auto a = parse_activation(name);
    REQUIRE(a.is_ok());
    CHECK(std::string(activation_name(*a)) == name);
  }
  for (const char* name : {"softmax_cross_entropy", "mse"}) {
    auto l = parse_loss(name);
    REQUIRE(l.is_ok());
    CHECK(std::string(loss_name(*l)) == name);
  }
  auto bad = parse_activation("sigmoid");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("model.activation") != std::string::npos);
  CHECK(bad.status().message().find("sigmoid") != std::string::npos);
  CHECK_FALSE(parse_loss("hinge").is_ok());
}

TEST_CASE("validate names the offending layer") {
  ModelSpec s;
  s.layers = {10};
  CHECK(s.validate().message().find("at least 2") != std::string::npos);
  s.layers = {10, 0, 3};
  CHECK(s.validate().message().find("model.layers[1]") != std::string::npos);
  s.layers = {10, 1};
  CHECK(s.validate().message().find("softmax_cross_entropy") != std::string::npos);
  s.loss = LossKind::kMse;
  CHECK(s.validate().is_ok());
  CHECK(mnist_mlp().validate().is_ok());
}

TEST_CASE("param_count and layer_views follow the documented flat layout") {
  const ModelSpec s = mnist_mlp();
  CHECK(s.param_count() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  CHECK(s.param_count() == 235146);
  const auto v = s.layer_views();
  REQUIRE(v.size() == 3);
  CHECK(v[0].in == 784);
  CHECK(v[0].out == 256);
  CHECK(v[0].weight_offset == 0);
  CHECK(v[0].bias_offset == 784 * 256);
  CHECK(v[1].weight_offset == 784 * 256 + 256);
  CHECK(v[1].bias_offset == v[1].weight_offset + 256 * 128);
  CHECK(v[2].weight_offset == v[1].bias_offset + 128);
  CHECK(v[2].bias_offset + 10 == s.param_count());
}

TEST_CASE("fingerprint depends on the architecture, not on the seed") {
  ModelSpec a = mnist_mlp();
  ModelSpec b = a;
  b.seed = 12345;
  CHECK(a.fingerprint() == b.fingerprint());
  b.activation = Activation::kTanh;
  CHECK(a.fingerprint() != b.fingerprint());
  b = a;
  b.loss = LossKind::kMse;
  CHECK(a.fingerprint() != b.fingerprint());
  b = a;
  b.layers = {784, 256, 128, 11};
  CHECK(a.fingerprint() != b.fingerprint());
  // Pinned: peers built by other compilers or releases must agree.
  CHECK(a.fingerprint() == 0x530af80e3078cf1dull);
  CHECK(a.describe() == "784-256-128-10 relu softmax_cross_entropy");
}

TEST_CASE("init_parameters is deterministic, seeded, bounded, with zero biases") {
  ModelSpec s = mnist_mlp();
  std::vector<float> p1(s.param_count()), p2(s.param_count()), p3(s.param_count());
  init_parameters(s, p1);
  init_parameters(s, p2);
  CHECK(std::memcmp(p1.data(), p2.data(), p1.size() * sizeof(float)) == 0);
  s.seed = 2;
  init_parameters(s, p3);
  CHECK(std::memcmp(p1.data(), p3.data(), p1.size() * sizeof(float)) != 0);

  s.seed = 1;
  for (const LayerView& v : s.layer_views()) {
    const double bound = std::sqrt(6.0 / v.in);  // He uniform for relu
    double sum = 0, sq = 0, maxabs = 0;
    const size_t n = static_cast<size_t>(v.in) * v.out;
    for (size_t i = 0; i < n; ++i) {
      const double w = p1[v.weight_offset + i];
      sum += w;
      sq += w * w;
      maxabs = std::max(maxabs, std::abs(w));
    }
    CHECK(maxabs <= bound);
    CHECK(maxabs > 0.9 * bound);
    CHECK(std::abs(sum / n) < 0.05 * bound);
    CHECK(sq / n == doctest::Approx(bound * bound / 3).epsilon(0.1));  // var of U(-b, b)
    for (int i = 0; i < v.out; ++i) CHECK(p1[v.bias_offset + i] == 0.0f);
  }

  // Xavier bound for tanh.
  s.activation = Activation::kTanh;
  init_parameters(s, p3);
  const double xavier = std::sqrt(6.0 / (784 + 256));
  float m = 0;
  for (size_t i = 0; i < 784 * 256; ++i) m = std::max(m, std::abs(p3[i]));
  CHECK(m <= xavier);
  CHECK(m > 0.9 * xavier);

  // Pinned values: every platform and backend must start from these bits.
  s = mnist_mlp();
  init_parameters(s, p1);
  double checksum = 0;
  for (float v : p1) checksum += v;
  CHECK(p1[0] == 0x1.7d9c78p-7f);
  CHECK(p1[1] == 0x1.604784p-5f);
  CHECK(p1[784 * 256 + 256] == 0x1.a0decep-6f);  // first weight of layer 1
  CHECK(checksum == doctest::Approx(59.256677361045405).epsilon(1e-12));
}

TEST_CASE("decay_parts tile the buffer: mlp weights decay, biases never; gpt follows its table") {
  ModelSpec m;
  m.layers = {5, 7, 3};
  const std::vector<DecayPart> parts = m.decay_parts();
  REQUIRE(parts.size() == 4);
  const bool decays[] = {true, false, true, false};
  const size_t sizes[] = {35, 7, 21, 3};
  size_t at = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    CHECK(parts[i].offset == at);
    CHECK(parts[i].size == sizes[i]);
    CHECK(parts[i].decay == decays[i]);
    at += parts[i].size;
  }
  CHECK(at == m.param_count());

  ModelSpec g;
  g.family = ModelFamily::kGpt;
  g.gpt.block = 8;
  g.gpt.layers = 2;
  g.gpt.heads = 2;
  g.gpt.embd = 8;
  std::vector<char> flag(g.param_count(), 2);
  at = 0;
  for (const DecayPart& p : g.decay_parts()) {
    CHECK(p.offset == at);
    for (size_t i = p.offset; i < p.offset + p.size; ++i) flag[i] = p.decay ? 1 : 0;
    at += p.size;
  }
  CHECK(at == g.param_count());
  for (const TensorSpec& t : g.gpt.tensor_table()) {
    INFO(t.name);
    CHECK(flag[t.offset] == (t.decay ? 1 : 0));
    CHECK(flag[t.offset + t.size - 1] == (t.decay ? 1 : 0));
  }
}
