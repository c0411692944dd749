// ModelSpec: the architecture of the MLP every peer trains, and the layout of
// its one flat float32 parameter buffer.
//
// Layout (shared by every backend, checkpoints and wire formats): for each
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

struct ModelSpec {
  std::vector<int> layers;  // [inputs, hidden..., outputs]; at least 2 entries
  Activation activation = Activation::kRelu;
  LossKind loss = LossKind::kSoftmaxCrossEntropy;
  uint64_t seed = 1;        // initialisation seed

  // Checks sizes (>= 2 entries, each >= 1, mse needs nothing more, softmax
  // cross-entropy needs >= 2 outputs).
  core::Status validate() const;
  // Number of float32 parameters in the flat buffer.
  size_t param_count() const;
  // Offsets of each layer, in order.
  std::vector<LayerView> layer_views() const;
  // A hash of the architecture (layers, activation, loss), not of the seed:
  // two peers can average only when their fingerprints match.
  uint64_t fingerprint() const;
  // "784-256-128-10 relu softmax_cross_entropy"
  std::string describe() const;
};

// Seeded initialisation on the host: He (relu/gelu) or Xavier (tanh) uniform
// weights, zero biases. Deterministic for a given spec (incl. seed).
// Requires params.size() == spec.param_count().
void init_parameters(const ModelSpec& spec, std::span<float> params);

}  // namespace gossip::train
