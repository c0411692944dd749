// CudaGptModel: the GPT's forward and backward passes on the GPU, the
// counterpart of cpu::GptModel<float> (include/gossip/train/gpt_cpu.hpp) over
// the operations of gpt_ops.cuh, in the same (llm.c's) order. Private to
// src/train/cuda and its tests: no public header names a CUDA type.
//
// Memory: every activation, gradient and scratch buffer is carved out of one
// device allocation sized for `max_batch` rows of spec.block positions, made
// in the constructor together with the pinned staging of the batch and the
// loss and cuBLAS's workspace; so an out-of-memory device fails construction,
// never a step. Parameters and gradients are the caller's device buffers
// (spec.param_count() floats each). All work runs on the instance's own
// stream. Not thread-safe: one instance per trainer thread.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "device_memory.cuh"
#include "gossip/train/gpt.hpp"
#include "gossip/train/gpt_ops.hpp"
#include "ops.cuh"

namespace gossip::train::cuda {

class CudaGptModel {
 public:
  // On the current device. Throws std::invalid_argument for an invalid spec or
  // max_batch < 1, CudaError when an allocation or a CUDA call fails.
  // allow_tf32 lets cuBLAS use TF32 tensor cores (off: full float products,
  // as the parity tests need).
  CudaGptModel(const GptSpec& spec, int max_batch, bool allow_tf32 = false);
  ~CudaGptModel();
  CudaGptModel(const CudaGptModel&) = delete;
  CudaGptModel& operator=(const CudaGptModel&) = delete;

  // Runs the network on tokens (host, B x Tn, each in [0, vocab)) with the
  // device parameters `params`. With `targets` (host, B x Tn) it waits for and
  // returns the summed loss and correct count over the B Tn positions and,
  // when `for_backward`, keeps the gradient of the mean loss wrt the logits
  // for backward(); without targets it returns {} without waiting. Throws
  // std::invalid_argument for a shape outside 1..max_batch x 1..block and
  // std::out_of_range for a token or target outside the vocabulary, before
  // enqueuing anything.
  cpu::TokenLossSums forward(const float* params, const int32_t* tokens, const int32_t* targets,
                             int B, int Tn, bool for_backward);
  // Enqueues the gradient of the last forward's mean loss wrt every parameter,
  // written (not accumulated) into the device buffer grads. Requires a
  // preceding forward with targets and for_backward, with the same params.
  // Does not wait; read grads after synchronize() or on this stream.
  void backward(const float* params, float* grads);

  // Logits of the last forward (device, B x Tn x vocab).
  const float* logits() const { return logits_; }
  // Copies those logits to the host (waits for the stream). Requires
  // out.size() == B Tn vocab of the last forward.
  void read_logits(std::span<float> out);
  void synchronize();

  cudaStream_t stream() const { return stream_.get(); }
  cublasHandle_t blas() const { return blas_.get(); }
  const GptSpec& spec() const { return spec_; }
  int max_batch() const { return max_batch_; }
  // Bytes of the one device workspace (activations, gradients, scratch).
  size_t workspace_bytes() const { return work_.bytes(); }

 private:
  struct Block {  // one transformer block's saved activations
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *res3;
  };

  GptSpec spec_;
  GptOffsets off_;
  int max_batch_;
  int B_ = 0, Tn_ = 0;  // shape of the last forward
  bool have_grad_ = false;

  Stream stream_;
  DeviceBuffer blas_workspace_;  // declared before blas_ so it outlives the handle
  BlasHandle blas_;
  Event staged_;  // the last upload left the pinned staging buffer
  DeviceBuffer work_;
  PinnedBuffer stage_;       // tokens | targets, max_batch block int32 each
  PinnedBuffer stats_host_;  // LossStats

  // Views into work_.
  int32_t* tokens_ = nullptr;
  int32_t* targets_ = nullptr;
  float *encoded_ = nullptr, *lnf_ = nullptr, *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr;
  float* logits_ = nullptr;
  std::vector<Block> blocks_;
  float* proj_ = nullptr;  // attn.c_proj / mlp.c_proj outputs before the residual add
  float *dlogits_ = nullptr, *dres_ = nullptr, *dln_ = nullptr, *datty_ = nullptr;
  float *dqkv_ = nullptr, *dfch_ = nullptr, *dfch_gelu_ = nullptr;
  float* att_scratch_ = nullptr;  // attention_scratch_floats(max_batch, block, embd, heads)
  float* row_loss_ = nullptr;
  int* row_correct_ = nullptr;
  LossStats* stats_ = nullptr;
};

}  // namespace gossip::train::cuda
