// OpenBLAS set-up for the CPU backend (private to src/train/cpu).
#pragma once

namespace gossip::train::cpu {

// Sets OpenBLAS's (process-wide) thread count, and the first time it runs,
// repairs a known OpenBLAS mis-detection: a DYNAMIC_ARCH OpenBLAS that does
// not recognise the CPU model (e.g. 0.3.21 on Emerald Rapids) falls back to
// its SSE3 "Prescott" kernels, 4-5x slower than what the CPU supports. When
// that happened, OPENBLAS_CORETYPE is unset and the CPU has AVX-512 (or
// AVX2+FMA), the kernel table is re-selected as SkylakeX (or Haswell) and
// the switch is logged once. Must run before other threads call BLAS; the
// CPU backend calls it from make_cpu_backend().
void setup_openblas(int threads);

}  // namespace gossip::train::cpu
