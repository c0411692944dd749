// make_backend(): the one factory of the Backend family, keyed by the
// "device" string of the training config.
//
// "auto" prefers CUDA and falls back to the CPU, saying why once per process so
// a swarm of simulated peers does not repeat it; "cuda" on a machine or build
// without a usable device is an error that names the cause (probe_cuda()),
// never a silent CPU run.
#include <mutex>
#include <string>

#include "gossip/core/log.hpp"
#include "gossip/train/backend.hpp"
#include "gossip/train/cpu_backend.hpp"

#ifdef GOSSIP_HAVE_CUDA
#include "gossip/train/cuda_backend.hpp"
#endif

namespace gossip::train {

bool cuda_compiled() {
#ifdef GOSSIP_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

CudaProbe probe_cuda() {
#ifdef GOSSIP_HAVE_CUDA
  return cuda::probe_device();
#else
  return {CudaProbe::Outcome::kNotCompiled,
          "this build has no CUDA backend (rebuild with nvcc and cuBLAS installed and "
          "-Dcuda=enabled)"};
#endif
}

bool cuda_device_present() {
  return probe_cuda().outcome == CudaProbe::Outcome::kPresent;
}

core::Result<std::unique_ptr<Backend>> make_backend(const ModelSpec& model,
                                                    const OptimizerSpec& optimizer,
                                                    const BackendOptions& options) {
  const std::string& device = options.device;
  if (device == "cpu") return cpu::make_cpu_backend(model, optimizer, options);
  if (device != "cuda" && device != "auto") {
    return core::invalid_argument("training.device: unknown device '" + device +
                                  "' (expected auto, cpu or cuda)");
  }
  const CudaProbe probe = probe_cuda();
#ifdef GOSSIP_HAVE_CUDA
  if (probe.outcome == CudaProbe::Outcome::kPresent) {
    return cuda::make_cuda_backend(model, optimizer, options);
  }
#endif
  if (device == "cuda") {
    return core::unavailable("training.device: cuda requested but " + probe.detail +
                             " (or use device auto/cpu)");
  }
  static std::once_flag logged;
  std::call_once(logged, [&probe] {
    const std::string line = "device auto: " + probe.detail + "; training on the CPU";
    if (probe.outcome == CudaProbe::Outcome::kFailed) {
      core::log_warn("train", line);
    } else {
      core::log_info("train", line);
    }
  });
  return cpu::make_cpu_backend(model, optimizer, options);
}

}  // namespace gossip::train
