// OpenBLAS thread count and kernel selection (see blas_setup.hpp for why).
//
// gotoblas_dynamic_init/quit are exported only by DYNAMIC_ARCH builds of
// OpenBLAS (Debian's is one); they are declared weak so that any other BLAS
// build links too and simply keeps its own choice.
#include "blas_setup.hpp"

#include <cblas.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "gossip/core/log.hpp"
#include "gossip/train/cpu_backend.hpp"

extern "C" {
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace gossip::train::cpu {

namespace {

// The best OpenBLAS kernel family this CPU can run, or nullptr.
const char* best_core_for_cpu() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512cd")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

void repair_kernel_choice() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user chose
  if (gotoblas_dynamic_init == nullptr || gotoblas_dynamic_quit == nullptr) return;
  const std::string detected = openblas_get_corename();
  if (detected != "Prescott") return;
  const char* better = best_core_for_cpu();
  if (better == nullptr) return;
  // gotoblas_dynamic_init() reads the variable once; it is removed again so
  // that child processes keep their own detection.
  ::setenv("OPENBLAS_CORETYPE", better, 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  ::unsetenv("OPENBLAS_CORETYPE");
  core::log_info("train", "OpenBLAS did not recognise this CPU and picked its generic " + detected +
                              " kernels; switched to " + openblas_get_corename() +
                              " (set OPENBLAS_CORETYPE to choose yourself)");
}

}  // namespace

void setup_openblas(int threads) {
  static std::once_flag once;
  std::call_once(once, repair_kernel_choice);
  openblas_set_num_threads(threads);
}

const char* blas_kernels() {
  return openblas_get_corename();
}

}  // namespace gossip::train::cpu
