// Error reporting behind CUDA_CHECK / CUBLAS_CHECK: builds the message that
// names the failed call and where it was made.
#include <string>

#include "cuda_check.cuh"

namespace gossip::train::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw CudaError(std::string("cuda: ") + expr + " failed at " + file + ":" + std::to_string(line) +
                  ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line) {
  throw CudaError(std::string("cublas: ") + expr + " failed at " + file + ":" +
                  std::to_string(line) + ": " + cublasGetStatusName(st) + " (" +
                  cublasGetStatusString(st) + ")");
}

void throw_shape_error(const char* op, const std::string& what) {
  throw CudaError(std::string("cuda backend: ") + op + ": " + what);
}

}  // namespace gossip::train::cuda
