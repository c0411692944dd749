// The CUDA backend's training and evaluation: batch upload through pinned
// staging, forward (cuBLAS + bias_act_forward), the fused loss, backward
// (cuBLAS + act_backward) and the fused optimizer update, all enqueued on the
// backend's stream; train_step waits only for the loss to reach the host.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda_backend.cuh"
#include "cuda_check.cuh"

namespace gossip::train::cuda {
namespace {

Act act_of(Activation a) {
  switch (a) {
    case Activation::kRelu:
      return Act::kRelu;
    case Activation::kTanh:
      return Act::kTanh;
    case Activation::kGelu:
      return Act::kGelu;
  }
  return Act::kRelu;
}

}  // namespace

void CudaBackend::check_batch(const data::Batch& batch, const char* op) const {
  const std::string where = std::string("cuda backend: ") + op + ": ";
  if (batch.rows < 1 || batch.x == nullptr) throw std::invalid_argument(where + "empty batch");
  if (batch.cols != inputs_) {
    throw std::invalid_argument(where + "batch has " + std::to_string(batch.cols) +
                                " features, the model takes " + std::to_string(inputs_));
  }
  if (model_.loss == LossKind::kSoftmaxCrossEntropy) {
    if (batch.labels == nullptr) {
      throw std::invalid_argument(where + "classification batch without labels");
    }
  } else if (batch.targets == nullptr || batch.target_cols != outputs_) {
    throw std::invalid_argument(where + "regression batch needs targets with " +
                                std::to_string(outputs_) + " columns, got " +
                                std::to_string(batch.targets ? batch.target_cols : 0));
  }
}

CudaBackend::Inputs CudaBackend::upload_batch(const data::Batch& batch, int first_row, int rows) {
  const size_t x_floats = static_cast<size_t>(rows) * inputs_;
  const size_t x_bytes = align_up(x_floats * sizeof(float));
  char* stage = batch_stage_.as<char>();
  size_t bytes = x_bytes;
  // The previous upload must have left the staging buffer before we refill it.
  CUDA_CHECK(cudaEventSynchronize(staged_.get()));
  std::memcpy(stage, batch.x + static_cast<size_t>(first_row) * inputs_, x_floats * sizeof(float));
  Inputs in;
  in.x = reinterpret_cast<const float*>(input_);
  if (model_.loss == LossKind::kSoftmaxCrossEntropy) {
    const int32_t* labels = batch.labels + first_row;
    for (int r = 0; r < rows; ++r) {
      if (labels[r] < 0 || labels[r] >= outputs_) {
        throw std::out_of_range("softmax cross-entropy: label " + std::to_string(labels[r]) +
                                " of row " + std::to_string(first_row + r) + " is outside [0, " +
                                std::to_string(outputs_) + ")");
      }
    }
    std::memcpy(stage + x_bytes, labels, static_cast<size_t>(rows) * sizeof(int32_t));
    bytes += static_cast<size_t>(rows) * sizeof(int32_t);
    in.labels = reinterpret_cast<const int32_t*>(input_ + x_bytes);
  } else {
    const size_t t_floats = static_cast<size_t>(rows) * outputs_;
    std::memcpy(stage + x_bytes, batch.targets + static_cast<size_t>(first_row) * outputs_,
                t_floats * sizeof(float));
    bytes += t_floats * sizeof(float);
    in.targets = reinterpret_cast<const float*>(input_ + x_bytes);
  }
  CUDA_CHECK(cudaMemcpyAsync(input_, stage, bytes, cudaMemcpyHostToDevice, stream()));
  CUDA_CHECK(cudaEventRecord(staged_.get(), stream()));
  return in;
}

void CudaBackend::forward(const float* x, int rows) {
  const float* p = params_.as<float>();
  const Act act = act_of(model_.activation);
  const float* in = x;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const bool hidden = l + 1 < layers_.size();
    linear_forward(blas_.get(), L.pre, in, p + L.view.weight_offset, rows, L.view.in, L.view.out);
    bias_act_forward(stream(), L.pre, L.post, p + L.view.bias_offset, rows, L.view.out,
                     hidden ? act : Act::kIdentity);
    in = L.post;
  }
}

void CudaBackend::loss(const Inputs& in, int rows, float* dlogits) {
  const float* logits = layers_.back().pre;
  if (model_.loss == LossKind::kSoftmaxCrossEntropy) {
    softmax_xent_forward_backward(stream(), dlogits, row_loss_, row_correct_, logits, in.labels,
                                  rows, outputs_);
  } else {
    mse_forward_backward(stream(), dlogits, row_loss_, row_correct_, logits, in.targets, rows,
                         outputs_);
  }
  reduce_loss_stats(stream(), stats_, row_loss_, row_correct_, rows);
  CUDA_CHECK(cudaMemcpyAsync(stats_host_.as<LossStats>(), stats_, sizeof(LossStats),
                             cudaMemcpyDeviceToHost, stream()));
}

void CudaBackend::backward(const float* x, int rows) {
  const float* p = params_.as<float>();
  float* g = grads_.as<float>();
  const Act act = act_of(model_.activation);
  int cur = 0;  // dbuf_[cur] holds d(loss)/d(pre) of layer l
  for (size_t l = layers_.size(); l-- > 0;) {
    const Layer& L = layers_[l];
    float* dinp = l > 0 ? dbuf_[1 - cur] : nullptr;
    const float* layer_in = l > 0 ? layers_[l - 1].post : x;
    linear_backward(blas_.get(), dinp, g + L.view.weight_offset, g + L.view.bias_offset, dbuf_[cur],
                    layer_in, p + L.view.weight_offset, ones_, rows, L.view.in, L.view.out);
    if (l > 0) {
      act_backward(stream(), dinp, layers_[l - 1].pre, layers_[l - 1].post,
                   static_cast<size_t>(rows) * L.view.in, act);
      cur = 1 - cur;
    }
  }
}

float CudaBackend::train_step(const data::Batch& batch, float lr) {
  activate();
  check_batch(batch, "train_step");
  if (batch.rows > options_.max_batch) {
    throw std::invalid_argument("cuda backend: train_step: batch of " + std::to_string(batch.rows) +
                                " rows exceeds max_batch " + std::to_string(options_.max_batch));
  }
  const int rows = batch.rows;
  const Inputs in = upload_batch(batch, 0, rows);
  forward(in.x, rows);
  loss(in, rows, dbuf_[0]);
  CUDA_CHECK(cudaEventRecord(loss_ready_.get(), stream()));
  backward(in.x, rows);
  optimizer_update(lr);
  // Wait for the loss only; backward and update keep running.
  CUDA_CHECK(cudaEventSynchronize(loss_ready_.get()));
  return static_cast<float>(stats_host_.as<LossStats>()->loss_sum / rows);
}

EvalStats CudaBackend::evaluate(const data::Batch& batch) {
  activate();
  check_batch(batch, "evaluate");
  EvalStats total;
  for (int first = 0; first < batch.rows; first += options_.max_batch) {
    const int rows = std::min(options_.max_batch, batch.rows - first);
    const Inputs in = upload_batch(batch, first, rows);
    forward(in.x, rows);
    loss(in, rows, nullptr);
    CUDA_CHECK(cudaStreamSynchronize(stream()));
    const LossStats& s = *stats_host_.as<LossStats>();
    total.loss_sum += s.loss_sum;
    total.correct += s.correct;
    total.rows += rows;
  }
  return total;
}

}  // namespace gossip::train::cuda
