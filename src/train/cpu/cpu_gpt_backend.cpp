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

#include "../gpt_windows.hpp"
#include "blas_setup.hpp"
#include "gossip/train/cpu_backend.hpp"
#include "gossip/train/gpt_cpu.hpp"
#include "gossip/train/host_optimizer.hpp"
#include "gpt_profile.hpp"
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
        windows_(options.max_batch, model.gpt.block) {}

  float train_step(const data::Batch& batch, float lr) override {
    windows_.check_whole(batch, "train_step");
    profile::Laps laps;
    const int block = windows_.split(batch, 0, batch.rows);
    laps.lap(profile::Op::kTokens);
    const TokenLossSums sums = gpt_.forward(params_.data(), windows_.inputs(), windows_.targets(),
                                            batch.rows, block, /*for_backward=*/true);
    gpt_.backward(params_.data(), grads_.data());
    profile::Laps update_laps;
    optimizer_step(grads_, lr);
    update_laps.lap(profile::Op::kOptimizer);
    return static_cast<float>(sums.loss_sum / (static_cast<double>(batch.rows) * block));
  }

  // One EvalStats row per predicted byte: mean_loss() is nats per byte,
  // accuracy() the next-byte top-1 accuracy.
  EvalStats evaluate(const data::Batch& batch) override {
    windows_.check(batch, "evaluate");
    EvalStats stats;
    for (int begin = 0; begin < batch.rows; begin += max_batch_) {
      const int rows = std::min(max_batch_, batch.rows - begin);
      const int block = windows_.split(batch, begin, rows);
      const TokenLossSums sums = gpt_.forward(params_.data(), windows_.inputs(), windows_.targets(),
                                              rows, block, /*for_backward=*/false);
      stats.loss_sum += sums.loss_sum;
      stats.correct += sums.correct;
      stats.rows += static_cast<int64_t>(rows) * block;
    }
    return stats;
  }

 private:
  GptModel<float> gpt_;
  int max_batch_;
  std::vector<float> grads_;
  GptWindows windows_;
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
