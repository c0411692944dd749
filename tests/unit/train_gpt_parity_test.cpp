// The GPT's CPU passes against PyTorch: tests/fixtures/gpt_parity.safetensors,
// written by tools/gpt_parity_fixture.py with Debian's python3-torch, holds
// PyTorch's own weights in our flat layout, one batch, its logits, loss and
// every gradient (float64 from float32 weights). Our float passes must match
// logits and gradients to 1e-4 and the loss to 1e-5, relative.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "gossip/train/cpu_backend.hpp"
#include "gossip/train/gpt.hpp"
#include "gossip/train/gpt_cpu.hpp"
#include "gossip/train/safetensors.hpp"

using namespace gossip::train;

namespace {

SafetensorsFile load_fixture() {
  const char* root = std::getenv("GOSSIP_SOURCE_ROOT");
  REQUIRE_MESSAGE(root != nullptr, "GOSSIP_SOURCE_ROOT is set by meson test");
  auto file = read_safetensors(std::string(root) + "/tests/fixtures/gpt_parity.safetensors");
  REQUIRE_MESSAGE(file.is_ok(), file.status().message());
  return std::move(*file);
}

std::vector<double> tensor(const SafetensorsFile& f, const std::string& name) {
  const SafeTensor* t = f.find(name);
  REQUIRE_MESSAGE(t != nullptr, "fixture tensor " << name);
  return values_of(*t);
}

// Worst |ours - theirs| relative to max(|theirs|, 1% of the largest value):
// relative where values are large, without dividing by values that happen to
// be near zero.
double worst_relative(const std::vector<double>& ours, const std::vector<double>& theirs) {
  REQUIRE(ours.size() == theirs.size());
  double largest = 0;
  for (double v : theirs) largest = std::max(largest, std::abs(v));
  double worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double scale = std::max(std::abs(theirs[i]), 0.01 * largest);
    worst = std::max(worst, std::abs(ours[i] - theirs[i]) / scale);
  }
  return worst;
}

}  // namespace

TEST_CASE("the CPU GPT matches PyTorch: logits, loss and every gradient") {
  const SafetensorsFile f = load_fixture();
  GptSpec spec;
  spec.vocab = std::stoi(f.metadata.at("vocab"));
  spec.block = std::stoi(f.metadata.at("block"));
  spec.layers = std::stoi(f.metadata.at("layers"));
  spec.heads = std::stoi(f.metadata.at("heads"));
  spec.embd = std::stoi(f.metadata.at("embd"));
  REQUIRE(spec.validate().is_ok());
  const auto params_d = tensor(f, "params");
  REQUIRE(params_d.size() == spec.param_count());
  const std::vector<float> params(params_d.begin(), params_d.end());
  const auto tokens_d = tensor(f, "tokens"), targets_d = tensor(f, "targets");
  const std::vector<int32_t> tokens(tokens_d.begin(), tokens_d.end());
  const std::vector<int32_t> targets(targets_d.begin(), targets_d.end());
  const int B = static_cast<int>(f.find("tokens")->shape.at(0));
  const int Tn = static_cast<int>(f.find("tokens")->shape.at(1));

  cpu::GptModel<float> model(spec, B);
  const auto sums = model.forward(params.data(), tokens.data(), targets.data(), B, Tn, true);
  const double loss = sums.loss_sum / (B * Tn);
  const double torch_loss = tensor(f, "loss").at(0);
  MESSAGE("loss " << loss << " vs PyTorch " << torch_loss);
  CHECK(std::abs(loss - torch_loss) / torch_loss < 1e-5);

  const std::vector<double> logits(model.logits(), model.logits() + size_t(B) * Tn * spec.vocab);
  const double logits_err = worst_relative(logits, tensor(f, "logits"));
  MESSAGE("logits: worst relative error " << logits_err);
  CHECK(logits_err < 1e-4);

  std::vector<float> grads(spec.param_count());
  model.backward(params.data(), grads.data());
  const auto torch_grads = tensor(f, "grads");
  for (const auto& t : spec.tensor_table()) {
    const std::vector<double> ours(grads.begin() + long(t.offset),
                                   grads.begin() + long(t.offset + t.size));
    const std::vector<double> theirs(torch_grads.begin() + long(t.offset),
                                     torch_grads.begin() + long(t.offset + t.size));
    const double err = worst_relative(ours, theirs);
    INFO(t.name << ": worst relative error " << err);
    CHECK(err < 1e-4);
  }
}

TEST_CASE("10 AdamW steps on the CPU backend follow PyTorch's losses") {
  const SafetensorsFile f = load_fixture();
  ModelSpec model;
  model.family = ModelFamily::kGpt;
  model.gpt.vocab = std::stoi(f.metadata.at("vocab"));
  model.gpt.block = std::stoi(f.metadata.at("block"));
  model.gpt.layers = std::stoi(f.metadata.at("layers"));
  model.gpt.heads = std::stoi(f.metadata.at("heads"));
  model.gpt.embd = std::stoi(f.metadata.at("embd"));
  OptimizerSpec opt;
  opt.kind = OptimizerKind::kAdamW;
  opt.lr = std::stod(f.metadata.at("adamw_lr"));
  opt.beta1 = std::stod(f.metadata.at("adamw_beta1"));
  opt.beta2 = std::stod(f.metadata.at("adamw_beta2"));
  opt.eps = std::stod(f.metadata.at("adamw_eps"));
  opt.weight_decay = std::stod(f.metadata.at("adamw_weight_decay"));
  opt.grad_clip = std::stod(f.metadata.at("adamw_grad_clip"));
  BackendOptions options;
  options.device = "cpu";
  options.max_batch = 2;
  auto backend = cpu::make_cpu_backend(model, opt, options);
  REQUIRE_MESSAGE(backend.is_ok(), backend.status().message());
  const auto params_d = tensor(f, "params");
  const std::vector<float> params(params_d.begin(), params_d.end());
  (*backend)->write_parameters(params);
  // The windows: each row's inputs followed by its last target.
  const auto tokens = tensor(f, "tokens"), targets = tensor(f, "targets");
  const int B = 2, Tn = model.gpt.block;
  std::vector<int32_t> windows;
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < Tn; ++t)
      windows.push_back(static_cast<int32_t>(tokens[size_t(b * Tn + t)]));
    windows.push_back(static_cast<int32_t>(targets[size_t(b * Tn + Tn - 1)]));
  }
  gossip::data::Batch batch;
  batch.rows = B;
  batch.cols = Tn + 1;
  batch.tokens = windows.data();
  const auto torch_losses = tensor(f, "adamw_losses");
  double worst = 0;
  for (size_t i = 0; i < torch_losses.size(); ++i) {
    const double loss = (*backend)->train_step(batch, static_cast<float>(opt.lr));
    worst = std::max(worst, std::abs(loss - torch_losses[i]) / torch_losses[i]);
  }
  MESSAGE("AdamW losses " << torch_losses.front() << " -> " << torch_losses.back()
                          << ", worst relative difference " << worst);
  CHECK(worst < 1e-4);
  CHECK((*backend)->optimizer_steps() == 10);
}
