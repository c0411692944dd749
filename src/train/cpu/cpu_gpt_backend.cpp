// CpuGptBackend: trains one GPT replica on the host, GptModel<float> over the
// operations of gpt_ops.hpp, with AdamW (or any host optimizer) decaying only
// the tensors the table marks (matrices and embeddings), and optional
// global-norm gradient clipping. Every buffer is allocated in the
// constructor for max_batch windows; a step allocates nothing. Called from
// one trainer thread only.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "blas_setup.hpp"
#include "gossip/train/cpu_backend.hpp"
#include "gossip/train/gpt_cpu.hpp"
#include "gossip/train/host_optimizer.hpp"
#include "host_state.hpp"

namespace gossip::train::cpu {

namespace {

class CpuGptBackend final : public HostState {
 public:
  CpuGptBackend(const ModelSpec& model, const OptimizerSpec& optimizer,
                std::unique_ptr<Optimizer> update_rule, const BackendOptions& options)
      : HostState(model, optimizer, std::move(update_rule)),
        gpt_(model.gpt_spec(), options.max_batch),
        max_batch_(options.max_batch),
        grads_(model.param_count()),
        inputs_(static_cast<size_t>(options.max_batch) * model.gpt.block),
        targets_(inputs_.size()) {}

  float train_step(const data::Batch& batch, float lr) override {
    check_batch(batch, "train_step");
    if (batch.rows > max_batch_) {
      throw std::invalid_argument("train_step: batch of " + std::to_string(batch.rows) +
                                  " windows exceeds max_batch " + std::to_string(max_batch_));
    }
    const int block = split(batch, 0, batch.rows);
    const TokenLossSums sums = gpt_.forward(params_.data(), inputs_.data(), targets_.data(),
                                            batch.rows, block, /*for_backward=*/true);
    gpt_.backward(params_.data(), grads_.data());
    optimizer_step(grads_, lr);
    return static_cast<float>(sums.loss_sum / (static_cast<double>(batch.rows) * block));
  }

  // One EvalStats row per predicted byte: mean_loss() is nats per byte,
  // accuracy() the next-byte top-1 accuracy.
  EvalStats evaluate(const data::Batch& batch) override {
    check_batch(batch, "evaluate");
    EvalStats stats;
    for (int begin = 0; begin < batch.rows; begin += max_batch_) {
      const int rows = std::min(max_batch_, batch.rows - begin);
      const int block = split(batch, begin, rows);
      const TokenLossSums sums = gpt_.forward(params_.data(), inputs_.data(), targets_.data(), rows,
                                              block, /*for_backward=*/false);
      stats.loss_sum += sums.loss_sum;
      stats.correct += sums.correct;
      stats.rows += static_cast<int64_t>(rows) * block;
    }
    return stats;
  }

 private:
  void check_batch(const data::Batch& b, const char* what) const {
    const std::string w = what;
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
  int split(const data::Batch& b, int begin, int rows) {
    const int block = b.cols - 1;
    for (int r = 0; r < rows; ++r) {
      const int32_t* w = b.tokens + static_cast<size_t>(begin + r) * b.cols;
      std::copy(w, w + block, inputs_.begin() + static_cast<long>(r) * block);
      std::copy(w + 1, w + 1 + block, targets_.begin() + static_cast<long>(r) * block);
    }
    return block;
  }

  GptModel<float> gpt_;
  int max_batch_;
  std::vector<float> grads_;
  std::vector<int32_t> inputs_, targets_;
};

}  // namespace

core::Result<std::unique_ptr<Backend>> make_cpu_gpt_backend(const ModelSpec& model,
                                                            const OptimizerSpec& optimizer,
                                                            const BackendOptions& options) {
  auto rule = make_optimizer(optimizer);
  if (!rule) return rule.status();
  setup_openblas(options.cpu_threads);
  return std::unique_ptr<Backend>(
      std::make_unique<CpuGptBackend>(model, optimizer, std::move(rule).value(), options));
}

}  // namespace gossip::train::cpu
