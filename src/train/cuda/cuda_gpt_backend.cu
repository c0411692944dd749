// CudaGptBackend: trains one GPT replica on the GPU, the counterpart of the
// CPU's CpuGptBackend (src/train/cpu/cpu_gpt_backend.cpp): windows of tokens
// in, CudaGptModel's passes (gpt_model.cuh) for the loss and every gradient,
// then DeviceState's optimizer step (global-norm clipping on the device, AdamW
// decaying only the tensors the table marks). The model's stream is the
// backend's one stream: the passes, the update, the state traffic and the
// averaging deltas all run on it in order. Every buffer is allocated in the
// constructor for max_batch windows; a step allocates nothing. Called from one
// trainer thread only.
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../gpt_windows.hpp"
#include "cuda_backend.cuh"
#include "cuda_check.cuh"
#include "device_state.cuh"
#include "gpt_model.cuh"

namespace gossip::train::cuda {

namespace {

// The GPT's passes and the stream they own, in a base of their own so that
// they exist before DeviceState (which borrows the stream) and outlive it.
struct GptPasses {
  GptPasses(const GptSpec& spec, int max_batch, bool allow_tf32)
      : gpt_(spec, max_batch, allow_tf32) {}
  CudaGptModel gpt_;
};

class CudaGptBackend final : private GptPasses, public DeviceState {
 public:
  CudaGptBackend(const ModelSpec& model, const OptimizerSpec& optimizer,
                 const BackendOptions& options)
      : GptPasses(model.gpt_spec(), options.max_batch, options.allow_tf32),
        DeviceState(model, optimizer, options, gpt_.stream()),
        windows_(options.max_batch, model.gpt.block) {}

  // The loss is the mean over every predicted byte; CudaGptModel::forward
  // waits for it, the backward pass and the update run on while the caller
  // prepares the next batch.
  float train_step(const data::Batch& batch, float lr) override {
    activate();
    windows_.check_whole(batch, "cuda backend: train_step");
    const int block = windows_.split(batch, 0, batch.rows);
    const cpu::TokenLossSums sums = gpt_.forward(params_.as<float>(), windows_.inputs(),
                                                 windows_.targets(), batch.rows, block, true);
    gpt_.backward(params_.as<float>(), grads_.as<float>());
    optimizer_update(lr);
    return static_cast<float>(sums.loss_sum / (static_cast<double>(batch.rows) * block));
  }

  // One EvalStats row per predicted byte, as on the CPU: mean_loss() is nats
  // per byte, accuracy() the next-byte top-1 accuracy.
  EvalStats evaluate(const data::Batch& batch) override {
    activate();
    windows_.check(batch, "cuda backend: evaluate");
    EvalStats stats;
    for (int begin = 0; begin < batch.rows; begin += options_.max_batch) {
      const int rows = std::min(options_.max_batch, batch.rows - begin);
      const int block = windows_.split(batch, begin, rows);
      const cpu::TokenLossSums sums = gpt_.forward(params_.as<float>(), windows_.inputs(),
                                                   windows_.targets(), rows, block, false);
      stats.loss_sum += sums.loss_sum;
      stats.correct += sums.correct;
      stats.rows += static_cast<int64_t>(rows) * block;
    }
    return stats;
  }

 private:
  GptWindows windows_;
};

}  // namespace

std::unique_ptr<Backend> build_cuda_gpt_backend(const ModelSpec& model,
                                                const OptimizerSpec& optimizer,
                                                const BackendOptions& options) {
  return std::make_unique<CudaGptBackend>(model, optimizer, options);
}

}  // namespace gossip::train::cuda
