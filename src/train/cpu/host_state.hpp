// HostState: the part of a CPU backend that every model family shares: its
// model and optimizer specs and update rule, the flat parameter and
// optimizer-state buffers in host memory (parameters initialised), the
// optimizer step (gradient clipping, decay by the model's decay_parts()), the
// snapshot and delta paths the averaging engine uses, whole-state access for
// checkpoints, and the optimizer step count. Internal to the CPU backend.
#pragma once

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "gossip/train/backend.hpp"
#include "gossip/train/host_optimizer.hpp"

namespace gossip::train::cpu {

// A zero-initialised, 64-byte aligned float array (one cache line, one
// AVX-512 vector) that never reallocates.
class FloatBuffer {
 public:
  FloatBuffer() = default;
  explicit FloatBuffer(size_t n) : size_(n) {
    if (n == 0) return;
    const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!data_) throw std::bad_alloc();
    std::memset(data_.get(), 0, bytes);
  }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return size_; }
  std::span<float> span() { return {data_.get(), size_}; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t size_ = 0;
};

class HostState : public Backend {
 public:
  HostState(const ModelSpec& model, const OptimizerSpec& optimizer,
            std::unique_ptr<Optimizer> update_rule)
      : model_(model),
        optimizer_spec_(optimizer),
        update_rule_(std::move(update_rule)),
        params_(model.param_count()),
        state_(optimizer.state_count(model.param_count())),
        parts_(optimizer.weight_decay > 0.0
                   ? model.decay_parts()
                   : std::vector<Optimizer::Part>{{0, model.param_count(), false}}) {
    init_parameters(model_, params_.span());
  }

  std::string device_name() const override { return "cpu"; }
  const ModelSpec& model() const override { return model_; }
  const OptimizerSpec& optimizer() const override { return optimizer_spec_; }

  std::span<const float> snapshot() override {
    // Allocated on first use: averaging works on host_parameters() instead.
    if (snapshot_.size() != params_.size()) snapshot_ = FloatBuffer(params_.size());
    std::memcpy(snapshot_.data(), params_.data(), params_.size() * sizeof(float));
    return {snapshot_.data(), snapshot_.size()};
  }

  void apply_delta(float scale, std::span<const float> other, std::span<const float> own) override {
    require_size(other.size(), params_.size(), "apply_delta: other");
    require_size(own.size(), params_.size(), "apply_delta: own");
    float* __restrict x = params_.data();
    const float* __restrict a = other.data();
    const float* __restrict b = own.data();
    const size_t n = params_.size();
    for (size_t i = 0; i < n; ++i) x[i] += scale * (a[i] - b[i]);
  }

  std::span<float> host_parameters() override { return {params_.data(), params_.size()}; }

  void read_parameters(std::span<float> out) override {
    require_size(out.size(), params_.size(), "read_parameters");
    std::memcpy(out.data(), params_.data(), out.size() * sizeof(float));
  }
  void write_parameters(std::span<const float> in) override {
    require_size(in.size(), params_.size(), "write_parameters");
    std::memcpy(params_.data(), in.data(), in.size() * sizeof(float));
  }
  void read_optimizer_state(std::span<float> out) override {
    require_size(out.size(), state_.size(), "read_optimizer_state");
    if (!out.empty()) std::memcpy(out.data(), state_.data(), out.size() * sizeof(float));
  }
  void write_optimizer_state(std::span<const float> in) override {
    require_size(in.size(), state_.size(), "write_optimizer_state");
    if (!in.empty()) std::memcpy(state_.data(), in.data(), in.size() * sizeof(float));
  }

  int64_t optimizer_steps() const override { return steps_; }
  void set_optimizer_steps(int64_t steps) override { steps_ = steps; }

 protected:
  // One optimizer update from the gradient of the mean batch loss: clips
  // `grads` in place (optimizer.grad_clip), counts the step, applies the
  // update rule with weight decay on the decaying parts only.
  void optimizer_step(std::span<float> grads, float lr) {
    clip_gradient(grads);
    ++steps_;
    update_rule_->update(params_.span(), grads, state_.span(), lr, steps_, parts_);
  }

  // optimizer.grad_clip (0 = off): scales `grads` to that global L2 norm
  // when it is larger, as PyTorch's clip_grad_norm_ (norm summed in double,
  // scale clip / (norm + 1e-6)). Returns the factor applied (1: none).
  float clip_gradient(std::span<float> grads) const {
    if (optimizer_spec_.grad_clip <= 0.0) return 1.0f;
    double sq = 0.0;
    for (float g : grads) sq += static_cast<double>(g) * g;
    const double scale = optimizer_spec_.grad_clip / (std::sqrt(sq) + 1e-6);
    if (scale >= 1.0) return 1.0f;
    const auto s = static_cast<float>(scale);
    for (float& g : grads) g *= s;
    return s;
  }

  static void require_size(size_t got, size_t want, const char* what) {
    if (got != want) {
      throw std::invalid_argument(std::string(what) + ": buffer holds " + std::to_string(got) +
                                  " floats, expected " + std::to_string(want));
    }
  }

  ModelSpec model_;
  OptimizerSpec optimizer_spec_;
  std::unique_ptr<Optimizer> update_rule_;
  FloatBuffer params_, state_, snapshot_;
  // model_.decay_parts(), or one part when nothing decays (one pass, as
  // before decay had parts).
  std::vector<Optimizer::Part> parts_;
  int64_t steps_ = 0;
};

}  // namespace gossip::train::cpu
