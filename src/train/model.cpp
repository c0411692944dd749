// ModelSpec: parsing, validation, the flat parameter layout and the seeded
// initialisation every backend starts from.
//
// Initialisation runs on the host with a self-contained generator
// (splitmix64), never std::random distributions, so that the same spec gives
// bit-identical parameters on every platform, compiler and backend; the CUDA
// backend uploads what init_parameters() writes.
#include "gossip/train/model.hpp"

#include <cmath>
#include <stdexcept>

#include "gossip/core/hash.hpp"

namespace gossip::train {

namespace {

using core::fnv1a64;
using core::SplitMix64;

std::string layers_string(const std::vector<int>& layers) {
  std::string s;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (i) s += '-';
    s += std::to_string(layers[i]);
  }
  return s;
}

}  // namespace

core::Result<Activation> parse_activation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  if (name == "gelu") return Activation::kGelu;
  return core::invalid_argument("model.activation: unknown activation '" + name +
                                "' (expected relu, tanh or gelu)");
}

core::Result<LossKind> parse_loss(const std::string& name) {
  if (name == "softmax_cross_entropy") return LossKind::kSoftmaxCrossEntropy;
  if (name == "mse") return LossKind::kMse;
  return core::invalid_argument("model.loss: unknown loss '" + name +
                                "' (expected softmax_cross_entropy or mse)");
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::kRelu:
      return "relu";
    case Activation::kTanh:
      return "tanh";
    case Activation::kGelu:
      return "gelu";
  }
  return "unknown";
}

const char* loss_name(LossKind l) {
  switch (l) {
    case LossKind::kSoftmaxCrossEntropy:
      return "softmax_cross_entropy";
    case LossKind::kMse:
      return "mse";
  }
  return "unknown";
}

core::Result<ModelFamily> parse_model_family(const std::string& name) {
  if (name == "mlp") return ModelFamily::kMlp;
  if (name == "gpt") return ModelFamily::kGpt;
  return core::invalid_argument("model.type: unknown model family '" + name +
                                "' (expected mlp or gpt)");
}

const char* model_family_name(ModelFamily f) {
  return f == ModelFamily::kGpt ? "gpt" : "mlp";
}

GptSpec ModelSpec::gpt_spec() const {
  GptSpec g = gpt;
  g.seed = seed;
  return g;
}

core::Status ModelSpec::validate() const {
  if (is_gpt()) return gpt.validate();
  if (layers.size() < 2) {
    return core::invalid_argument(
        "model.layers: needs at least 2 entries (inputs and outputs), got " +
        std::to_string(layers.size()));
  }
  // Each layer's weight matrix must stay addressable by int offsets in the
  // kernels and the whole buffer must fit comfortably in size_t.
  constexpr int64_t kMaxWidth = 1 << 24;
  constexpr int64_t kMaxMatrix = int64_t{1} << 31;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i] < 1 || layers[i] > kMaxWidth) {
      return core::invalid_argument("model.layers[" + std::to_string(i) + "]: must be in [1, " +
                                    std::to_string(kMaxWidth) + "], got " +
                                    std::to_string(layers[i]));
    }
    if (i > 0 && int64_t{layers[i - 1]} * layers[i] >= kMaxMatrix) {
      return core::invalid_argument("model.layers: layer " + std::to_string(i - 1) + " (" +
                                    std::to_string(layers[i - 1]) + "x" +
                                    std::to_string(layers[i]) + ") has 2^31 weights or more");
    }
  }
  if (loss == LossKind::kSoftmaxCrossEntropy && layers.back() < 2) {
    return core::invalid_argument(
        "model.layers: softmax_cross_entropy needs at least 2 outputs (classes), got " +
        std::to_string(layers.back()));
  }
  return core::Status::ok();
}

size_t ModelSpec::param_count() const {
  if (is_gpt()) return gpt.param_count();
  size_t n = 0;
  for (size_t i = 1; i < layers.size(); ++i) {
    n += static_cast<size_t>(layers[i - 1]) * static_cast<size_t>(layers[i]) +
         static_cast<size_t>(layers[i]);
  }
  return n;
}

std::vector<DecayPart> ModelSpec::decay_parts() const {
  std::vector<DecayPart> parts;
  auto add = [&parts](size_t offset, size_t size, bool decay) {
    if (size == 0) return;
    if (!parts.empty() && parts.back().decay == decay &&
        parts.back().offset + parts.back().size == offset) {
      parts.back().size += size;
    } else {
      parts.push_back({offset, size, decay});
    }
  };
  if (is_gpt()) {
    for (const TensorSpec& t : gpt.tensor_table()) add(t.offset, t.size, t.decay);
    return parts;
  }
  for (const LayerView& v : layer_views()) {
    add(v.weight_offset, static_cast<size_t>(v.in) * static_cast<size_t>(v.out), true);
    add(v.bias_offset, static_cast<size_t>(v.out), false);
  }
  return parts;
}

std::vector<LayerView> ModelSpec::layer_views() const {
  std::vector<LayerView> views;
  if (is_gpt()) return views;
  size_t offset = 0;
  for (size_t i = 1; i < layers.size(); ++i) {
    LayerView v;
    v.in = layers[i - 1];
    v.out = layers[i];
    v.weight_offset = offset;
    offset += static_cast<size_t>(v.in) * static_cast<size_t>(v.out);
    v.bias_offset = offset;
    offset += static_cast<size_t>(v.out);
    views.push_back(v);
  }
  return views;
}

uint64_t ModelSpec::fingerprint() const {
  if (is_gpt()) return gpt.fingerprint();
  // The canonical string is versioned so a future layout change can never
  // collide with today's fingerprints.
  return fnv1a64("gossip-mlp/1;layers=" + layers_string(layers) +
                 ";activation=" + activation_name(activation) + ";loss=" + loss_name(loss));
}

std::string ModelSpec::describe() const {
  if (is_gpt()) return gpt.describe();
  return layers_string(layers) + " " + activation_name(activation) + " " + loss_name(loss);
}

void init_parameters(const ModelSpec& spec, std::span<float> params) {
  if (spec.is_gpt()) return init_parameters(spec.gpt_spec(), params);
  if (params.size() != spec.param_count()) {
    throw std::invalid_argument("init_parameters: buffer holds " + std::to_string(params.size()) +
                                " floats, model needs " + std::to_string(spec.param_count()));
  }
  // One stream over the whole buffer in layout order; biases draw nothing.
  SplitMix64 rng(spec.seed);
  for (const LayerView& v : spec.layer_views()) {
    const double fan_in = v.in;
    const double fan_out = v.out;
    const double bound = spec.activation == Activation::kTanh
                             ? std::sqrt(6.0 / (fan_in + fan_out))  // Xavier/Glorot uniform
                             : std::sqrt(6.0 / fan_in);             // He/Kaiming uniform
    const size_t n = static_cast<size_t>(v.in) * static_cast<size_t>(v.out);
    float* w = params.data() + v.weight_offset;
    for (size_t i = 0; i < n; ++i) {
      w[i] = static_cast<float>((2.0 * rng.next_unit() - 1.0) * bound);
    }
    float* b = params.data() + v.bias_offset;
    for (int i = 0; i < v.out; ++i) b[i] = 0.0f;
  }
}

}  // namespace gossip::train
