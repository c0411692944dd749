// Finding non-finite floats (NaN, +-inf) in a buffer: the check every
// parameter buffer passes before it is trusted, whether it comes from a peer
// (averaging), a checkpoint file (peer) or a diverged step.
#pragma once

#include <cstddef>
#include <span>

namespace gossip::core {

// Index of the first non-finite value, or values.size() when all are finite.
// One vectorised pass over a finite buffer (AVX2 where the CPU has it, see
// vector_clones.hpp); any thread.
size_t first_non_finite(std::span<const float> values);

}  // namespace gossip::core
