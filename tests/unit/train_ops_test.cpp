// Gradient checks of the CPU reference operations in double precision against
// central finite differences: every layer, activation and loss, then the
// whole network. The float backend runs this same code (templates).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <numbers>
#include <random>
#include <stdexcept>
#include <vector>

#include "gossip/train/cpu_ops.hpp"

using namespace gossip::train;
using namespace gossip::train::cpu;

namespace {

constexpr double kH = 1e-6;

std::vector<double> random_vec(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-scale, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = u(gen);
  return v;
}

// Checks analytic[i] against the central difference of f over v[i].
void check_gradient(const char* what, std::vector<double>& v, const std::vector<double>& analytic,
                    const std::function<double()>& f) {
  REQUIRE(analytic.size() == v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + kH;
    const double up = f();
    v[i] = keep - kH;
    const double down = f();
    v[i] = keep;
    const double numeric = (up - down) / (2 * kH);
    const double tol = 1e-6 * std::max({1.0, std::abs(numeric), std::abs(analytic[i])});
    INFO(what, "[", i, "] analytic ", analytic[i], " numeric ", numeric);
    CHECK(std::abs(analytic[i] - numeric) <= tol);
  }
}

// One layer (linear + bias + optional activation) and the weighted sum
// f = sum(R * out) as a scalar test function.
void check_layer(Activation act, bool hidden) {
  const int rows = 4, in = 5, out = 3;
  auto x = random_vec(rows * in, 1, 1.5);
  auto w = random_vec(out * in, 2);
  auto b = random_vec(out, 3);
  const auto r = random_vec(rows * out, 4);
  std::vector<double> pre(rows * out), post(rows * out);

  auto f = [&] {
    linear_forward(pre.data(), x.data(), w.data(), rows, in, out);
    bias_act_forward(pre.data(), hidden ? post.data() : nullptr, b.data(), rows, out, act);
    const auto& y = hidden ? post : pre;
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += r[i] * y[i];
    return s;
  };
  f();
  std::vector<double> d = r, dx(rows * in), dw(out * in), db(out);
  if (hidden) act_backward(d.data(), pre.data(), post.data(), rows * out, act);
  linear_backward(dx.data(), dw.data(), db.data(), d.data(), x.data(), w.data(), rows, in, out);

  check_gradient("dx", x, dx, f);
  check_gradient("dw", w, dw, f);
  check_gradient("db", b, db, f);
}

}  // namespace

TEST_CASE("linear layer gradients (output layer, no activation)") {
  check_layer(Activation::kRelu, false);
}
TEST_CASE("linear + relu gradients") {
  check_layer(Activation::kRelu, true);
}
TEST_CASE("linear + tanh gradients") {
  check_layer(Activation::kTanh, true);
}
TEST_CASE("linear + gelu gradients") {
  check_layer(Activation::kGelu, true);
}

TEST_CASE("activations compute their documented formulas") {
  std::vector<double> pre = {-2.0, -0.5, 0.0, 0.7, 3.0}, post(5), zero(5, 0.0);
  const std::vector<double> z = pre;
  bias_act_forward(pre.data(), post.data(), zero.data(), 1, 5, Activation::kRelu);
  CHECK(post == std::vector<double>{0.0, 0.0, 0.0, 0.7, 3.0});
  pre = z;
  bias_act_forward(pre.data(), post.data(), zero.data(), 1, 5, Activation::kGelu);
  for (int i = 0; i < 5; ++i) {
    const double x = z[i];
    const double want =
        0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
    CHECK(post[i] == doctest::Approx(want).epsilon(1e-12));
  }
  CHECK(post[3] == doctest::Approx(0.5302).epsilon(1e-3));  // PyTorch gelu(0.7, 'tanh')
}

TEST_CASE("softmax cross-entropy: value, accuracy and gradient") {
  const int rows = 3, classes = 4;
  auto z = random_vec(rows * classes, 7, 3.0);
  const std::vector<int32_t> labels = {2, 0, 3};
  auto f = [&] {
    return softmax_xent_forward_backward<double>(nullptr, z.data(), labels.data(), rows, classes)
               .loss_sum /
           rows;
  };
  std::vector<double> dz(z.size());
  const LossSums s =
      softmax_xent_forward_backward(dz.data(), z.data(), labels.data(), rows, classes);
  // Direct formula for row 0.
  double lse = 0;
  for (int c = 0; c < classes; ++c) lse += std::exp(z[c]);
  double total = std::log(lse) - z[2];
  int correct = 0;
  for (int r = 0; r < rows; ++r) {
    int arg = 0;
    for (int c = 1; c < classes; ++c) {
      if (z[r * classes + c] > z[r * classes + arg]) arg = c;
    }
    correct += arg == labels[r];
  }
  CHECK(s.correct == correct);
  double row0 = 0;
  {
    std::vector<double> only(z.begin(), z.begin() + classes);
    row0 = softmax_xent_forward_backward<double>(nullptr, only.data(), labels.data(), 1, classes)
               .loss_sum;
  }
  CHECK(row0 == doctest::Approx(total).epsilon(1e-12));
  check_gradient("dlogits", z, dz, f);

  // Large logits stay finite (max subtraction).
  std::vector<double> big = {1000.0, 0.0, -1000.0, 999.0};
  const int32_t first = 0;
  const LossSums sb = softmax_xent_forward_backward<double>(nullptr, big.data(), &first, 1, 4);
  CHECK(std::isfinite(sb.loss_sum));
  CHECK(sb.loss_sum == doctest::Approx(std::log(1 + std::exp(-1.0))).epsilon(1e-12));
  CHECK(sb.correct == 1);

  std::vector<int32_t> bad = {4};
  CHECK_THROWS_AS(softmax_xent_forward_backward<double>(nullptr, big.data(), bad.data(), 1, 4),
                  std::out_of_range);
}

TEST_CASE("mse: value matches mean over all elements and gradient") {
  const int rows = 3, cols = 2;
  auto y = random_vec(rows * cols, 9);
  const std::vector<float> t = {0.5f, -1.0f, 0.25f, 2.0f, 0.0f, 1.0f};
  auto f = [&] {
    return mse_forward_backward<double>(nullptr, y.data(), t.data(), rows, cols).loss_sum / rows;
  };
  double want = 0;
  for (int i = 0; i < rows * cols; ++i) want += (y[i] - t[i]) * (y[i] - t[i]);
  want /= rows * cols;
  CHECK(f() == doctest::Approx(want).epsilon(1e-12));
  std::vector<double> dy(y.size());
  mse_forward_backward(dy.data(), y.data(), t.data(), rows, cols);
  check_gradient("dpred", y, dy, f);
}

TEST_CASE("whole network gradient, every activation and loss") {
  for (Activation act : {Activation::kRelu, Activation::kTanh, Activation::kGelu}) {
    for (LossKind loss : {LossKind::kSoftmaxCrossEntropy, LossKind::kMse}) {
      CAPTURE(activation_name(act));
      CAPTURE(loss_name(loss));
      ModelSpec spec;
      spec.layers = {5, 7, 6, 4};
      spec.activation = act;
      spec.loss = loss;
      const int rows = 3;
      std::vector<float> x(rows * 5), targets(rows * 4);
      std::mt19937 gen(11);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (auto& v : x) v = u(gen);
      for (auto& v : targets) v = u(gen);
      const std::vector<int32_t> labels = {1, 3, 0};
      gossip::data::Batch batch;
      batch.rows = rows;
      batch.cols = 5;
      batch.x = x.data();
      if (loss == LossKind::kMse) {
        batch.targets = targets.data();
        batch.target_cols = 4;
      } else {
        batch.labels = labels.data();
      }
      std::vector<float> initf(spec.param_count());
      init_parameters(spec, initf);
      std::vector<double> p(initf.begin(), initf.end());
      // Non-zero biases so that their gradient path is exercised.
      for (const LayerView& v : spec.layer_views()) {
        for (int i = 0; i < v.out; ++i) p[v.bias_offset + i] = 0.1 * (i % 3) - 0.05;
      }
      std::vector<double> g(p.size());
      reference_loss_and_gradient<double>(spec, p, batch, g);
      check_gradient("param", p, g, [&] {
        return reference_loss_and_gradient<double>(spec, p, batch, std::span<double>{});
      });
    }
  }
}
