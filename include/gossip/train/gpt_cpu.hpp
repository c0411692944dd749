// The GPT's forward and backward passes on the CPU, llm.c's gpt2_forward and
// gpt2_backward over the operations of gpt_ops.hpp. Every activation and
// gradient buffer is allocated once, at construction, for batches of up to
// `max_batch` rows of up to spec.block positions; a step allocates nothing.
// Instantiated for float (the CPU backend) and double (the gradient checks).
// Not thread-safe: one instance per trainer thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gossip/train/gpt.hpp"
#include "gossip/train/gpt_ops.hpp"

namespace gossip::train::cpu {

template <typename T>
class GptModel {
 public:
  // Throws std::invalid_argument for an invalid spec or max_batch < 1.
  GptModel(const GptSpec& spec, int max_batch);

  // Runs the network on tokens (B x Tn, each in [0, vocab)) with the flat
  // parameters `params` (spec.param_count()). With `targets` (B x Tn) it
  // returns the summed loss and correct count over the B Tn positions and,
  // when `for_backward`, keeps the gradient of the mean loss wrt the logits
  // for backward(). Requires 1 <= B <= max_batch, 1 <= Tn <= block.
  TokenLossSums forward(const T* params, const int32_t* tokens, const int32_t* targets, int B,
                        int Tn, bool for_backward);
  // The gradient of the last forward's mean loss wrt every parameter, written
  // (not accumulated) into grads (spec.param_count()). Requires a preceding
  // forward with targets and for_backward, with the same params.
  void backward(const T* params, T* grads);

  // Logits of the last forward, B x Tn x vocab.
  const T* logits() const { return logits_.data(); }
  const GptSpec& spec() const { return spec_; }

 private:
  struct Block {  // one transformer block's activations
    std::vector<T> ln1, ln1_mean, ln1_rstd, qkv, atty, att, res2;
    // fch_dgelu: GELU's derivative at the MLP's hidden layer (gelu_forward_grad)
    std::vector<T> ln2, ln2_mean, ln2_rstd, fch_gelu, fch_dgelu, res3;
  };

  GptSpec spec_;
  GptOffsets off_;
  int max_batch_;
  int B_ = 0, Tn_ = 0;  // shape of the last forward
  bool have_grad_ = false;
  std::vector<int32_t> tokens_;
  // fch_: the MLP's hidden layer before GELU, needed only inside forward
  std::vector<T> encoded_, fch_, lnf_, lnf_mean_, lnf_rstd_, logits_;
  std::vector<Block> blocks_;
  // Gradient scratch: the residual stream's gradient and one buffer per
  // shape, zeroed before each use (the backward operations accumulate).
  // dfch_ holds the gradient wrt the MLP's hidden layer, after GELU and
  // (gelu_backward_inplace) before it.
  std::vector<T> dlogits_, dres_, dln_, dqkv_, datty_, dfch_, dscores_;
};

extern template class GptModel<float>;
extern template class GptModel<double>;

// Where the CPU GPT's training steps spend their time (gossip-bench train
// --profile): wall time per operation (layernorm_forward, matmul_backward,
// adamw, ...), summed over every step between start and stop. The timer is
// compiled in and off unless started; off, it reads no clock. Process-wide
// and unsynchronised: call both from the one thread that trains.
struct GptOpTime {
  std::string name;
  double seconds = 0.0;
  int64_t calls = 0;
};
// Clears the totals and starts timing.
void gpt_profile_start();
// Stops timing; returns every operation that ran, in step order.
std::vector<GptOpTime> gpt_profile_stop();

}  // namespace gossip::train::cpu
