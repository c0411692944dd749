// DeviceState: the CUDA backends' shared state traffic with the host and their
// optimizer step. snapshot (one D2H copy into pinned memory), apply_delta
// (one H2D copy of both wire snapshots plus one fused axpy), whole-state
// reads and writes, and optimizer_update (clipping factor on the device, then
// one fused update kernel per run of decay_parts()).
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "device_state.cuh"
#include "ops.cuh"

namespace gossip::train::cuda {

DeviceState::DeviceState(const ModelSpec& model, const OptimizerSpec& optimizer,
                         const BackendOptions& options, cudaStream_t stream)
    : model_(model), optimizer_(optimizer), options_(options), stream_(stream) {
  CUDA_CHECK(cudaGetDevice(&device_));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  name_ = "cuda:" + std::to_string(device_) + " (" + prop.name + ")";
  check_kernel_image();
  n_params_ = model_.param_count();
  n_state_ = optimizer_.state_count(n_params_);
  if (optimizer_.weight_decay > 0.0) {
    runs_ = model_.decay_parts();
  } else {
    runs_.push_back({0, n_params_, false});  // nothing decays: one launch over the buffer
  }

  params_ = DeviceBuffer(n_params_ * sizeof(float));
  grads_ = DeviceBuffer(n_params_ * sizeof(float));
  state_ = DeviceBuffer(n_state_ * sizeof(float));
  clip_ = DeviceBuffer(kClipPartials * sizeof(double) + sizeof(float));
  // The averaging traffic's buffers too: a peer that started must not find
  // the device full at its first exchange.
  snapshot_host_ = PinnedBuffer(n_params_ * sizeof(float));
  delta_stage_ = PinnedBuffer(2 * n_params_ * sizeof(float));
  delta_dev_ = DeviceBuffer(2 * n_params_ * sizeof(float));

  if (n_state_ > 0) {
    CUDA_CHECK(cudaMemsetAsync(state_.as<float>(), 0, n_state_ * sizeof(float), stream_));
  }
  CUDA_CHECK(cudaMemsetAsync(grads_.as<float>(), 0, n_params_ * sizeof(float), stream_));
  CUDA_CHECK(cudaEventRecord(delta_staged_.get(), stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void DeviceState::check_size(const char* op, size_t got, size_t want) const {
  if (got != want) {
    throw std::invalid_argument(std::string("cuda backend: ") + op + ": buffer has " +
                                std::to_string(got) + " floats, the model needs " +
                                std::to_string(want));
  }
}

void DeviceState::optimizer_update(float lr) {
  float* x = params_.as<float>();
  float* g = grads_.as<float>();
  float* s = state_.as<float>();
  const OptimizerSpec& o = optimizer_;
  const float* grad_scale = nullptr;
  if (o.grad_clip > 0.0) {
    double* partials = clip_.as<double>();
    float* factor = reinterpret_cast<float*>(partials + kClipPartials);
    grad_clip_factor(stream_, factor, partials, g, n_params_, o.grad_clip);
    grad_scale = factor;
  }
  const float wd = static_cast<float>(o.weight_decay);
  // Bias corrections in double, as the host rule computes them.
  const double t = static_cast<double>(steps_ + 1);
  const float inv_bc1 = static_cast<float>(1.0 / (1.0 - std::pow(o.beta1, t)));
  const float inv_bc2 = static_cast<float>(1.0 / (1.0 - std::pow(o.beta2, t)));
  for (const DecayPart& r : runs_) {
    const size_t at = r.offset;
    const float run_wd = r.decay ? wd : 0.0f;
    if (o.kind == OptimizerKind::kSgd) {
      sgd_update(stream_, x + at, g + at, grad_scale, o.momentum == 0.0 ? nullptr : s + at, r.size,
                 lr, static_cast<float>(o.momentum), run_wd, o.nesterov);
    } else {
      adam_update(stream_, x + at, g + at, grad_scale, s + at, s + n_params_ + at, r.size, lr,
                  static_cast<float>(o.beta1), static_cast<float>(o.beta2),
                  static_cast<float>(o.eps), run_wd, inv_bc1, inv_bc2,
                  o.kind == OptimizerKind::kAdamW);
    }
  }
  ++steps_;
}

std::span<const float> DeviceState::snapshot() {
  activate();
  float* host = snapshot_host_.as<float>();
  CUDA_CHECK(cudaMemcpyAsync(host, params_.as<float>(), n_params_ * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return {host, n_params_};
}

void DeviceState::apply_delta(float scale, std::span<const float> other,
                              std::span<const float> own) {
  activate();
  check_size("apply_delta(other)", other.size(), n_params_);
  check_size("apply_delta(own)", own.size(), n_params_);
  const size_t bytes = n_params_ * sizeof(float);
  float* stage = delta_stage_.as<float>();
  CUDA_CHECK(cudaEventSynchronize(delta_staged_.get()));
  std::memcpy(stage, other.data(), bytes);
  std::memcpy(stage + n_params_, own.data(), bytes);
  float* dev = delta_dev_.as<float>();
  CUDA_CHECK(cudaMemcpyAsync(dev, stage, 2 * bytes, cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaEventRecord(delta_staged_.get(), stream_));
  apply_delta_axpy(stream_, params_.as<float>(), dev, dev + n_params_, n_params_, scale);
}

void DeviceState::read_parameters(std::span<float> out) {
  activate();
  check_size("read_parameters", out.size(), n_params_);
  CUDA_CHECK(cudaMemcpyAsync(out.data(), params_.as<float>(), n_params_ * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void DeviceState::write_parameters(std::span<const float> in) {
  activate();
  check_size("write_parameters", in.size(), n_params_);
  CUDA_CHECK(cudaMemcpyAsync(params_.as<float>(), in.data(), n_params_ * sizeof(float),
                             cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void DeviceState::read_optimizer_state(std::span<float> out) {
  activate();
  check_size("read_optimizer_state", out.size(), n_state_);
  if (n_state_ == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(out.data(), state_.as<float>(), n_state_ * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void DeviceState::write_optimizer_state(std::span<const float> in) {
  activate();
  check_size("write_optimizer_state", in.size(), n_state_);
  if (n_state_ == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(state_.as<float>(), in.data(), n_state_ * sizeof(float),
                             cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace gossip::train::cuda
