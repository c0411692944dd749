// FlushDenormals (private to src/train/cpu): while one is alive, this
// thread's SSE/AVX unit flushes denormal results to zero and reads denormal
// inputs as zero (MXCSR FTZ and DAZ), as most training stacks do (PyTorch's
// set_flush_denormal, TensorFlow by default). Every float operation that
// meets a denormal takes a microcode assist of ~100 cycles; a replica that
// trains long between exchanges (outer mode) grows denormal momenta and
// gradients, and its update loop then spent most of its time in one `subps`
// (docs/benchmarks.md). Values below 1.2e-38 change nothing in training.
// Restores the previous mode on destruction, so nothing else on the thread
// (an exchange applied there, a test comparing bits) sees a difference.
#pragma once

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace gossip::train::cpu {

class FlushDenormals {
 public:
#if defined(__SSE2__)
  FlushDenormals() : saved_(_mm_getcsr()) {
    _mm_setcsr(saved_ | kFtz | kDaz);
  }
  ~FlushDenormals() {
    _mm_setcsr(saved_);
  }
#else
  FlushDenormals() = default;
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
#if defined(__SSE2__)
  static constexpr unsigned kFtz = 0x8000;  // flush-to-zero (bit 15)
  static constexpr unsigned kDaz = 0x0040;  // denormals-are-zero (bit 6)
  unsigned saved_;
#endif
};

}  // namespace gossip::train::cpu
