// The CPU reference operations of the MLP, llm.c style: one plain function
// per forward or backward step, matrix products through BLAS, everything else
// as simple vectorisable loops. The CPU backend runs them in float; the tests
// run the very same code in double against finite differences. The CUDA
// backend implements the same operations under the same names and must match
// the definitions below:
//
//   linear:   out = inp W^T            (inp rows x in, W out x in, row-major)
//   bias+act: pre += b; post = act(pre)
//   relu(x) = max(x, 0)               relu'(x) = x > 0 ? 1 : 0
//   tanh(x)                           tanh'(x) = 1 - tanh(x)^2
//   gelu(x) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))),  k = sqrt(2/pi)
//             (the tanh approximation, PyTorch's approximate="tanh")
//   softmax cross-entropy, per row: lse(z) - z[label]; dz = (softmax(z) - onehot) / rows
//   mse, per row: (1/cols) sum_c (y_c - t_c)^2;        dy = 2 (y - t) / (rows * cols)
//     (so the mean over rows equals PyTorch's MSELoss(reduction="mean"))
//
// All pointers are host memory, row-major; no function allocates.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "gossip/data/batch.hpp"
#include "gossip/train/model.hpp"

namespace gossip::train::cpu {

// Sums over a batch, as EvalStats wants them.
struct LossSums {
  double loss_sum = 0.0;  // sum of per-row losses
  int64_t correct = 0;    // rows whose arg-max equals the label (classification)
};

// out[rows x out_dim] = inp[rows x in_dim] * weight[out_dim x in_dim]^T.
template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int rows, int in_dim, int out_dim);

// Fused bias + activation: pre[r,c] += bias[c]; post[r,c] = act(pre[r,c]).
// `post` may be null: then only the bias is added (the linear output layer).
template <typename T>
void bias_act_forward(T* pre, T* post, const T* bias, int rows, int cols, Activation act);

// d[i] *= act'(pre[i]) for n elements; `post` must hold act(pre) (relu and
// tanh read it, gelu reads pre).
template <typename T>
void act_backward(T* d, const T* pre, const T* post, int64_t n, Activation act);

// Given dout[rows x out_dim] (gradient wrt pre-activation) and the layer's
// input, writes dweight = grad_beta * dweight + dout^T inp (out_dim x in_dim)
// and likewise dbias (out_dim), and dinp (rows x in_dim) unless it is null
// (the first layer). grad_beta 0 overwrites; the CPU backend passes the SGD
// momentum to accumulate straight into the velocity buffer.
template <typename T>
void linear_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     int rows, int in_dim, int out_dim, T grad_beta = T(0));

// Softmax cross-entropy over logits[rows x classes]. Writes
// dlogits = (softmax - onehot) / rows unless it is null. Requires every label
// in [0, classes) (throws std::out_of_range otherwise: the data module
// validates labels on load, so a bad one here is a bug).
template <typename T>
LossSums softmax_xent_forward_backward(T* dlogits, const T* logits, const int32_t* labels, int rows,
                                       int classes);

// Mean squared error of pred[rows x cols] against targets[rows x cols].
// Writes dpred = 2 (pred - target) / (rows * cols) unless it is null.
template <typename T>
LossSums mse_forward_backward(T* dpred, const T* pred, const float* targets, int rows, int cols);

// The whole network in T with freshly allocated scratch: loss (mean over
// rows) and, when `grads` is non-empty, the gradient of that mean loss in the
// flat parameter layout. The slow reference the tests check the backends'
// fused float path against; not for training.
template <typename T>
double reference_loss_and_gradient(const ModelSpec& spec, std::span<const T> params,
                                   const data::Batch& batch, std::span<T> grads);

}  // namespace gossip::train::cpu
