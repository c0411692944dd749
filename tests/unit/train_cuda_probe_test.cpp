// The rule that tells "no GPU here" (device auto falls back, the gpu suite
// skips) from "a GPU the CUDA runtime cannot use" (device cuda fails with the
// CUDA error, the gpu suite fails): cuda::classify_probe() on the answers a
// CUDA runtime gives on each kind of machine, then probe_cuda() on this one.
// Built only with the CUDA backend; needs no device.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <string>

#include "gossip/train/backend.hpp"
#include "gossip/train/cuda_backend.hpp"

using namespace gossip::train;
using Outcome = CudaProbe::Outcome;

namespace {

cuda::ProbeAnswers answers(cudaError_t err, int count, int driver, bool node) {
  cuda::ProbeAnswers a;
  a.count_error = static_cast<int>(err);
  a.count = count;
  a.driver_version = driver;
  a.runtime_version = 13000;
  a.device_node = node;
  return a;
}

bool has(const CudaProbe& p, const std::string& text) {
  return p.detail.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("a GPU the runtime counts is present") {
  const CudaProbe p = cuda::classify_probe(answers(cudaSuccess, 2, 13000, true));
  CHECK(p.outcome == Outcome::kPresent);
  CHECK(has(p, "2 CUDA device(s), driver for CUDA 13.0, runtime 13.0"));
}

TEST_CASE("no device: the driver counts none, or neither driver nor device node exists") {
  INFO("CUDA_VISIBLE_DEVICES empty, or a driver without GPUs");
  CHECK(cuda::classify_probe(answers(cudaErrorNoDevice, 0, 13000, true)).outcome ==
        Outcome::kNoDevice);
  CHECK(cuda::classify_probe(answers(cudaSuccess, 0, 13000, true)).outcome == Outcome::kNoDevice);
  // A CI machine with the toolkit only: the runtime says "insufficient
  // driver" (35) with driver version 0, here as with the stub libcuda (34).
  for (const cudaError_t e : {cudaErrorInsufficientDriver, cudaErrorStubLibrary}) {
    const CudaProbe p = cuda::classify_probe(answers(e, 0, 0, false));
    CHECK(p.outcome == Outcome::kNoDevice);
    CHECK(has(p, "no CUDA driver is installed"));
  }
}

TEST_CASE("a GPU the runtime cannot use is a failure that names the CUDA error") {
  // The driver is older than the toolkit: error 35 with a real driver version.
  const CudaProbe old = cuda::classify_probe(answers(cudaErrorInsufficientDriver, 0, 12040, true));
  CHECK(old.outcome == Outcome::kFailed);
  CHECK(has(old, "cudaErrorInsufficientDriver"));
  CHECK(has(old, cudaGetErrorString(cudaErrorInsufficientDriver)));
  CHECK(has(old, "driver for CUDA 12.4"));
  CHECK(has(old, "runtime 13.0"));
  // The kernel module is loaded but its user-space library is missing.
  const CudaProbe lib = cuda::classify_probe(answers(cudaErrorInsufficientDriver, 0, 0, true));
  CHECK(lib.outcome == Outcome::kFailed);
  CHECK(has(lib, "no driver library (libcuda.so.1) loads"));
  CHECK(has(lib, "/dev/nvidiactl present"));
  // Any other error, e.g. a device in use by another mode or a broken driver.
  const CudaProbe other =
      cuda::classify_probe(answers(cudaErrorDevicesUnavailable, 0, 13000, true));
  CHECK(other.outcome == Outcome::kFailed);
  CHECK(has(other, "cudaErrorDevicesUnavailable"));
}

TEST_CASE("probe_cuda() on this machine agrees with cuda_device_present() and explains itself") {
  const CudaProbe p = probe_cuda();
  INFO(p.detail);
  CHECK(p.outcome != Outcome::kNotCompiled);
  CHECK_FALSE(p.detail.empty());
  CHECK(cuda_device_present() == (p.outcome == Outcome::kPresent));
}
