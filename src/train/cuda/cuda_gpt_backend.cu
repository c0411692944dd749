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
        inputs_(static_cast<size_t>(options.max_batch) * model.gpt.block),
        targets_(inputs_.size()) {}

  // The loss is the mean over every predicted byte; CudaGptModel::forward
  // waits for it, the backward pass and the update run on while the caller
  // prepares the next batch.
  float train_step(const data::Batch& batch, float lr) override {
    activate();
    check_batch(batch, "train_step");
    if (batch.rows > options_.max_batch) {
      throw std::invalid_argument("cuda backend: train_step: batch of " +
                                  std::to_string(batch.rows) + " windows exceeds max_batch " +
                                  std::to_string(options_.max_batch));
    }
    const int block = split(batch, 0, batch.rows);
    const cpu::TokenLossSums sums =
        gpt_.forward(params_.as<float>(), inputs_.data(), targets_.data(), batch.rows, block, true);
    gpt_.backward(params_.as<float>(), grads_.as<float>());
    optimizer_update(lr);
    return static_cast<float>(sums.loss_sum / (static_cast<double>(batch.rows) * block));
  }

  // One EvalStats row per predicted byte, as on the CPU: mean_loss() is nats
  // per byte, accuracy() the next-byte top-1 accuracy.
  EvalStats evaluate(const data::Batch& batch) override {
    activate();
    check_batch(batch, "evaluate");
    EvalStats stats;
    for (int begin = 0; begin < batch.rows; begin += options_.max_batch) {
      const int rows = std::min(options_.max_batch, batch.rows - begin);
      const int block = split(batch, begin, rows);
      const cpu::TokenLossSums sums =
          gpt_.forward(params_.as<float>(), inputs_.data(), targets_.data(), rows, block, false);
      stats.loss_sum += sums.loss_sum;
      stats.correct += sums.correct;
      stats.rows += static_cast<int64_t>(rows) * block;
    }
    return stats;
  }

 private:
  void check_batch(const data::Batch& b, const char* what) const {
    const std::string w = std::string("cuda backend: ") + what;
    if (b.rows < 1 || b.tokens == nullptr) {
      throw std::invalid_argument(w + ": the gpt needs a batch of token windows");
    }
    if (b.cols < 2 || b.cols > model_.gpt.block + 1) {
      throw std::invalid_argument(w + ": windows of " + std::to_string(b.cols) +
                                  " bytes, the model takes 2.." +
                                  std::to_string(model_.gpt.block + 1));
    }
  }

  // Windows [begin, begin + rows) of the batch into inputs_ (their first
  // cols - 1 bytes) and targets_ (their last cols - 1); returns cols - 1.
  // CudaGptModel checks every id against the vocabulary before enqueuing.
  int split(const data::Batch& b, int begin, int rows) {
    const int block = b.cols - 1;
    for (int r = 0; r < rows; ++r) {
      const int32_t* w = b.tokens + static_cast<size_t>(begin + r) * b.cols;
      std::copy(w, w + block, inputs_.begin() + static_cast<long>(r) * block);
      std::copy(w + 1, w + 1 + block, targets_.begin() + static_cast<long>(r) * block);
    }
    return block;
  }

  std::vector<int32_t> inputs_, targets_;
};

}  // namespace

std::unique_ptr<Backend> build_cuda_gpt_backend(const ModelSpec& model,
                                                const OptimizerSpec& optimizer,
                                                const BackendOptions& options) {
  return std::make_unique<CudaGptBackend>(model, optimizer, options);
}

}  // namespace gossip::train::cuda
