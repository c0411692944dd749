// ModelSpec: the architecture every peer trains, one of two families
// (model.type): the MLP ("mlp", the default) or the byte-level GPT ("gpt",
// gpt.hpp, whose tensor table defines its layout); and the layout of its one
// flat float32 parameter buffer.
//
// MLP layout (shared by every backend, checkpoints and wire formats): for each
// layer l in order, its weight matrix W_l (out_l x in_l, row-major, so that
// y = x W_l^T + b_l for row-major x), then its bias b_l (out_l).
// Hidden layers apply the activation; the last layer is linear and feeds the
// loss (softmax cross-entropy over classes, or mean squared error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/train/gpt.hpp"

namespace gossip::train {

enum class Activation { kRelu, kTanh, kGelu };
enum class LossKind { kSoftmaxCrossEntropy, kMse };

// Parses "relu" | "tanh" | "gelu"; error names the bad value.
core::Result<Activation> parse_activation(const std::string& name);
// Parses "softmax_cross_entropy" | "mse".
core::Result<LossKind> parse_loss(const std::string& name);
const char* activation_name(Activation a);
const char* loss_name(LossKind l);

// Where one layer's weights and bias sit in the flat buffer.
struct LayerView {
  int in = 0;
  int out = 0;
  size_t weight_offset = 0;  // out x in floats
  size_t bias_offset = 0;    // out floats
};

enum class ModelFamily { kMlp, kGpt };

// A run of the flat buffer that weight decay applies to, or not.
struct DecayPart {
  size_t offset = 0;
  size_t size = 0;
  bool decay = true;
};

// Parses "mlp" | "gpt"; error names the bad value.
core::Result<ModelFamily> parse_model_family(const std::string& name);
const char* model_family_name(ModelFamily f);

struct ModelSpec {
  ModelFamily family = ModelFamily::kMlp;
  // mlp
  std::vector<int> layers;  // [inputs, hidden..., outputs]; at least 2 entries
  Activation activation = Activation::kRelu;
  LossKind loss = LossKind::kSoftmaxCrossEntropy;
  // gpt (its seed field is ignored: `seed` below is the one seed)
  GptSpec gpt;
  uint64_t seed = 1;  // initialisation seed

  bool is_gpt() const { return family == ModelFamily::kGpt; }
  // The gpt spec with this spec's seed.
  GptSpec gpt_spec() const;
  // Checks the family's sizes (mlp: >= 2 entries, each >= 1, softmax
  // cross-entropy needs >= 2 outputs; gpt: GptSpec::validate()).
  core::Status validate() const;
  // Number of float32 parameters in the flat buffer.
  size_t param_count() const;
  // Offsets of each layer, in order (mlp only; empty for gpt).
  std::vector<LayerView> layer_views() const;
  // The buffer tiled, in order, into maximal runs of tensors that weight
  // decay treats alike: as nanoGPT, matrices and embeddings decay, biases and
  // LayerNorm parameters never do (gpt: the tensor table's flags; mlp: each
  // W_l decays, each b_l does not). Every optimizer's weight_decay follows it.
  std::vector<DecayPart> decay_parts() const;
  // A hash of the architecture (family and shapes: layers, activation, loss
  // or the gpt's keys), not of the seed: two peers can average only when
  // their fingerprints match.
  uint64_t fingerprint() const;
  // "784-256-128-10 relu softmax_cross_entropy" or
  // "gpt vocab 256 block 128 layers 4 heads 4 embd 128"
  std::string describe() const;
};

// Seeded initialisation on the host. MLP: He (relu/gelu) or Xavier (tanh)
// uniform weights, zero biases; gpt: its tensor table's rules (gpt.hpp).
// Deterministic for a given spec (incl. seed).
// Requires params.size() == spec.param_count().
void init_parameters(const ModelSpec& spec, std::span<float> params);

}  // namespace gossip::train
