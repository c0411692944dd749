// Entry point of the CPU backend (OpenBLAS). make_backend() is the usual door;
// this one is for callers that want the CPU regardless of the device option
// (tests, the CPU column of benchmarks).
#pragma once

#include <memory>

#include "gossip/train/backend.hpp"

namespace gossip::train::cpu {

// Builds the CPU backend: validates both specs, allocates every buffer for
// options.max_batch once, initialises parameters with init_parameters() and
// zeroes the optimizer state. Sets OpenBLAS to options.cpu_threads threads;
// that setting is process-wide, so peers sharing a process should agree on it.
core::Result<std::unique_ptr<Backend>> make_cpu_backend(const ModelSpec& model,
                                                        const OptimizerSpec& optimizer,
                                                        const BackendOptions& options);

// The GPT family's CPU backend (make_cpu_backend calls it for a gpt model):
// windows of tokens in, AdamW decaying only the tensors the table marks,
// optimizer.grad_clip honoured.
core::Result<std::unique_ptr<Backend>> make_cpu_gpt_backend(const ModelSpec& model,
                                                            const OptimizerSpec& optimizer,
                                                            const BackendOptions& options);

// OpenBLAS's name for the kernels in use ("SkylakeX", "Haswell", "Prescott"),
// for benchmark and start-up reports. Any thread.
const char* blas_kernels();

}  // namespace gossip::train::cpu
