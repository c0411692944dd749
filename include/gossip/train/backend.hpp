// Backend: where a peer's replica lives and trains (CPU or CUDA).
//
// A backend owns the flat parameter buffer, the flat optimizer-state buffer
// and all scratch memory. Every method is called from the peer's trainer
// thread only. The averaging engine reaches the parameters only between
// training steps, in one of two ways that src/averaging/snapshot.cpp picks
// once per exchange: in place through host_parameters() when it is not empty
// (the CPU backend), else through snapshot() and apply_delta(). No CUDA
// types appear here: the CUDA backend hides them in its .cu files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "gossip/core/status.hpp"
#include "gossip/data/batch.hpp"
#include "gossip/train/model.hpp"
#include "gossip/train/optimizer.hpp"

namespace gossip::train {

// Sums over the rows evaluated so far; combine with +=.
struct EvalStats {
  double loss_sum = 0.0;  // sum of per-row losses
  int64_t correct = 0;    // classification only
  int64_t rows = 0;
  EvalStats& operator+=(const EvalStats& o) {
    loss_sum += o.loss_sum;
    correct += o.correct;
    rows += o.rows;
    return *this;
  }
  double mean_loss() const { return rows ? loss_sum / static_cast<double>(rows) : 0.0; }
  double accuracy() const {
    return rows ? static_cast<double>(correct) / static_cast<double>(rows) : 0.0;
  }
};

struct BackendOptions {
  std::string device = "auto";  // "auto" | "cpu" | "cuda"
  int cpu_threads = 1;          // OpenBLAS threads for the CPU backend
  bool allow_tf32 = false;      // CUDA: let cuBLAS use TF32 tensor cores
  int max_batch = 1024;         // largest batch train_step takes and the scratch
                                // holds; evaluate runs larger batches in chunks
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)".
  virtual std::string device_name() const = 0;
  virtual const ModelSpec& model() const = 0;
  virtual const OptimizerSpec& optimizer() const = 0;
  size_t param_count() const { return model().param_count(); }
  size_t optimizer_state_count() const { return optimizer().state_count(param_count()); }

  // One training step on `batch` (rows <= max_batch, cols == layers.front()):
  // forward, loss, backward, optimizer update with learning rate `lr`.
  // Returns the mean loss over the batch before the update.
  virtual float train_step(const data::Batch& batch, float lr) = 0;

  // Forward pass only; returns loss sum / correct count / rows for the batch.
  // Touches no training state (parameters, optimizer state, step count).
  virtual EvalStats evaluate(const data::Batch& batch) = 0;

  // Copies the current parameters into a host buffer the backend owns
  // (pinned memory on CUDA) and returns a view of it. The view stays valid
  // until the next snapshot() call or the backend's destruction.
  virtual std::span<const float> snapshot() = 0;

  // x += scale * (other - own), element-wise over the whole parameter buffer.
  // `other` and `own` are host arrays of param_count() floats (the two wire
  // snapshots of an exchange). Requires both sizes to match.
  virtual void apply_delta(float scale, std::span<const float> other,
                           std::span<const float> own) = 0;

  // The live parameter buffer when it lives in host memory (the CPU
  // backend), else empty (CUDA: go through snapshot()/apply_delta()). Lets
  // averaging quantize from and apply deltas to the parameters in place,
  // without staging copies. Trainer thread only, between steps; the view
  // stays valid for the backend's lifetime.
  virtual std::span<float> host_parameters() { return {}; }

  // Whole-state access for checkpoints and state sync. Sizes must equal
  // param_count() / optimizer_state_count().
  virtual void read_parameters(std::span<float> out) = 0;
  virtual void write_parameters(std::span<const float> in) = 0;
  virtual void read_optimizer_state(std::span<float> out) = 0;
  virtual void write_optimizer_state(std::span<const float> in) = 0;

  // Number of optimizer updates done (Adam's t); restored from checkpoints.
  virtual int64_t optimizer_steps() const = 0;
  virtual void set_optimizer_steps(int64_t steps) = 0;
};

// Builds a backend for `options.device`: "cpu", "cuda" (error naming
// probe_cuda()'s detail unless a device is present), or "auto" (CUDA when a
// device is present, else the CPU, logging why once per process: at warn level
// when a driver is installed but unusable). Parameters start from
// init_parameters(model); optimizer state starts at zero.
core::Result<std::unique_ptr<Backend>> make_backend(const ModelSpec& model,
                                                    const OptimizerSpec& optimizer,
                                                    const BackendOptions& options);

// What this build and machine offer for device "cuda".
struct CudaProbe {
  enum class Outcome {
    kNotCompiled,  // this build has no CUDA backend
    kNoDevice,     // no CUDA driver and no GPU device node, or the driver reports no device
    kPresent,      // the runtime sees at least one device
    kFailed,       // a driver or a GPU is there but the runtime cannot use it (e.g. a driver
                   // older than the toolkit): detail names the CUDA error
  };
  Outcome outcome = Outcome::kNotCompiled;
  std::string detail;  // why, in words a user can act on; never empty
};

// Asks the CUDA runtime (cheap after the first call); never crashes without a
// driver or GPU, and leaves no CUDA error behind. Any thread.
CudaProbe probe_cuda();

// Whether this build includes the CUDA backend, and whether probe_cuda() finds
// a device. Any thread.
bool cuda_compiled();
bool cuda_device_present();

}  // namespace gossip::train
