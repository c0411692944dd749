// CPU reference operations (see include/gossip/train/cpu_ops.hpp for the
// definitions every backend must match). Written once as templates and
// instantiated for float (training) and double (gradient checks), so the
// tests check exactly the code that trains.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "gossip/train/cpu_ops.hpp"
#include "kernels.hpp"

namespace gossip::train::cpu {

using detail::gelu;
using detail::gelu_grad;
using detail::gemm;

template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int rows, int in_dim, int out_dim) {
  gemm(false, true, rows, out_dim, in_dim, T(1), inp, in_dim, weight, in_dim, T(0), out, out_dim);
}

template <typename T>
void bias_act_forward(T* pre, T* post, const T* bias, int rows, int cols, Activation act) {
  for (int r = 0; r < rows; ++r) {
    T* __restrict p = pre + static_cast<size_t>(r) * cols;
    if (post == nullptr) {
      for (int c = 0; c < cols; ++c) p[c] += bias[c];
      continue;
    }
    T* __restrict q = post + static_cast<size_t>(r) * cols;
    switch (act) {
      case Activation::kRelu:
        for (int c = 0; c < cols; ++c) {
          const T v = p[c] + bias[c];
          p[c] = v;
          q[c] = v > T(0) ? v : T(0);
        }
        break;
      case Activation::kTanh:
        for (int c = 0; c < cols; ++c) {
          const T v = p[c] + bias[c];
          p[c] = v;
          q[c] = std::tanh(v);
        }
        break;
      case Activation::kGelu:
        for (int c = 0; c < cols; ++c) {
          const T v = p[c] + bias[c];
          p[c] = v;
          q[c] = gelu(v);
        }
        break;
    }
  }
}

template <typename T>
void act_backward(T* d, const T* pre, const T* post, int64_t n, Activation act) {
  T* __restrict dd = d;
  switch (act) {
    case Activation::kRelu:
      for (int64_t i = 0; i < n; ++i) dd[i] = post[i] > T(0) ? dd[i] : T(0);
      break;
    case Activation::kTanh:
      for (int64_t i = 0; i < n; ++i) dd[i] *= T(1) - post[i] * post[i];
      break;
    case Activation::kGelu:
      for (int64_t i = 0; i < n; ++i) dd[i] *= gelu_grad(pre[i]);
      break;
  }
}

template <typename T>
void linear_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     int rows, int in_dim, int out_dim, T grad_beta) {
  if (dinp != nullptr) {
    gemm(false, false, rows, in_dim, out_dim, T(1), dout, out_dim, weight, in_dim, T(0), dinp,
         in_dim);
  }
  gemm(true, false, out_dim, in_dim, rows, T(1), dout, out_dim, inp, in_dim, grad_beta, dweight,
       in_dim);
  T* __restrict db = dbias;
  if (grad_beta == T(0)) {
    for (int c = 0; c < out_dim; ++c) db[c] = T(0);  // like BLAS, never read what beta 0 drops
  } else {
    for (int c = 0; c < out_dim; ++c) db[c] *= grad_beta;
  }
  for (int r = 0; r < rows; ++r) {
    const T* __restrict g = dout + static_cast<size_t>(r) * out_dim;
    for (int c = 0; c < out_dim; ++c) db[c] += g[c];
  }
}

template <typename T>
LossSums softmax_xent_forward_backward(T* dlogits, const T* logits, const int32_t* labels, int rows,
                                       int classes) {
  LossSums sums;
  const T inv_rows = T(1) / static_cast<T>(rows);
  for (int r = 0; r < rows; ++r) {
    const T* z = logits + static_cast<size_t>(r) * classes;
    const int32_t label = labels[r];
    if (label < 0 || label >= classes) {
      throw std::out_of_range("softmax cross-entropy: label " + std::to_string(label) + " of row " +
                              std::to_string(r) + " is outside [0, " + std::to_string(classes) +
                              ")");
    }
    int arg = 0;
    T zmax = z[0];
    for (int c = 1; c < classes; ++c) {
      if (z[c] > zmax) {
        zmax = z[c];
        arg = c;
      }
    }
    T sum = T(0);
    if (dlogits != nullptr) {
      T* d = dlogits + static_cast<size_t>(r) * classes;
      for (int c = 0; c < classes; ++c) {
        d[c] = std::exp(z[c] - zmax);
        sum += d[c];
      }
      const T scale = inv_rows / sum;
      for (int c = 0; c < classes; ++c) d[c] *= scale;
      d[label] -= inv_rows;
    } else {
      for (int c = 0; c < classes; ++c) sum += std::exp(z[c] - zmax);
    }
    sums.loss_sum += static_cast<double>(zmax + std::log(sum) - z[label]);
    sums.correct += arg == label ? 1 : 0;
  }
  return sums;
}

template <typename T>
LossSums mse_forward_backward(T* dpred, const T* pred, const float* targets, int rows, int cols) {
  LossSums sums;
  const T inv_cols = T(1) / static_cast<T>(cols);
  const T dscale = T(2) / (static_cast<T>(rows) * static_cast<T>(cols));
  for (int r = 0; r < rows; ++r) {
    const T* y = pred + static_cast<size_t>(r) * cols;
    const float* t = targets + static_cast<size_t>(r) * cols;
    T row = T(0);
    for (int c = 0; c < cols; ++c) {
      const T e = y[c] - static_cast<T>(t[c]);
      row += e * e;
      if (dpred != nullptr) dpred[static_cast<size_t>(r) * cols + c] = dscale * e;
    }
    sums.loss_sum += static_cast<double>(row * inv_cols);
  }
  return sums;
}

template <typename T>
double reference_loss_and_gradient(const ModelSpec& spec, std::span<const T> params,
                                   const data::Batch& batch, std::span<T> grads) {
  const std::vector<LayerView> views = spec.layer_views();
  const size_t n_layers = views.size();
  const int rows = batch.rows;
  std::vector<T> x(static_cast<size_t>(rows) * batch.cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<T>(batch.x[i]);

  std::vector<std::vector<T>> pre(n_layers), post(n_layers);
  const T* in = x.data();
  for (size_t l = 0; l < n_layers; ++l) {
    const LayerView& v = views[l];
    pre[l].resize(static_cast<size_t>(rows) * v.out);
    linear_forward(pre[l].data(), in, params.data() + v.weight_offset, rows, v.in, v.out);
    const bool hidden = l + 1 < n_layers;
    if (hidden) post[l].resize(pre[l].size());
    bias_act_forward(pre[l].data(), hidden ? post[l].data() : nullptr,
                     params.data() + v.bias_offset, rows, v.out, spec.activation);
    in = hidden ? post[l].data() : nullptr;
  }

  const bool want_grad = !grads.empty();
  std::vector<T> dcur(want_grad ? pre.back().size() : 0);
  T* d = want_grad ? dcur.data() : nullptr;
  const LossSums sums =
      spec.loss == LossKind::kSoftmaxCrossEntropy
          ? softmax_xent_forward_backward(d, pre.back().data(), batch.labels, rows,
                                          views.back().out)
          : mse_forward_backward(d, pre.back().data(), batch.targets, rows, views.back().out);
  if (want_grad) {
    for (size_t l = n_layers; l-- > 0;) {
      const LayerView& v = views[l];
      std::vector<T> dprev(l > 0 ? static_cast<size_t>(rows) * v.in : 0);
      const T* layer_in = l > 0 ? post[l - 1].data() : x.data();
      linear_backward(l > 0 ? dprev.data() : nullptr, grads.data() + v.weight_offset,
                      grads.data() + v.bias_offset, dcur.data(), layer_in,
                      params.data() + v.weight_offset, rows, v.in, v.out);
      if (l > 0) {
        act_backward(dprev.data(), pre[l - 1].data(), post[l - 1].data(),
                     static_cast<int64_t>(dprev.size()), spec.activation);
      }
      dcur = std::move(dprev);
    }
  }
  return sums.loss_sum / rows;
}

#define GOSSIP_INSTANTIATE_CPU_OPS(T)                                                           \
  template void linear_forward<T>(T*, const T*, const T*, int, int, int);                       \
  template void bias_act_forward<T>(T*, T*, const T*, int, int, Activation);                    \
  template void act_backward<T>(T*, const T*, const T*, int64_t, Activation);                   \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int, int, int, T); \
  template LossSums softmax_xent_forward_backward<T>(T*, const T*, const int32_t*, int, int);   \
  template LossSums mse_forward_backward<T>(T*, const T*, const float*, int, int);              \
  template double reference_loss_and_gradient<T>(const ModelSpec&, std::span<const T>,          \
                                                 const data::Batch&, std::span<T>);

GOSSIP_INSTANTIATE_CPU_OPS(float)
GOSSIP_INSTANTIATE_CPU_OPS(double)

#undef GOSSIP_INSTANTIATE_CPU_OPS

}  // namespace gossip::train::cpu
