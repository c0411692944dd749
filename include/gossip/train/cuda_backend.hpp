// Entry points of the CUDA backend library (built only with -Dcuda enabled and
// nvcc + cuBLAS found). No CUDA types here; make_backend() is the public door.
#pragma once

#include <memory>

#include "gossip/train/backend.hpp"

namespace gossip::train::cuda {

// True when the CUDA runtime reports at least one usable device. Never
// crashes without a driver or GPU (returns false). Any thread.
bool device_present();

// Builds the CUDA backend on the current device (device 0 unless the calling
// thread chose another) with one stream and one cuBLAS handle of its own;
// TF32 products only when options.allow_tf32. Every buffer is allocated here:
// the workspace for options.max_batch rows and the pinned and device buffers
// of snapshot() and apply_delta(), so no later method allocates. Parameters
// start from init_parameters(model), optimizer state at zero. Errors:
// invalid_argument for bad specs or max_batch < 1; unavailable when no device
// is present, when the GPU is older than the code built in (sm_75), or when
// memory runs out (the message names the model and max_batch). The backend's
// methods throw std::invalid_argument / std::out_of_range on bad arguments (as
// the CPU backend) and cuda::CudaError (a std::runtime_error) if the device
// fails mid-run.
core::Result<std::unique_ptr<Backend>> make_cuda_backend(const ModelSpec& model,
                                                         const OptimizerSpec& optimizer,
                                                         const BackendOptions& options);

}  // namespace gossip::train::cuda
