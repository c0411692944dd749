// read_checkpoint_with_model: a checkpoint file and the model its header
// describes, for the tools that read checkpoints without a config.
#include "gossip/peer/checkpoint.hpp"
#include "gossip/train/options.hpp"

namespace gossip::peer {

core::Result<CheckpointWithModel> read_checkpoint_with_model(const std::filesystem::path& file) {
  auto state = read_checkpoint_file(file);
  if (!state) return state.status();
  const std::string name = file.string();
  if (!state->model_spec.is_object()) {
    return core::invalid_argument(name +
                                  ": the checkpoint does not describe its model (written "
                                  "before model_spec was recorded); resume it once with "
                                  "gossip-peer");
  }
  auto model = train::parse_model(state->model_spec);
  if (!model) return model.status().with_context(name);
  if (model->fingerprint() != state->fingerprint) {
    return core::invalid_argument(name + ": its model_spec (" + model->describe() +
                                  ") does not match its fingerprint");
  }
  return CheckpointWithModel{std::move(state).value(), std::move(model).value()};
}

}  // namespace gossip::peer
