// The CPU GPT's per-operation timer (gpt_profile_start/stop in gpt_cpu.hpp):
// a lap clock that charges the wall time since its last lap to the operation
// that just ended. Compiled in and off unless started; when off, a lap is one
// load and one branch, and no clock is read. Process-wide and unsynchronised:
// the profile is for one trainer thread (the bench's). Internal to the CPU
// backend.
#pragma once

#include <chrono>
#include <cstdint>

namespace gossip::train::cpu::profile {

enum class Op : int {
  kTokens,  // the batch's windows into inputs and targets
  kZeroGrad,
  kEncoderForward,
  kLayerNormForward,
  kMatmulForward,
  kAttentionForward,
  kGeluForward,
  kResidualForward,
  kLmHeadForward,
  kCrossEntropy,
  kLmHeadBackward,
  kLayerNormBackward,
  kMatmulBackward,
  kAttentionBackward,
  kGeluBackward,
  kEncoderBackward,
  kOptimizer,  // grad_clip and the update rule (HostState::optimizer_step)
  kCount
};

struct Totals {
  double seconds[static_cast<int>(Op::kCount)] = {};
  int64_t calls[static_cast<int>(Op::kCount)] = {};
};

extern bool g_on;
extern Totals g_totals;

class Laps {
 public:
  Laps() {
    if (g_on) last_ = std::chrono::steady_clock::now();
  }
  // Charges the time since the previous lap (or construction) to `op`.
  void lap(Op op) {
    if (!g_on) return;
    const auto now = std::chrono::steady_clock::now();
    const int i = static_cast<int>(op);
    g_totals.seconds[i] += std::chrono::duration<double>(now - last_).count();
    ++g_totals.calls[i];
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace gossip::train::cpu::profile
