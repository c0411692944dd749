// CudaBackend: one replica of the model on one GPU (declaration shared by
// cuda_backend.cu, which builds it and moves state in and out, and
// cuda_train.cu, which runs the steps). Private to src/train/cuda: the public
// door is make_cuda_backend() in include/gossip/train/cuda_backend.hpp.
//
// Memory: the parameters are ONE device allocation, the gradients one, the
// optimizer state one, and every activation/scratch buffer is carved out of
// one workspace sized for BackendOptions::max_batch; the pinned and device
// buffers of snapshot() and apply_delta() are allocated with them, and so is
// cuBLAS's workspace (cublasSetWorkspace; otherwise cuBLAS allocates its own
// pool when it chooses). All of it happens in the constructor, so no method
// allocates and an out-of-memory device fails make_cuda_backend(), not a
// running peer. All work runs on the backend's own stream. A training step
// makes one host->device copy (the batch, staged in pinned memory) and one
// small device->host copy (the loss); it waits only for that loss, so the
// backward pass and the update of step k overlap the host preparing batch
// k+1. Anything that hands device state to the host (snapshot, read_*,
// evaluate) waits for the stream. Every method is called from the peer's
// trainer thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "device_memory.cuh"
#include "gossip/train/backend.hpp"
#include "ops.cuh"

namespace gossip::train::cuda {

inline constexpr size_t kAlign = 256;  // bytes; keeps every carved buffer aligned for cuBLAS
inline size_t align_up(size_t v) {
  return (v + kAlign - 1) / kAlign * kAlign;
}

// The Backend on the current CUDA device (device 0 unless the thread chose
// another). The constructor allocates every buffer for options.max_batch and
// zeroes gradients and optimizer state; make_cuda_backend() validates the
// specs first and writes the initial parameters. Methods throw CudaError when
// a CUDA call fails (the device is unusable), std::invalid_argument /
// std::out_of_range for bad arguments, as the CPU backend does.
class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelSpec& model, const OptimizerSpec& optimizer,
              const BackendOptions& options);
  ~CudaBackend() override { (void)cudaStreamSynchronize(stream_.get()); }

  std::string device_name() const override { return name_; }
  const ModelSpec& model() const override { return model_; }
  const OptimizerSpec& optimizer() const override { return optimizer_; }
  float train_step(const data::Batch& batch, float lr) override;
  EvalStats evaluate(const data::Batch& batch) override;
  std::span<const float> snapshot() override;
  void apply_delta(float scale, std::span<const float> other, std::span<const float> own) override;
  void read_parameters(std::span<float> out) override;
  void write_parameters(std::span<const float> in) override;
  void read_optimizer_state(std::span<float> out) override;
  void write_optimizer_state(std::span<const float> in) override;
  int64_t optimizer_steps() const override { return steps_; }
  void set_optimizer_steps(int64_t steps) override { steps_ = steps; }

 private:
  struct Layer {
    LayerView view;
    float* pre = nullptr;   // rows x out, before the activation
    float* post = nullptr;  // rows x out, after it (hidden layers only)
  };
  // Device views of one uploaded batch.
  struct Inputs {
    const float* x = nullptr;
    const int32_t* labels = nullptr;
    const float* targets = nullptr;
  };

  void activate() const { CUDA_CHECK(cudaSetDevice(device_)); }
  void check_batch(const data::Batch& batch, const char* op) const;
  Inputs upload_batch(const data::Batch& batch, int first_row, int rows);
  void forward(const float* x, int rows);
  // Loss of the last forward pass into stats_ (device), gradient into
  // dlogits (null: no gradient).
  void loss(const Inputs& in, int rows, float* dlogits);
  void backward(const float* x, int rows);
  void optimizer_update(float lr);
  void check_size(const char* op, size_t got, size_t want) const;

  ModelSpec model_;
  OptimizerSpec optimizer_;
  BackendOptions options_;
  int device_ = 0;
  std::string name_;
  size_t n_params_ = 0;
  size_t n_state_ = 0;
  int inputs_ = 0;
  int outputs_ = 0;
  int64_t steps_ = 0;

  Stream stream_;
  DeviceBuffer blas_workspace_;  // cuBLAS's, declared before blas_ so it outlives the handle
  BlasHandle blas_;
  Event staged_;        // the last batch upload left the pinned staging buffer
  Event loss_ready_;    // the loss of the last step is in stats_host_
  Event delta_staged_;  // the last apply_delta upload left its staging buffer

  DeviceBuffer params_;
  DeviceBuffer grads_;
  DeviceBuffer state_;
  DeviceBuffer work_;
  DeviceBuffer delta_dev_;  // other | own, the two wire snapshots of apply_delta()
  PinnedBuffer batch_stage_;
  PinnedBuffer stats_host_;
  PinnedBuffer snapshot_host_;  // what snapshot() returns a view of
  PinnedBuffer delta_stage_;    // other | own, staged for the upload

  // Views into work_.
  std::vector<Layer> layers_;
  char* input_ = nullptr;  // x | labels or targets, packed as staged
  float* ones_ = nullptr;
  float* dbuf_[2] = {nullptr, nullptr};
  float* row_loss_ = nullptr;
  int* row_correct_ = nullptr;
  LossStats* stats_ = nullptr;
  size_t input_bytes_ = 0;
};

}  // namespace gossip::train::cuda
