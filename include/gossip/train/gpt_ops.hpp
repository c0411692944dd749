// The CPU reference operations of the GPT family, llm.c style: one plain
// function per forward or backward step, products through BLAS, everything
// else as simple loops. Instantiated for float (training) and double (the
// finite-difference tests), so the tests check the code that trains. The
// CUDA backend implements the same operations under the same names.
//
// Shapes: B batch rows, T positions, C channels (embd), NH heads, hs = C / NH,
// V vocabulary, N = B T. Row-major throughout; weights are (out, in) as in
// nn.Linear. Definitions:
//
//   encoder:   out[b,t,:] = wte[tok[b,t],:] + wpe[t,:]
//   layernorm: out = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + 1e-5),
//              biased variance over the C channels of one position
//   matmul:    out = inp W^T + bias      (W: OC x C, bias may be null)
//   attention: qkv[b,t,:] = [q | k | v], each C = NH heads of hs; for head h
//              att = softmax(q k^T / sqrt(hs)) over positions t2 <= t (causal),
//              out[b,t,h hs:(h+1) hs] = att v
//   gelu:      0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   crossentropy: per position lse(logits) - logits[target]; the loss is the
//              mean over the N positions, dlogits = (softmax - onehot) / N
//
// Every backward ACCUMULATES into its gradient outputs (+=), as llm.c does:
// the residual stream's gradient is the sum of two paths, and parameter
// gradients are zeroed once per step by the caller (gelu_backward_inplace,
// one of the CPU's fused operations, is the exception and says so). No
// function allocates.
#pragma once

#include <cstdint>

namespace gossip::train::cpu {

template <typename T>
void encoder_forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tn,
                     int C);
// Loops over positions in order: deterministic.
template <typename T>
void encoder_backward(T* dwte, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tn, int C);

// mean and rstd (N each) are saved for the backward pass.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* weight, const T* bias,
                       int N, int C);
template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                        const T* mean, const T* rstd, int N, int C);

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int C, int OC);
// The CPU's fusion of matmul_forward and residual_forward: out = residual +
// inp W^T + bias in one product (the residual and bias are its starting
// value). out must not overlap residual.
template <typename T>
void matmul_residual_forward(T* out, const T* inp, const T* weight, const T* bias,
                             const T* residual, int N, int C, int OC);
// dbias may be null (no bias).
template <typename T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     int N, int C, int OC);

// att (B x NH x T x T) keeps the softmax for the backward pass; entries above
// the diagonal are 0.
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH);
// `scratch` holds T x T values (the gradient of one head's scores).
template <typename T>
void attention_backward(T* dqkv, T* scratch, const T* dout, const T* qkv, const T* att, int B,
                        int Tn, int C, int NH);

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n);
template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n);

// The CPU's fused GELU: gelu_forward that also writes dgelu = gelu'(inp),
// from the same exp, so that the backward pass is gelu_backward_inplace, one
// multiplication: dinout *= dgelu (overwriting, unlike gelu_backward: it
// turns the gradient wrt gelu's output into the gradient wrt its input).
// out, dgelu and inp must not overlap.
template <typename T>
void gelu_forward_grad(T* out, T* dgelu, const T* inp, int64_t n);
template <typename T>
void gelu_backward_inplace(T* dinout, const T* dgelu, int64_t n);

template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t n);

// Sums over the N positions, as EvalStats wants them.
struct TokenLossSums {
  double loss_sum = 0.0;  // sum of per-position losses (nats)
  int64_t correct = 0;    // positions whose arg-max equals the target
};

// Softmax cross-entropy over logits (N x V) against targets in [0, V) (throws
// std::out_of_range otherwise). Writes dlogits = (softmax - onehot) / N
// unless it is null (overwriting: the logits feed nothing else).
template <typename T>
TokenLossSums crossentropy_forward_backward(T* dlogits, const T* logits, const int32_t* targets,
                                            int N, int V);

}  // namespace gossip::train::cpu
