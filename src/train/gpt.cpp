// GptSpec: validation, the tensor table that defines the flat layout, and the
// seeded GPT-2 initialisation every backend starts from.
#include "gossip/train/gpt.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "gossip/core/hash.hpp"

namespace gossip::train {

using core::fnv1a64;
using core::SplitMix64;

core::Status GptSpec::validate() const {
  const struct {
    const char* key;
    int value;
  } keys[] = {
      {"vocab", vocab}, {"block", block}, {"layers", layers}, {"heads", heads}, {"embd", embd}};
  for (const auto& k : keys) {
    if (k.value < 1) {
      return core::invalid_argument(std::string("model.") + k.key + ": must be >= 1, got " +
                                    std::to_string(k.value));
    }
  }
  if (embd % heads != 0) {
    return core::invalid_argument("model.embd: " + std::to_string(embd) +
                                  " is not divisible by model.heads " + std::to_string(heads));
  }
  return core::Status::ok();
}

std::vector<TensorSpec> GptSpec::tensor_table() const {
  const int64_t c = embd;
  std::vector<TensorSpec> table;
  size_t offset = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape, TensorInit init) {
    size_t size = 1;
    for (int64_t d : shape) size *= static_cast<size_t>(d);
    const bool decay = shape.size() >= 2;
    table.push_back({std::move(name), std::move(shape), offset, size, init, decay});
    offset += size;
  };
  add("transformer.wte.weight", {vocab, c}, TensorInit::kNormal);
  add("transformer.wpe.weight", {block, c}, TensorInit::kNormal);
  for (int l = 0; l < layers; ++l) {
    const std::string h = "transformer.h." + std::to_string(l) + ".";
    add(h + "ln_1.weight", {c}, TensorInit::kOnes);
    add(h + "ln_1.bias", {c}, TensorInit::kZeros);
    add(h + "attn.c_attn.weight", {3 * c, c}, TensorInit::kNormal);
    add(h + "attn.c_attn.bias", {3 * c}, TensorInit::kZeros);
    add(h + "attn.c_proj.weight", {c, c}, TensorInit::kNormalResidual);
    add(h + "attn.c_proj.bias", {c}, TensorInit::kZeros);
    add(h + "ln_2.weight", {c}, TensorInit::kOnes);
    add(h + "ln_2.bias", {c}, TensorInit::kZeros);
    add(h + "mlp.c_fc.weight", {4 * c, c}, TensorInit::kNormal);
    add(h + "mlp.c_fc.bias", {4 * c}, TensorInit::kZeros);
    add(h + "mlp.c_proj.weight", {c, 4 * c}, TensorInit::kNormalResidual);
    add(h + "mlp.c_proj.bias", {c}, TensorInit::kZeros);
  }
  add("transformer.ln_f.weight", {c}, TensorInit::kOnes);
  add("transformer.ln_f.bias", {c}, TensorInit::kZeros);
  return table;
}

GptOffsets GptSpec::offsets() const {
  const auto table = tensor_table();
  GptOffsets o;
  o.blocks.resize(static_cast<size_t>(layers));
  size_t i = 0;
  auto next = [&] { return table.at(i++).offset; };
  o.wte = next();
  o.wpe = next();
  for (auto& b : o.blocks) {
    b.ln1_w = next(), b.ln1_b = next();
    b.qkv_w = next(), b.qkv_b = next();
    b.attn_proj_w = next(), b.attn_proj_b = next();
    b.ln2_w = next(), b.ln2_b = next();
    b.fc_w = next(), b.fc_b = next();
    b.fc_proj_w = next(), b.fc_proj_b = next();
  }
  o.lnf_w = next();
  o.lnf_b = next();
  return o;
}

size_t GptSpec::param_count() const {
  const auto table = tensor_table();
  return table.back().offset + table.back().size;
}

uint64_t GptSpec::fingerprint() const {
  return fnv1a64("gossip-train model v1 " + describe());
}

std::string GptSpec::describe() const {
  return "gpt vocab " + std::to_string(vocab) + " block " + std::to_string(block) + " layers " +
         std::to_string(layers) + " heads " + std::to_string(heads) + " embd " +
         std::to_string(embd);
}

void init_parameters(const GptSpec& spec, std::span<float> params) {
  if (params.size() != spec.param_count()) {
    throw std::invalid_argument("init_parameters: buffer size does not match the gpt spec");
  }
  const double residual_std = 0.02 / std::sqrt(2.0 * spec.layers);
  const auto table = spec.tensor_table();
  for (size_t t = 0; t < table.size(); ++t) {
    const TensorSpec& ts = table[t];
    float* p = params.data() + ts.offset;
    if (ts.init == TensorInit::kOnes || ts.init == TensorInit::kZeros) {
      const float v = ts.init == TensorInit::kOnes ? 1.0f : 0.0f;
      for (size_t i = 0; i < ts.size; ++i) p[i] = v;
      continue;
    }
    const double std = ts.init == TensorInit::kNormal ? 0.02 : residual_std;
    // One stream per tensor, so that a tensor's values do not depend on the
    // sizes of the tensors before it.
    SplitMix64 rng(spec.seed * 0x100000001B3ull + t);
    for (size_t i = 0; i < ts.size; i += 2) {
      // Box-Muller: two normals from two uniforms, u1 in (0, 1].
      const double u1 = 1.0 - rng.next_unit();
      const double u2 = rng.next_unit();
      const double r = std::sqrt(-2.0 * std::log(u1));
      const double a = 2.0 * std::numbers::pi * u2;
      p[i] = static_cast<float>(std * r * std::cos(a));
      if (i + 1 < ts.size) p[i + 1] = static_cast<float>(std * r * std::sin(a));
    }
  }
}

}  // namespace gossip::train
