// export_tensors: the flat buffer cut into named tensors (see export.hpp).
#include "gossip/train/export.hpp"

#include <string>

namespace gossip::train {

core::Result<SafetensorsFile> export_tensors(const ModelSpec& model,
                                             std::span<const float> params) {
  if (params.size() != model.param_count()) {
    return core::invalid_argument("export: " + std::to_string(params.size()) +
                                  " parameters, the model " + model.describe() + " has " +
                                  std::to_string(model.param_count()));
  }
  SafetensorsFile out;
  out.metadata["format"] = "gossip-train";
  out.metadata["model"] = model.describe();
  out.metadata["type"] = model_family_name(model.family);
  if (model.is_gpt()) {
    const GptSpec& g = model.gpt;
    out.metadata["vocab"] = std::to_string(g.vocab);
    out.metadata["block"] = std::to_string(g.block);
    out.metadata["layers"] = std::to_string(g.layers);
    out.metadata["heads"] = std::to_string(g.heads);
    out.metadata["embd"] = std::to_string(g.embd);
    for (const TensorSpec& t : g.tensor_table()) {
      out.add(t.name, t.shape, params.subspan(t.offset, t.size));
    }
    return out;
  }
  std::string layers;
  for (int n : model.layers) layers += (layers.empty() ? "" : "-") + std::to_string(n);
  out.metadata["layers"] = layers;
  out.metadata["activation"] = activation_name(model.activation);
  out.metadata["loss"] = loss_name(model.loss);
  const auto views = model.layer_views();
  for (size_t i = 0; i < views.size(); ++i) {
    const LayerView& v = views[i];
    const std::string name = "layers." + std::to_string(i);
    out.add(
        name + ".weight", {v.out, v.in},
        params.subspan(v.weight_offset, static_cast<size_t>(v.out) * static_cast<size_t>(v.in)));
    out.add(name + ".bias", {v.out}, params.subspan(v.bias_offset, static_cast<size_t>(v.out)));
  }
  return out;
}

}  // namespace gossip::train
