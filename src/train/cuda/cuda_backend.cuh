// CudaBackend: one replica of the MLP on one GPU (declaration shared by
// cuda_backend.cu, which builds it, and cuda_train.cu, which runs the steps);
// the state traffic and the optimizer step are DeviceState's
// (device_state.cuh), shared with the GPT's CudaGptBackend. Private to
// src/train/cuda: the public door is make_cuda_backend() in
// include/gossip/train/cuda_backend.hpp.
//
// Memory: the parameters are ONE device allocation, the gradients one, the
// optimizer state one (DeviceState's), and every activation/scratch buffer is carved out of
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
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "device_memory.cuh"
#include "device_state.cuh"
#include "gossip/train/backend.hpp"
#include "ops.cuh"

namespace gossip::train::cuda {

inline constexpr size_t kAlign = 256;  // bytes; keeps every carved buffer aligned for cuBLAS
inline size_t align_up(size_t v) {
  return (v + kAlign - 1) / kAlign * kAlign;
}

// The stream of a CudaBackend, in a base of its own so that it exists before
// DeviceState (which borrows it) and outlives it.
struct OwnStream {
  Stream own_stream_;
};

// The Backend on the current CUDA device (device 0 unless the thread chose
// another). The constructor allocates every buffer for options.max_batch and
// zeroes gradients and optimizer state; make_cuda_backend() validates the
// specs first and writes the initial parameters. Methods throw CudaError when
// a CUDA call fails (the device is unusable), std::invalid_argument /
// std::out_of_range for bad arguments, as the CPU backend does.
class CudaBackend final : private OwnStream, public DeviceState {
 public:
  CudaBackend(const ModelSpec& model, const OptimizerSpec& optimizer,
              const BackendOptions& options);
  // The stream's work ends before the workspace it uses is freed.
  ~CudaBackend() override { (void)cudaStreamSynchronize(stream()); }

  float train_step(const data::Batch& batch, float lr) override;
  EvalStats evaluate(const data::Batch& batch) override;

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

  void check_batch(const data::Batch& batch, const char* op) const;
  Inputs upload_batch(const data::Batch& batch, int first_row, int rows);
  void forward(const float* x, int rows);
  // Loss of the last forward pass into stats_ (device), gradient into
  // dlogits (null: no gradient).
  void loss(const Inputs& in, int rows, float* dlogits);
  void backward(const float* x, int rows);

  int inputs_ = 0;
  int outputs_ = 0;

  DeviceBuffer blas_workspace_;  // cuBLAS's, declared before blas_ so it outlives the handle
  BlasHandle blas_;
  Event staged_;      // the last batch upload left the pinned staging buffer
  Event loss_ready_;  // the loss of the last step is in stats_host_

  DeviceBuffer work_;
  PinnedBuffer batch_stage_;
  PinnedBuffer stats_host_;

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

// The GPT family's backend (cuda_gpt_backend.cu) on the current device, with
// the contract of CudaBackend's constructor; make_cuda_backend() builds it for
// a gpt model. Throws CudaError when memory runs out.
std::unique_ptr<Backend> build_cuda_gpt_backend(const ModelSpec& model,
                                                const OptimizerSpec& optimizer,
                                                const BackendOptions& options);

}  // namespace gossip::train::cuda
