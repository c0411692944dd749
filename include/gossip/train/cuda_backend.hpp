// Entry points of the CUDA backend library (built only with -Dcuda enabled and
// nvcc + cuBLAS found). No CUDA types here; make_backend() is the public door.
#pragma once

#include <memory>

#include "gossip/train/backend.hpp"

namespace gossip::train::cuda {

// True when the CUDA runtime reports at least one usable device.
bool device_present();

// Builds the CUDA backend on device 0 with one stream of its own.
core::Result<std::unique_ptr<Backend>> make_cuda_backend(const ModelSpec& model,
                                                         const OptimizerSpec& optimizer,
                                                         const BackendOptions& options);

}  // namespace gossip::train::cuda
