// CpuBackend: trains one replica on the host with the reference operations of
// cpu_ops.hpp in float and OpenBLAS for the matrix products.
//
// Memory: the flat parameter, gradient and optimizer-state buffers (the first
// and last in HostState) and, per
// layer, pre-activation / activation / gradient scratch sized for max_batch
// are allocated once (64-byte aligned) in the constructor; a training step
// allocates nothing. Called from one trainer thread only.
#include "gossip/train/cpu_backend.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "blas_setup.hpp"
#include "denormals.hpp"
#include "gossip/train/cpu_ops.hpp"
#include "gossip/train/host_optimizer.hpp"
#include "host_state.hpp"

namespace gossip::train::cpu {

namespace {

class CpuBackend final : public HostState {
 public:
  CpuBackend(const ModelSpec& model, const OptimizerSpec& optimizer,
             std::unique_ptr<Optimizer> update_rule, const BackendOptions& options)
      : HostState(model, optimizer, std::move(update_rule)),
        views_(model.layer_views()),
        max_batch_(options.max_batch),
        fused_momentum_(optimizer.kind == OptimizerKind::kSgd && optimizer.momentum > 0.0 &&
                        !optimizer.nesterov && optimizer.grad_clip == 0.0),
        grads_(fused_momentum_ ? 0 : model.param_count()) {
    for (const LayerView& v : views_) {
      const size_t n = static_cast<size_t>(max_batch_) * static_cast<size_t>(v.out);
      pre_.emplace_back(n);
      post_.emplace_back(&v == &views_.back() ? 0 : n);  // the output layer is linear
      dpre_.emplace_back(n);
    }
  }

  float train_step(const data::Batch& batch, float lr) override {
    const FlushDenormals no_denormals;
    check_batch(batch, "train_step");
    if (batch.rows > max_batch_) {
      throw std::invalid_argument("train_step: batch of " + std::to_string(batch.rows) +
                                  " rows exceeds max_batch " + std::to_string(max_batch_));
    }
    forward(batch.x, batch.rows);
    const LossSums sums = loss(batch, 0, batch.rows, dpre_.back().data());
    backward(batch.x, batch.rows);
    if (fused_momentum_) {
      ++steps_;
      momentum_update(lr);
    } else {
      optimizer_step(grads_.span(), lr);
    }
    return static_cast<float>(sums.loss_sum / batch.rows);
  }

  EvalStats evaluate(const data::Batch& batch) override {
    check_batch(batch, "evaluate");
    EvalStats stats;
    // Larger batches than the scratch holds are evaluated in chunks.
    for (int begin = 0; begin < batch.rows; begin += max_batch_) {
      const int rows = std::min(max_batch_, batch.rows - begin);
      forward(batch.x + static_cast<size_t>(begin) * batch.cols, rows);
      const LossSums sums = loss(batch, begin, rows, nullptr);
      stats.loss_sum += sums.loss_sum;
      stats.correct += sums.correct;
      stats.rows += rows;
    }
    return stats;
  }

 private:
  void check_batch(const data::Batch& b, const char* what) const {
    const std::string w = what;
    if (b.rows < 1 || b.x == nullptr) throw std::invalid_argument(w + ": empty batch");
    if (b.cols != model_.layers.front()) {
      throw std::invalid_argument(w + ": batch has " + std::to_string(b.cols) +
                                  " features, model expects " +
                                  std::to_string(model_.layers.front()));
    }
    if (model_.loss == LossKind::kSoftmaxCrossEntropy && b.labels == nullptr) {
      throw std::invalid_argument(w + ": softmax_cross_entropy needs labels");
    }
    if (model_.loss == LossKind::kMse &&
        (b.targets == nullptr || b.target_cols != model_.layers.back())) {
      throw std::invalid_argument(w + ": mse needs targets with " +
                                  std::to_string(model_.layers.back()) + " columns");
    }
  }

  // Fills pre_/post_ for `rows` rows of x.
  void forward(const float* x, int rows) {
    const float* in = x;
    for (size_t l = 0; l < views_.size(); ++l) {
      const LayerView& v = views_[l];
      const bool hidden = l + 1 < views_.size();
      float* pre = pre_[l].data();
      linear_forward(pre, in, params_.data() + v.weight_offset, rows, v.in, v.out);
      bias_act_forward(pre, hidden ? post_[l].data() : nullptr, params_.data() + v.bias_offset,
                       rows, v.out, model_.activation);
      in = post_[l].data();
    }
  }

  // Loss of the output layer against rows [begin, begin+rows) of the batch.
  LossSums loss(const data::Batch& b, int begin, int rows, float* dout) const {
    const float* out = pre_.back().data();
    const int classes = views_.back().out;
    if (model_.loss == LossKind::kSoftmaxCrossEntropy) {
      return softmax_xent_forward_backward(dout, out, b.labels + begin, rows, classes);
    }
    return mse_forward_backward(dout, out, b.targets + static_cast<size_t>(begin) * classes, rows,
                                classes);
  }

  // Gradients of the mean loss, from dpre_.back() down: into grads_, or with
  // fused momentum straight into the velocity (v = mu v + g inside the GEMM).
  void backward(const float* x, int rows) {
    float* g = fused_momentum_ ? state_.data() : grads_.data();
    const float beta = fused_momentum_ ? static_cast<float>(optimizer_spec_.momentum) : 0.0f;
    for (size_t l = views_.size(); l-- > 0;) {
      const LayerView& v = views_[l];
      const float* layer_in = l > 0 ? post_[l - 1].data() : x;
      float* dinp = l > 0 ? dpre_[l - 1].data() : nullptr;  // the input needs no gradient
      linear_backward(dinp, g + v.weight_offset, g + v.bias_offset, dpre_[l].data(), layer_in,
                      params_.data() + v.weight_offset, rows, v.in, v.out, beta);
      if (l > 0) {
        act_backward(dinp, pre_[l - 1].data(), post_[l - 1].data(),
                     static_cast<int64_t>(rows) * v.in, model_.activation);
      }
    }
  }

  // Finishes the heavy-ball SGD rule of optimizer.hpp after backward() left
  // v = mu v + g: adds weight decay (g' = g + wd x) on the weight matrices
  // (decay_parts(): never the biases) and moves x. One pass.
  void momentum_update(float lr) {
    const float wd = static_cast<float>(optimizer_spec_.weight_decay);
    if (wd == 0.0f) {
      float* __restrict x = params_.data();
      const float* __restrict v = state_.data();
      const size_t n = params_.size();
      for (size_t i = 0; i < n; ++i) x[i] -= lr * v[i];
      return;
    }
    for (const Optimizer::Part& p : parts_) {
      float* __restrict x = params_.data() + p.offset;
      float* __restrict v = state_.data() + p.offset;
      if (!p.decay) {
        for (size_t i = 0; i < p.size; ++i) x[i] -= lr * v[i];
        continue;
      }
      for (size_t i = 0; i < p.size; ++i) {
        const float vi = v[i] + wd * x[i];
        v[i] = vi;
        x[i] -= lr * vi;
      }
    }
  }

  std::vector<LayerView> views_;
  int max_batch_;
  bool fused_momentum_;  // sgd, momentum > 0, not nesterov, no clipping: see backward()
  FloatBuffer grads_;
  std::vector<FloatBuffer> pre_, post_, dpre_;  // per layer, max_batch x out
};

}  // namespace

core::Result<std::unique_ptr<Backend>> make_cpu_backend(const ModelSpec& model,
                                                        const OptimizerSpec& optimizer,
                                                        const BackendOptions& options) {
  GOSSIP_RETURN_IF_ERROR(model.validate());
  if (options.max_batch < 1) {
    return core::invalid_argument("backend.max_batch: must be >= 1, got " +
                                  std::to_string(options.max_batch));
  }
  if (options.cpu_threads < 1) {
    return core::invalid_argument("training.cpu_threads: must be >= 1, got " +
                                  std::to_string(options.cpu_threads));
  }
  if (model.is_gpt()) return make_cpu_gpt_backend(model, optimizer, options);
  auto rule = make_optimizer(optimizer);
  if (!rule) return rule.status();
  setup_openblas(options.cpu_threads);
  return std::unique_ptr<Backend>(
      std::make_unique<CpuBackend>(model, optimizer, std::move(rule).value(), options));
}

}  // namespace gossip::train::cpu
