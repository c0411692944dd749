// GOSSIP_VECTOR_CLONES: put before a hot loop's function definition to build
// it twice, for baseline x86-64 (SSE2) and for x86-64-v3 (AVX2, FMA, F16C,
// BMI2), and let the dynamic loader pick the best one for the CPU at start-up
// (GCC/Clang target_clones through a glibc ifunc). The release build is
// portable baseline code; these few loops are where wider vectors pay:
// converting and validating wire blobs is about 1.5-2x faster with AVX2.
//
// Both clones give bit-identical results: the build passes -ffp-contract=off
// (meson.build), so a*b+c is never fused into an FMA, and reductions keep
// their lanes explicit, so the vector width does not change the order of
// additions.
// Define GOSSIP_NO_VECTOR_CLONES to build baseline code only (the unit tests
// do, to run the baseline path on hosts that would pick AVX2).
#pragma once

#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(GOSSIP_NO_VECTOR_CLONES)
#define GOSSIP_VECTOR_CLONES [[gnu::target_clones("default", "arch=x86-64-v3")]]
// A third clone for x86-64-v4 (AVX-512), where it was measured to pay: the
// int8 encode (integer hash and clamps, 16 lanes) runs 1.3x faster with it.
#define GOSSIP_VECTOR_CLONES_V4 \
  [[gnu::target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")]]
#else
#define GOSSIP_VECTOR_CLONES
#define GOSSIP_VECTOR_CLONES_V4
#endif
