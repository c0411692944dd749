// Launchers of the GPT family's operations on the GPU, under the names of the
// CPU reference (include/gossip/train/gpt_ops.hpp), whose definitions and
// shape letters they share: B rows, T positions, C channels, NH heads,
// hs = C / NH, V vocabulary, N = B T; row-major float buffers, weights
// (out, in) as in nn.Linear.
//
// As on the CPU, every backward ACCUMULATES (+=) into its gradient outputs;
// the caller zeroes them. Pointers are device pointers (tokens and targets
// too); all work is enqueued on the given stream, the products on the cuBLAS
// handle, which must be bound to that same stream; nothing synchronises or
// allocates. Each launcher checks its shapes (CudaError on a violation),
// launches and checks cudaGetLastError().
//
// Determinism: no operation uses atomics or a launch-dependent order. The
// embedding gradient is gathered per (vocabulary row, channel) over the
// positions in order, the bias and LayerNorm parameter gradients are summed
// per channel in a fixed tree, the loss in one fixed-order block, and cuBLAS
// is deterministic on one stream with a fixed workspace: two runs on the same
// device give the same bits.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cuda_check.cuh"
#include "gpt_plan.hpp"
#include "ops.cuh"

namespace gossip::train::cuda {

// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]. Tokens must lie in [0, V) (the
// model checks them on the host).
void encoder_forward(cudaStream_t s, float* out, const int32_t* tokens, const float* wte,
                     const float* wpe, int B, int T, int C);
// dwte (V x C) and dwpe (T x C) += the gathered dout, each sum taken over the
// positions in the CPU's order (so the result equals the CPU's bit for bit).
void encoder_backward(cudaStream_t s, float* dwte, float* dwpe, const float* dout,
                      const int32_t* tokens, int B, int T, int C, int V);

// mean and rstd (N each) are saved for the backward pass.
void layernorm_forward(cudaStream_t s, float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int N, int C);
void layernorm_backward(cudaStream_t s, float* dinp, float* dweight, float* dbias,
                        const float* dout, const float* inp, const float* weight, const float* mean,
                        const float* rstd, int N, int C);

// out = inp W^T + bias (bias may be null).
void matmul_forward(cublasHandle_t h, cudaStream_t s, float* out, const float* inp,
                    const float* weight, const float* bias, int N, int C, int OC);
// dinp += dout W, dweight += dout^T inp, dbias += column sums of dout (dbias
// may be null).
void matmul_backward(cublasHandle_t h, cudaStream_t s, float* dinp, float* dweight, float* dbias,
                     const float* dout, const float* inp, const float* weight, int N, int C,
                     int OC);

// att (B x NH x T x T) keeps the softmax for the backward pass, zero above the
// diagonal; `scratch` holds attention_scratch_floats(B, T, C, NH) floats
// (gpt_plan.hpp), shared by the forward and the backward.
void attention_forward(cublasHandle_t h, cudaStream_t s, float* out, float* att, float* scratch,
                       const float* qkv, int B, int T, int C, int NH);
void attention_backward(cublasHandle_t h, cudaStream_t s, float* dqkv, float* scratch,
                        const float* dout, const float* qkv, const float* att, int B, int T, int C,
                        int NH);

void gelu_forward(cudaStream_t s, float* out, const float* inp, size_t n);
void gelu_backward(cudaStream_t s, float* dinp, const float* inp, const float* dout, size_t n);

void residual_forward(cudaStream_t s, float* out, const float* a, const float* b, size_t n);

// Softmax cross-entropy of logits (N x V) against targets in [0, V) (checked
// by the caller on the host). Writes dlogits = (softmax - onehot) / N unless
// it is null (overwriting, as on the CPU), the per-position losses and hits
// into row_loss / row_correct (N each), and their fixed-order sums into
// *sums (device), which the caller copies to the host.
void crossentropy_forward_backward(cudaStream_t s, LossStats* sums, float* row_loss,
                                   int* row_correct, float* dlogits, const float* logits,
                                   const int32_t* targets, int N, int V);

}  // namespace gossip::train::cuda
