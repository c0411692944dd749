// GptSpec: the byte-level GPT-2 family (model.type "gpt") and the table of
// named tensors that defines its flat parameter buffer.
//
// The architecture is GPT-2's at byte level: learned token (vocab x embd) and
// position (block x embd) embeddings; `layers` pre-LayerNorm blocks, each
// causal multi-head self-attention (`heads` heads, scale 1/sqrt(embd/heads))
// and an MLP (4 embd, GELU tanh approximation), both added to the residual
// stream; a final LayerNorm; the output head tied to the token embedding. No
// dropout. Every linear layer has a bias; weights are stored as PyTorch's
// nn.Linear stores them, (out, in) row-major.
//
// The tensor table (tensor_table()) is the one place the layout is written
// down: names (nanoGPT's), shapes, offsets, the initialisation rule and
// whether AdamW decays the tensor. Checkpoints, export, the backends and the
// docs read it; nothing else repeats it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::train {

// How a tensor starts (GPT-2 / llm.c): normal(0, 0.02); residual projections
// (attn.c_proj and mlp.c_proj weights) normal(0, 0.02 / sqrt(2 layers));
// LayerNorm weights 1; biases and LayerNorm biases 0.
enum class TensorInit { kNormal, kNormalResidual, kOnes, kZeros };

struct TensorSpec {
  std::string name;            // nanoGPT's, e.g. "transformer.h.0.attn.c_attn.weight"
  std::vector<int64_t> shape;  // e.g. {3 embd, embd}
  size_t offset = 0;           // first float in the flat buffer
  size_t size = 0;             // product of shape
  TensorInit init = TensorInit::kZeros;
  bool decay = false;  // AdamW weight decay: tensors of two or more dimensions
};

// Where one block's tensors sit in the flat buffer (offsets from the table).
struct GptBlockOffsets {
  size_t ln1_w, ln1_b;              // ln_1: embd each
  size_t qkv_w, qkv_b;              // attn.c_attn: 3 embd x embd, 3 embd
  size_t attn_proj_w, attn_proj_b;  // attn.c_proj: embd x embd, embd
  size_t ln2_w, ln2_b;              // ln_2
  size_t fc_w, fc_b;                // mlp.c_fc: 4 embd x embd, 4 embd
  size_t fc_proj_w, fc_proj_b;      // mlp.c_proj: embd x 4 embd, embd
};

struct GptOffsets {
  size_t wte = 0, wpe = 0;  // token (vocab x embd) and position (block x embd) embeddings
  std::vector<GptBlockOffsets> blocks;
  size_t lnf_w = 0, lnf_b = 0;
};

struct GptSpec {
  int vocab = 256;  // byte level
  int block = 128;  // context length
  int layers = 4;
  int heads = 4;
  int embd = 128;
  uint64_t seed = 1;  // initialisation seed

  // Checks every key (each >= 1, embd divisible by heads); the message names
  // the key as "model.<key>".
  core::Status validate() const;
  int head_dim() const { return embd / heads; }
  // The table of named tensors, in buffer order.
  std::vector<TensorSpec> tensor_table() const;
  // The offsets of tensor_table() by role.
  GptOffsets offsets() const;
  size_t param_count() const;
  // A hash of the family and every shape key (not the seed).
  uint64_t fingerprint() const;
  // "gpt vocab 256 block 128 layers 4 heads 4 embd 128"
  std::string describe() const;
};

// Seeded initialisation on the host by the table's rules: the same spec gives
// bit-identical parameters on every machine and backend (a self-contained
// generator and Box-Muller, never std:: distributions). Requires
// params.size() == spec.param_count().
void init_parameters(const GptSpec& spec, std::span<float> params);

}  // namespace gossip::train
