// Error checking for every CUDA runtime and cuBLAS call of the CUDA backend.
//
// A failing CUDA call inside a training step means the device is lost, out of
// memory or the code is wrong; none of these is an expected failure a peer can
// recover from mid-step, so the macros throw CudaError naming the call and its
// file:line. make_cuda_backend() turns construction failures into a Status.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace gossip::train::cuda {

// A failed CUDA/cuBLAS call or a violated launcher precondition.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws CudaError("cuda: <expr> failed at <file>:<line>: <error string>").
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file,
                                     int line);
// Throws CudaError for a launcher called with bad shapes (a programmer error).
[[noreturn]] void throw_shape_error(const char* op, const std::string& what);

}  // namespace gossip::train::cuda

#define CUDA_CHECK(expr)                                                                    \
  do {                                                                                      \
    const cudaError_t gossip_cuda_err_ = (expr);                                            \
    if (gossip_cuda_err_ != cudaSuccess) {                                                  \
      ::gossip::train::cuda::throw_cuda_error(gossip_cuda_err_, #expr, __FILE__, __LINE__); \
    }                                                                                       \
  } while (0)

#define CUBLAS_CHECK(expr)                                                                     \
  do {                                                                                         \
    const cublasStatus_t gossip_cublas_st_ = (expr);                                           \
    if (gossip_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                                          \
      ::gossip::train::cuda::throw_cublas_error(gossip_cublas_st_, #expr, __FILE__, __LINE__); \
    }                                                                                          \
  } while (0)

// After a kernel launch: reports launch-configuration errors at their line.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
