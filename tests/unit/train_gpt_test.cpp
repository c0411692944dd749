// The GPT family's CPU reference: the tensor table and initialisation, every
// operation's backward against central finite differences in double, the
// whole model's gradient likewise, the causal mask, and float against double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "gossip/train/generate.hpp"
#include "gossip/train/gpt.hpp"
#include "gossip/train/gpt_cpu.hpp"
#include "gossip/train/gpt_ops.hpp"

using namespace gossip::train;

namespace {

std::vector<double> random_vector(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Checks d(sum(out * R))/d(x) computed by `analytic` against central
// differences of `loss` at every element of x (h = 1e-6, double).
void check_gradient(std::vector<double>& x, const std::vector<double>& analytic,
                    const std::function<double()>& loss, const char* what, double tol = 1e-6) {
  REQUIRE(analytic.size() == x.size());
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i], h = 1e-6;
    x[i] = keep + h;
    const double up = loss();
    x[i] = keep - h;
    const double down = loss();
    x[i] = keep;
    const double numeric = (up - down) / (2 * h);
    const double err = std::abs(numeric - analytic[i]) / std::max(1.0, std::abs(numeric));
    worst = std::max(worst, err);
  }
  INFO(std::string(what) << ": worst relative error " << worst);
  CHECK(worst < tol);
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

const GptSpec kBench{256, 128, 4, 4, 128, 1};

}  // namespace

TEST_CASE("the tensor table defines the flat layout: names, shapes, offsets, decay") {
  const auto table = kBench.tensor_table();
  const int64_t V = 256, T = 128, L = 4, C = 128;
  CHECK(kBench.param_count() ==
        static_cast<size_t>(V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C));
  CHECK(kBench.param_count() == 842496);  // the 0.84M-parameter model
  CHECK(table.size() == 2 + 12 * 4 + 2);
  size_t offset = 0;
  for (const auto& t : table) {
    CHECK(t.offset == offset);
    offset += t.size;
    CHECK(t.decay == (t.shape.size() >= 2));
  }
  CHECK(table[0].name == "transformer.wte.weight");
  CHECK(table[0].shape == std::vector<int64_t>{V, C});
  CHECK(table[4].name == "transformer.h.0.attn.c_attn.weight");
  CHECK(table[4].shape == std::vector<int64_t>{3 * C, C});
  CHECK(table[13].name == "transformer.h.0.mlp.c_proj.bias");
  CHECK(table[12].shape == std::vector<int64_t>{C, 4 * C});
  CHECK(table.back().name == "transformer.ln_f.bias");
  const auto off = kBench.offsets();
  CHECK(off.blocks[1].qkv_w == table[14 + 2].offset);
  CHECK(off.lnf_w == table[table.size() - 2].offset);
}

TEST_CASE("a bad gpt spec is refused naming the key") {
  GptSpec s = kBench;
  s.heads = 3;
  CHECK(s.validate().message() == "model.embd: 128 is not divisible by model.heads 3");
  s = kBench;
  s.layers = 0;
  CHECK(s.validate().message() == "model.layers: must be >= 1, got 0");
  CHECK(kBench.validate().is_ok());
}

TEST_CASE("initialisation follows GPT-2's rules and is deterministic from the seed") {
  std::vector<float> a(kBench.param_count()), b(a.size());
  init_parameters(kBench, a);
  init_parameters(kBench, b);
  CHECK(a == b);
  GptSpec other = kBench;
  other.seed = 2;
  init_parameters(other, b);
  CHECK(a != b);
  for (const auto& t : kBench.tensor_table()) {
    const float* p = a.data() + t.offset;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < t.size; ++i) sum += p[i], sq += double(p[i]) * p[i];
    const double mean = sum / double(t.size), sd = std::sqrt(sq / double(t.size) - mean * mean);
    INFO(t.name);
    switch (t.init) {
      case TensorInit::kOnes:
        CHECK(mean == 1.0);
        CHECK(sd == 0.0);
        break;
      case TensorInit::kZeros:
        CHECK(sq == 0.0);
        break;
      case TensorInit::kNormal:
        CHECK(std::abs(mean) < 0.002);
        CHECK(sd == doctest::Approx(0.02).epsilon(0.03));
        break;
      case TensorInit::kNormalResidual:
        CHECK(sd == doctest::Approx(0.02 / std::sqrt(8.0)).epsilon(0.03));
        CHECK(t.name.find("c_proj.weight") != std::string::npos);
        break;
    }
  }
}

TEST_CASE("the fingerprint covers the family and every shape key, not the seed") {
  GptSpec s = kBench;
  const uint64_t f = s.fingerprint();
  s.seed = 9;
  CHECK(s.fingerprint() == f);
  for (int GptSpec::*key :
       {&GptSpec::vocab, &GptSpec::block, &GptSpec::layers, &GptSpec::heads, &GptSpec::embd}) {
    GptSpec t = kBench;
    t.*key *= 2;
    CHECK(t.fingerprint() != f);
  }
  CHECK(kBench.describe() == "gpt vocab 256 block 128 layers 4 heads 4 embd 128");
}

TEST_CASE("each GPT operation's backward matches finite differences (double)") {
  using namespace gossip::train::cpu;
  const int B = 2, Tn = 5, C = 8, NH = 2, OC = 6, V = 7, N = B * Tn;
  SUBCASE("layernorm") {
    auto x = random_vector(size_t(N) * C, 1), w = random_vector(C, 2), b = random_vector(C, 3);
    const auto r = random_vector(size_t(N) * C, 4);
    std::vector<double> out(x.size()), mean(N), rstd(N);
    auto loss = [&] {
      layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
      return dot(out, r);
    };
    loss();
    std::vector<double> dx(x.size()), dw(C), db(C);
    layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(),
                       rstd.data(), N, C);
    check_gradient(x, dx, loss, "layernorm dinp");
    check_gradient(w, dw, loss, "layernorm dweight");
    check_gradient(b, db, loss, "layernorm dbias");
  }
  SUBCASE("matmul with bias") {
    auto x = random_vector(size_t(N) * C, 5), w = random_vector(size_t(OC) * C, 6),
         b = random_vector(OC, 7);
    const auto r = random_vector(size_t(N) * OC, 8);
    std::vector<double> out(r.size());
    auto loss = [&] {
      matmul_forward(out.data(), x.data(), w.data(), b.data(), N, C, OC);
      return dot(out, r);
    };
    std::vector<double> dx(x.size()), dw(w.size()), db(OC);
    matmul_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), N, C, OC);
    check_gradient(x, dx, loss, "matmul dinp");
    check_gradient(w, dw, loss, "matmul dweight");
    check_gradient(b, db, loss, "matmul dbias");
  }
  SUBCASE("causal attention") {
    auto qkv = random_vector(size_t(N) * 3 * C, 9);
    const auto r = random_vector(size_t(N) * C, 10);
    std::vector<double> out(r.size()), att(size_t(B) * NH * Tn * Tn), scratch(size_t(Tn) * Tn);
    auto loss = [&] {
      attention_forward(out.data(), att.data(), qkv.data(), B, Tn, C, NH);
      return dot(out, r);
    };
    loss();
    std::vector<double> dqkv(qkv.size());
    attention_backward(dqkv.data(), scratch.data(), r.data(), qkv.data(), att.data(), B, Tn, C, NH);
    check_gradient(qkv, dqkv, loss, "attention dqkv");
  }
  SUBCASE("gelu") {
    auto x = random_vector(50, 11, 2.0);
    const auto r = random_vector(50, 12);
    std::vector<double> out(50);
    auto loss = [&] {
      gelu_forward(out.data(), x.data(), 50);
      return dot(out, r);
    };
    std::vector<double> dx(50);
    gelu_backward(dx.data(), x.data(), r.data(), 50);
    check_gradient(x, dx, loss, "gelu");
  }
  SUBCASE("encoder") {
    auto wte = random_vector(size_t(V) * C, 13), wpe = random_vector(size_t(Tn) * C, 14);
    const auto r = random_vector(size_t(N) * C, 15);
    const std::vector<int32_t> tokens = {0, 3, 3, 6, 1, 2, 2, 2, 5, 0};
    std::vector<double> out(r.size());
    auto loss = [&] {
      encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, Tn, C);
      return dot(out, r);
    };
    std::vector<double> dwte(wte.size()), dwpe(wpe.size());
    encoder_backward(dwte.data(), dwpe.data(), r.data(), tokens.data(), B, Tn, C);
    check_gradient(wte, dwte, loss, "encoder dwte");
    check_gradient(wpe, dwpe, loss, "encoder dwpe");
  }
  SUBCASE("cross-entropy") {
    auto z = random_vector(size_t(N) * V, 16, 2.0);
    const std::vector<int32_t> targets = {1, 0, 6, 6, 2, 3, 4, 5, 0, 1};
    auto loss = [&] {
      return crossentropy_forward_backward<double>(nullptr, z.data(), targets.data(), N, V)
                 .loss_sum /
             N;
    };
    std::vector<double> dz(z.size());
    crossentropy_forward_backward(dz.data(), z.data(), targets.data(), N, V);
    check_gradient(z, dz, loss, "cross-entropy dlogits");
    const std::vector<int32_t> bad = {1, 0, 7, 6, 2, 3, 4, 5, 0, 1};
    CHECK_THROWS_AS(crossentropy_forward_backward<double>(nullptr, z.data(), bad.data(), N, V),
                    std::out_of_range);
  }
}

TEST_CASE("the whole GPT's gradient matches finite differences (double)") {
  const GptSpec spec{7, 5, 2, 2, 8, 3};
  std::vector<float> init(spec.param_count());
  init_parameters(spec, init);
  // GPT-2's initial weights are tiny; spread them so every path carries a
  // gradient well above the finite differences' noise.
  std::vector<double> params(init.begin(), init.end());
  const auto noise = random_vector(params.size(), 17, 0.3);
  for (size_t i = 0; i < params.size(); ++i) params[i] += noise[i];
  const std::vector<int32_t> tokens = {0, 3, 3, 6, 1, 2, 2, 2, 5, 0};
  const std::vector<int32_t> targets = {3, 3, 6, 1, 4, 2, 2, 5, 0, 6};
  gossip::train::cpu::GptModel<double> model(spec, 2);
  auto loss = [&] {
    return model.forward(params.data(), tokens.data(), targets.data(), 2, 5, false).loss_sum / 10;
  };
  model.forward(params.data(), tokens.data(), targets.data(), 2, 5, true);
  std::vector<double> grads(params.size(), 99.0);  // backward overwrites
  model.backward(params.data(), grads.data());
  check_gradient(params, grads, loss, "gpt", 1e-6);
  // Every tensor gets a gradient.
  for (const auto& t : spec.tensor_table()) {
    double norm = 0;
    for (size_t i = 0; i < t.size; ++i) norm += grads[t.offset + i] * grads[t.offset + i];
    INFO(t.name);
    CHECK(norm > 0);
  }
}

TEST_CASE("causal: changing byte t+1 never changes the logits at positions <= t") {
  const GptSpec spec{256, 32, 2, 4, 32, 5};
  std::vector<float> params(spec.param_count());
  init_parameters(spec, params);
  gossip::train::cpu::GptModel<float> model(spec, 1);
  std::vector<int32_t> tokens(32);
  for (int i = 0; i < 32; ++i) tokens[i] = (i * 37 + 11) % 256;
  model.forward(params.data(), tokens.data(), nullptr, 1, 32, false);
  const std::vector<float> before(model.logits(), model.logits() + 32 * 256);
  for (int t : {0, 7, 30}) {
    auto changed = tokens;
    changed[t + 1] = (changed[t + 1] + 100) % 256;
    model.forward(params.data(), changed.data(), nullptr, 1, 32, false);
    const float* after = model.logits();
    INFO("changed position " << t + 1);
    CHECK(std::equal(before.begin(), before.begin() + (t + 1) * 256, after));
    CHECK_FALSE(std::equal(before.begin() + (t + 1) * 256, before.begin() + (t + 2) * 256,
                           after + (t + 1) * 256));
  }
}

TEST_CASE("float and double passes agree") {
  const GptSpec spec{256, 16, 2, 2, 16, 4};
  std::vector<float> pf(spec.param_count());
  init_parameters(spec, pf);
  const std::vector<double> pd(pf.begin(), pf.end());
  std::vector<int32_t> tokens(32), targets(32);
  for (int i = 0; i < 32; ++i) tokens[i] = (i * 91) % 256, targets[i] = (i * 53 + 7) % 256;
  gossip::train::cpu::GptModel<float> mf(spec, 2);
  gossip::train::cpu::GptModel<double> md(spec, 2);
  const double lf = mf.forward(pf.data(), tokens.data(), targets.data(), 2, 16, true).loss_sum;
  const double ld = md.forward(pd.data(), tokens.data(), targets.data(), 2, 16, true).loss_sum;
  CHECK(lf == doctest::Approx(ld).epsilon(1e-5));
  // A fresh model predicts about uniformly: ln 256 nats per byte.
  CHECK(ld / 32 == doctest::Approx(std::log(256.0)).epsilon(0.01));
  std::vector<float> gf(pf.size());
  std::vector<double> gd(pd.size());
  mf.backward(pf.data(), gf.data());
  md.backward(pd.data(), gd.data());
  double num = 0, den = 0;
  for (size_t i = 0; i < gd.size(); ++i) num += std::pow(gf[i] - gd[i], 2), den += gd[i] * gd[i];
  CHECK(std::sqrt(num / den) < 1e-4);
}

TEST_CASE("generated bytes become valid UTF-8: broken sequences turn into U+FFFD") {
  using gossip::train::to_valid_utf8;
  CHECK(to_valid_utf8("plain text\n") == "plain text\n");
  CHECK(to_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");  // 2, 3 and 4 bytes kept
  CHECK(to_valid_utf8("a\xFA"
                      "b") ==
        "a\xEF\xBF\xBD"
        "b");                                                                      // a stray byte
  CHECK(to_valid_utf8("\xC3") == "\xEF\xBF\xBD");                                  // cut short
  CHECK(to_valid_utf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
  CHECK(to_valid_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
}

TEST_CASE("generate_text: the prompt continued, deterministic, bad options named") {
  const GptSpec spec{256, 16, 1, 2, 16, 3};
  std::vector<float> params(spec.param_count());
  init_parameters(spec, params);
  SamplingOptions o;
  o.seed = 9;
  auto a = generate_text(spec, params, "abc", 30, o);
  REQUIRE(a.is_ok());
  CHECK(a->size() == 33);
  CHECK(a->rfind("abc", 0) == 0);
  CHECK(*generate_text(spec, params, "abc", 30, o) == *a);
  o.top_k = 1;
  const auto g1 = generate_text(spec, params, "abc", 30, o);
  o.seed = 10;
  CHECK(*generate_text(spec, params, "abc", 30, o) == *g1);
  o.temperature = 0;
  CHECK(generate_text(spec, params, "abc", 3, o).status().message() ==
        "temperature: must be a number > 0");
  o.temperature = 1;
  o.top_k = 300;
  CHECK(generate_text(spec, params, "abc", 3, o).status().message() ==
        "top-k: must be in [0, 256]");
  o.top_k = 0;
  CHECK_FALSE(generate_text(spec, std::vector<float>(3), "abc", 3, o).is_ok());
}
