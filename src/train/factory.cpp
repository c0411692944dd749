// make_backend(): the one factory of the Backend family, keyed by the
// "device" string of the training config.
//
// "auto" prefers CUDA and falls back to the CPU, saying so once per process so
// a swarm of simulated peers does not repeat it; "cuda" on a machine or build
// without it is an error the user can act on, never a silent CPU run.
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

bool cuda_device_present() {
#ifdef GOSSIP_HAVE_CUDA
  return cuda::device_present();
#else
  return false;
#endif
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
  const bool compiled = cuda_compiled();
  const bool present = compiled && cuda_device_present();
  if (device == "cuda" && !present) {
    return core::unavailable(
        compiled ? "training.device: cuda requested but no CUDA device is present "
                   "(check nvidia-smi and CUDA_VISIBLE_DEVICES, or use device auto/cpu)"
                 : "training.device: cuda requested but this build has no CUDA backend "
                   "(rebuild with nvcc and cuBLAS installed and -Dcuda=enabled, or use "
                   "device auto/cpu)");
  }
#ifdef GOSSIP_HAVE_CUDA
  if (present) return cuda::make_cuda_backend(model, optimizer, options);
#endif
  static std::once_flag logged;
  std::call_once(logged, [compiled] {
    core::log_info("train", compiled ? "device auto: no CUDA device present, training on the CPU"
                                     : "device auto: built without CUDA, training on the CPU");
  });
  return cpu::make_cpu_backend(model, optimizer, options);
}

}  // namespace gossip::train
