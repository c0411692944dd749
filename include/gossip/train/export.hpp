// A model's parameters as named tensors, for gossip-export's safetensors
// file. The gpt uses its tensor table (nanoGPT's names, nn.Linear's (out, in)
// shapes: loadable into nanoGPT's GPT with the head tied to
// transformer.wte.weight); the MLP uses "layers.<i>.weight" (out, in) and
// "layers.<i>.bias" (out), i counting the linear layers from 0. Metadata:
// "format" ("gossip-train"), "model" (describe()), "type", and the shape keys
// (gpt: vocab, block, layers, heads, embd; mlp: layers as "784-256-10",
// activation, loss).
#pragma once

#include <span>

#include "gossip/core/status.hpp"
#include "gossip/train/model.hpp"
#include "gossip/train/safetensors.hpp"

namespace gossip::train {

// invalid_argument when params does not hold model.param_count() floats.
core::Result<SafetensorsFile> export_tensors(const ModelSpec& model, std::span<const float> params);

}  // namespace gossip::train
