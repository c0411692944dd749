// RAII owners of the CUDA resources the backend holds: device and pinned host
// allocations, the stream, the cuBLAS handle and events. Each is created
// once when the backend is built; nothing here allocates during a step.
// Destructors never throw (errors there are ignored: the process may be
// tearing down after a device failure).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cuda_check.cuh"

namespace gossip::train::cuda {

// Where a Buffer's bytes live: plain device memory (cudaMalloc, never
// managed memory) or page-locked host memory for asynchronous copies.
struct DeviceMemory {
  static void allocate(void** ptr, size_t bytes) { CUDA_CHECK(cudaMalloc(ptr, bytes)); }
  static void release(void* ptr) { (void)cudaFree(ptr); }
};
struct PinnedMemory {
  static void allocate(void** ptr, size_t bytes) { CUDA_CHECK(cudaMallocHost(ptr, bytes)); }
  static void release(void* ptr) { (void)cudaFreeHost(ptr); }
};

// One allocation of `bytes`, freed on destruction; movable, not copyable.
template <typename Memory>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) Memory::allocate(&ptr_, bytes);
  }
  ~Buffer() {
    if (ptr_ != nullptr) Memory::release(ptr_);
  }
  Buffer(Buffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

using DeviceBuffer = Buffer<DeviceMemory>;
using PinnedBuffer = Buffer<PinnedMemory>;

// A non-blocking stream of the backend's own.
class Stream {
 public:
  Stream() { CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() { (void)cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

// A cuBLAS handle bound to one stream.
class BlasHandle {
 public:
  explicit BlasHandle(cudaStream_t s) {
    CUBLAS_CHECK(cublasCreate(&h_));
    CUBLAS_CHECK(cublasSetStream(h_, s));
  }
  ~BlasHandle() { (void)cublasDestroy(h_); }
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

// An event used only for ordering (no timing).
class Event {
 public:
  Event() { CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming)); }
  ~Event() { (void)cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace gossip::train::cuda
