// Entry points of the CUDA backend library (built only with -Dcuda enabled and
// nvcc + cuBLAS found). No CUDA types here; make_backend() is the public door.
#pragma once

#include <memory>

#include "gossip/train/backend.hpp"

namespace gossip::train::cuda {

// probe_cuda() of this library: kPresent, kNoDevice or kFailed (never
// kNotCompiled). Any thread.
CudaProbe probe_device();

// What probe_device() asks the CUDA runtime and the file system, as plain
// values (cudaError_t as int) so that no CUDA type appears here.
struct ProbeAnswers {
  int count_error = 0;       // cudaGetDeviceCount's cudaError_t
  int count = 0;             // the devices it reported
  int driver_version = 0;    // cudaDriverGetVersion: 0 when no driver library loads, -1 on error
  int runtime_version = 0;   // cudaRuntimeGetVersion, e.g. 13000
  bool device_node = false;  // /dev/nvidiactl exists (the kernel module is loaded)
};

// The rule probe_device() applies: kPresent when devices were counted;
// kNoDevice when the driver reports none (cudaErrorNoDevice or a count of 0),
// or when no driver library loads and no device node exists; kFailed
// otherwise, with the error's name and string and both versions in detail.
// Pure; any thread.
CudaProbe classify_probe(const ProbeAnswers& answers);

// Builds the CUDA backend on the current device (device 0 unless the calling
// thread chose another), the MLP's or, for a gpt model, the GPT's (windows of
// max_batch x block tokens; AdamW decay by the tensor table, grad_clip reduced
// on the device), with one stream and one cuBLAS handle of its own;
// TF32 products only when options.allow_tf32. Every buffer is allocated here:
// the workspace for options.max_batch rows and the pinned and device buffers
// of snapshot() and apply_delta(), so no later method allocates. Parameters
// start from init_parameters(model), optimizer state at zero. Errors:
// invalid_argument for bad specs or max_batch < 1; unavailable when
// probe_device() finds no usable device (the message is its detail), when the
// GPU is older than the code built in (sm_75), or when memory runs out (the
// message names the model and max_batch). The backend's methods throw
// std::invalid_argument / std::out_of_range on bad arguments (as the CPU
// backend) and cuda::CudaError (a std::runtime_error) if the device fails
// mid-run.
core::Result<std::unique_ptr<Backend>> make_cuda_backend(const ModelSpec& model,
                                                         const OptimizerSpec& optimizer,
                                                         const BackendOptions& options);

}  // namespace gossip::train::cuda
