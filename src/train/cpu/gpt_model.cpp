// GptModel: the GPT's forward and backward passes over the CPU reference
// operations, in llm.c's order. The residual stream's gradient flows through
// one buffer (dres_) from the final LayerNorm down to the embeddings; each
// block adds its two branches' contributions to it.
#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <string>

#include "gossip/train/gpt_cpu.hpp"
#include "gpt_profile.hpp"

namespace gossip::train::cpu {

namespace profile {
bool g_on = false;
Totals g_totals;
}  // namespace profile

void gpt_profile_start() {
  profile::g_totals = {};
  profile::g_on = true;
}

std::vector<GptOpTime> gpt_profile_stop() {
  static constexpr const char* kNames[] = {
      "tokens (batch to inputs/targets)",
      "zero gradients",
      "encoder_forward",
      "layernorm_forward",
      "matmul_forward (blocks)",
      "attention_forward",
      "gelu_forward",
      "residual_forward",
      "matmul_forward (lm head)",
      "crossentropy_forward_backward",
      "matmul_backward (lm head)",
      "layernorm_backward",
      "matmul_backward (blocks)",
      "attention_backward",
      "gelu_backward",
      "encoder_backward",
      "optimizer update",  // grad_clip included
  };
  static_assert(std::size(kNames) == static_cast<size_t>(profile::Op::kCount));
  profile::g_on = false;
  std::vector<GptOpTime> out;
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (profile::g_totals.calls[i] == 0) continue;
    out.push_back({kNames[i], profile::g_totals.seconds[i], profile::g_totals.calls[i]});
  }
  return out;
}

namespace {

using profile::Op;

// Clears the first n values: the part of a scratch buffer this batch uses.
template <typename T>
void zero(std::vector<T>& v, size_t n) {
  std::fill(v.begin(), v.begin() + static_cast<long>(n), T(0));
}

}  // namespace

template <typename T>
GptModel<T>::GptModel(const GptSpec& spec, int max_batch)
    : spec_(spec), off_(spec.offsets()), max_batch_(max_batch) {
  if (auto st = spec.validate(); !st) throw std::invalid_argument(st.message());
  if (max_batch < 1) throw std::invalid_argument("GptModel: max_batch must be >= 1");
  const size_t n = static_cast<size_t>(max_batch) * spec.block;
  const size_t c = spec.embd;
  const size_t att = static_cast<size_t>(max_batch) * spec.heads * spec.block * spec.block;
  tokens_.resize(n);
  encoded_.resize(n * c);
  fch_.resize(n * 4 * c);
  lnf_.resize(n * c);
  lnf_mean_.resize(n);
  lnf_rstd_.resize(n);
  logits_.resize(n * spec.vocab);
  blocks_.resize(static_cast<size_t>(spec.layers));
  for (Block& b : blocks_) {
    for (auto* v : {&b.ln1, &b.atty, &b.res2, &b.ln2, &b.res3}) {
      v->resize(n * c);
    }
    for (auto* v : {&b.ln1_mean, &b.ln1_rstd, &b.ln2_mean, &b.ln2_rstd}) v->resize(n);
    b.qkv.resize(n * 3 * c);
    b.att.resize(att);
    b.fch_gelu.resize(n * 4 * c);
    b.fch_dgelu.resize(n * 4 * c);
  }
  dlogits_.resize(n * spec.vocab);
  dres_.resize(n * c);
  dln_.resize(n * c);
  datty_.resize(n * c);
  dqkv_.resize(n * 3 * c);
  dfch_.resize(n * 4 * c);
  dscores_.resize(static_cast<size_t>(spec.block) * spec.block);
}

template <typename T>
TokenLossSums GptModel<T>::forward(const T* params, const int32_t* tokens, const int32_t* targets,
                                   int B, int Tn, bool for_backward) {
  if (B < 1 || B > max_batch_ || Tn < 1 || Tn > spec_.block) {
    throw std::invalid_argument("GptModel::forward: batch " + std::to_string(B) + " x " +
                                std::to_string(Tn) + " outside 1.." + std::to_string(max_batch_) +
                                " x 1.." + std::to_string(spec_.block));
  }
  const int C = spec_.embd, NH = spec_.heads, V = spec_.vocab, N = B * Tn;
  for (int i = 0; i < N; ++i) {
    if (tokens[i] < 0 || tokens[i] >= V) {
      throw std::out_of_range("GptModel::forward: token " + std::to_string(tokens[i]) +
                              " at position " + std::to_string(i) + " is outside the vocabulary");
    }
    tokens_[static_cast<size_t>(i)] = tokens[i];
  }
  B_ = B;
  Tn_ = Tn;
  const T* p = params;
  profile::Laps laps;
  encoder_forward(encoded_.data(), tokens, p + off_.wte, p + off_.wpe, B, Tn, C);
  laps.lap(Op::kEncoderForward);
  const T* residual = encoded_.data();
  for (size_t l = 0; l < blocks_.size(); ++l) {
    Block& a = blocks_[l];
    const GptBlockOffsets& w = off_.blocks[l];
    layernorm_forward(a.ln1.data(), a.ln1_mean.data(), a.ln1_rstd.data(), residual, p + w.ln1_w,
                      p + w.ln1_b, N, C);
    laps.lap(Op::kLayerNormForward);
    matmul_forward(a.qkv.data(), a.ln1.data(), p + w.qkv_w, p + w.qkv_b, N, C, 3 * C);
    laps.lap(Op::kMatmulForward);
    attention_forward(a.atty.data(), a.att.data(), a.qkv.data(), B, Tn, C, NH);
    laps.lap(Op::kAttentionForward);
    // res2 = residual + attn.c_proj(atty), one product
    matmul_residual_forward(a.res2.data(), a.atty.data(), p + w.attn_proj_w, p + w.attn_proj_b,
                            residual, N, C, C);
    laps.lap(Op::kMatmulForward);
    layernorm_forward(a.ln2.data(), a.ln2_mean.data(), a.ln2_rstd.data(), a.res2.data(),
                      p + w.ln2_w, p + w.ln2_b, N, C);
    laps.lap(Op::kLayerNormForward);
    matmul_forward(fch_.data(), a.ln2.data(), p + w.fc_w, p + w.fc_b, N, C, 4 * C);
    laps.lap(Op::kMatmulForward);
    if (for_backward) {
      gelu_forward_grad(a.fch_gelu.data(), a.fch_dgelu.data(), fch_.data(), int64_t(N) * 4 * C);
    } else {
      gelu_forward(a.fch_gelu.data(), fch_.data(), int64_t(N) * 4 * C);
    }
    laps.lap(Op::kGeluForward);
    // res3 = res2 + mlp.c_proj(gelu), one product
    matmul_residual_forward(a.res3.data(), a.fch_gelu.data(), p + w.fc_proj_w, p + w.fc_proj_b,
                            a.res2.data(), N, 4 * C, C);
    laps.lap(Op::kMatmulForward);
    residual = a.res3.data();
  }
  layernorm_forward(lnf_.data(), lnf_mean_.data(), lnf_rstd_.data(), residual, p + off_.lnf_w,
                    p + off_.lnf_b, N, C);
  laps.lap(Op::kLayerNormForward);
  // The output head is the token embedding, transposed (weight tying).
  matmul_forward(logits_.data(), lnf_.data(), p + off_.wte, static_cast<const T*>(nullptr), N, C,
                 V);
  laps.lap(Op::kLmHeadForward);
  have_grad_ = targets != nullptr && for_backward;
  if (targets == nullptr) return {};
  const TokenLossSums sums = crossentropy_forward_backward(have_grad_ ? dlogits_.data() : nullptr,
                                                           logits_.data(), targets, N, V);
  laps.lap(Op::kCrossEntropy);
  return sums;
}

template <typename T>
void GptModel<T>::backward(const T* params, T* grads) {
  if (!have_grad_) {
    throw std::logic_error("GptModel::backward: no forward with targets and for_backward");
  }
  const int B = B_, Tn = Tn_, C = spec_.embd, NH = spec_.heads, V = spec_.vocab, N = B * Tn;
  const T* p = params;
  T* g = grads;
  const size_t nc = static_cast<size_t>(N) * C;
  profile::Laps laps;
  std::fill(grads, grads + spec_.param_count(), T(0));
  zero(dln_, nc);
  laps.lap(Op::kZeroGrad);
  matmul_backward(dln_.data(), g + off_.wte, static_cast<T*>(nullptr), dlogits_.data(), lnf_.data(),
                  p + off_.wte, N, C, V);
  laps.lap(Op::kLmHeadBackward);
  const T* last = blocks_.empty() ? encoded_.data() : blocks_.back().res3.data();
  zero(dres_, nc);
  layernorm_backward(dres_.data(), g + off_.lnf_w, g + off_.lnf_b, dln_.data(), last,
                     p + off_.lnf_w, lnf_mean_.data(), lnf_rstd_.data(), N, C);
  laps.lap(Op::kLayerNormBackward);
  for (size_t l = blocks_.size(); l-- > 0;) {
    Block& a = blocks_[l];
    const GptBlockOffsets& w = off_.blocks[l];
    const T* residual = l == 0 ? encoded_.data() : blocks_[l - 1].res3.data();
    // res3 = res2 + fc_proj: both receive dres_ as it stands.
    zero(dfch_, 4 * nc);
    matmul_backward(dfch_.data(), g + w.fc_proj_w, g + w.fc_proj_b, dres_.data(), a.fch_gelu.data(),
                    p + w.fc_proj_w, N, 4 * C, C);
    laps.lap(Op::kMatmulBackward);
    gelu_backward_inplace(dfch_.data(), a.fch_dgelu.data(), int64_t(N) * 4 * C);
    laps.lap(Op::kGeluBackward);
    zero(dln_, nc);
    matmul_backward(dln_.data(), g + w.fc_w, g + w.fc_b, dfch_.data(), a.ln2.data(), p + w.fc_w, N,
                    C, 4 * C);
    laps.lap(Op::kMatmulBackward);
    layernorm_backward(dres_.data(), g + w.ln2_w, g + w.ln2_b, dln_.data(), a.res2.data(),
                       p + w.ln2_w, a.ln2_mean.data(), a.ln2_rstd.data(), N, C);
    laps.lap(Op::kLayerNormBackward);
    // dres_ is now the gradient wrt res2 = residual + attn_proj.
    zero(datty_, nc);
    matmul_backward(datty_.data(), g + w.attn_proj_w, g + w.attn_proj_b, dres_.data(),
                    a.atty.data(), p + w.attn_proj_w, N, C, C);
    laps.lap(Op::kMatmulBackward);
    zero(dqkv_, 3 * nc);
    attention_backward(dqkv_.data(), dscores_.data(), datty_.data(), a.qkv.data(), a.att.data(), B,
                       Tn, C, NH);
    laps.lap(Op::kAttentionBackward);
    zero(dln_, nc);
    matmul_backward(dln_.data(), g + w.qkv_w, g + w.qkv_b, dqkv_.data(), a.ln1.data(), p + w.qkv_w,
                    N, C, 3 * C);
    laps.lap(Op::kMatmulBackward);
    layernorm_backward(dres_.data(), g + w.ln1_w, g + w.ln1_b, dln_.data(), residual, p + w.ln1_w,
                       a.ln1_mean.data(), a.ln1_rstd.data(), N, C);
    laps.lap(Op::kLayerNormBackward);
  }
  encoder_backward(g + off_.wte, g + off_.wpe, dres_.data(), tokens_.data(), B, Tn, C);
  laps.lap(Op::kEncoderBackward);
}

template class GptModel<float>;
template class GptModel<double>;

}  // namespace gossip::train::cpu
