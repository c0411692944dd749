// DeviceState: the part of a CUDA backend that every model family shares, the
// counterpart of the CPU's HostState: the model and optimizer specs, the flat
// parameter, gradient and optimizer-state buffers on the device, the
// optimizer step (global-norm clipping reduced on the device in a fixed
// order, then the fused update kernels with weight decay on the decaying
// parts of ModelSpec::decay_parts() only), the snapshot and delta paths of
// the averaging engine (pinned staging), whole-state access for checkpoints
// and the optimizer step count. Private to src/train/cuda.
//
// The stream is borrowed: the derived backend owns its one stream (the MLP
// backend a Stream, the GPT backend its CudaGptModel's) and constructs that
// owner before this base (a private base listed first), so the stream
// outlives every use here. Every buffer is allocated in the constructor.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "device_memory.cuh"
#include "gossip/train/backend.hpp"

namespace gossip::train::cuda {

class DeviceState : public Backend {
 public:
  // On the current device: allocates parameters, gradients, optimizer state,
  // the clipping scratch and the pinned/device buffers of snapshot() and
  // apply_delta(); zeroes gradients and state on `stream` and waits for it.
  // Parameters are left for the caller to write. Throws CudaError when an
  // allocation or a CUDA call fails or the device has no code for us.
  DeviceState(const ModelSpec& model, const OptimizerSpec& optimizer, const BackendOptions& options,
              cudaStream_t stream);
  ~DeviceState() override { (void)cudaStreamSynchronize(stream_); }
  DeviceState(const DeviceState&) = delete;
  DeviceState& operator=(const DeviceState&) = delete;

  std::string device_name() const override { return name_; }
  const ModelSpec& model() const override { return model_; }
  const OptimizerSpec& optimizer() const override { return optimizer_; }
  std::span<const float> snapshot() override;
  void apply_delta(float scale, std::span<const float> other, std::span<const float> own) override;
  void read_parameters(std::span<float> out) override;
  void write_parameters(std::span<const float> in) override;
  void read_optimizer_state(std::span<float> out) override;
  void write_optimizer_state(std::span<const float> in) override;
  int64_t optimizer_steps() const override { return steps_; }
  void set_optimizer_steps(int64_t steps) override { steps_ = steps; }

 protected:
  cudaStream_t stream() const { return stream_; }
  void activate() const { CUDA_CHECK(cudaSetDevice(device_)); }
  // Enqueues the update of the parameters from grads_ (the gradient of the
  // mean batch loss) with learning rate lr: with optimizer.grad_clip > 0 the
  // gradient's global L2 norm is reduced on the device (fixed partition and
  // tree, double accumulation: the same bits on every run) and the update
  // kernels scale g by min(1, clip / (norm + 1e-6)) as they read it; no
  // host round trip. Then counts the step. Does not wait.
  void optimizer_update(float lr);
  // Throws std::invalid_argument naming `op` when got != want.
  void check_size(const char* op, size_t got, size_t want) const;

  ModelSpec model_;
  OptimizerSpec optimizer_;
  BackendOptions options_;
  size_t n_params_ = 0;
  size_t n_state_ = 0;
  int64_t steps_ = 0;
  DeviceBuffer params_;
  DeviceBuffer grads_;
  DeviceBuffer state_;

 private:
  cudaStream_t stream_;
  int device_ = 0;
  std::string name_;
  std::vector<DecayPart> runs_;  // decay_parts(), or one run when weight_decay is 0
  Event delta_staged_;           // the last apply_delta upload left its staging buffer
  DeviceBuffer delta_dev_;       // other | own, the two wire snapshots of apply_delta()
  DeviceBuffer clip_;            // kClipPartials doubles, then the clip factor (one float)
  PinnedBuffer snapshot_host_;   // what snapshot() returns a view of
  PinnedBuffer delta_stage_;     // other | own, staged for the upload
};

}  // namespace gossip::train::cuda
