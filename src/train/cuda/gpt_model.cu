// CudaGptModel: the GPT's passes over the CUDA operations, line for line the
// order of src/train/cpu/gpt_model.cpp (llm.c's gpt2_forward/gpt2_backward).
// The constructor carves every buffer out of one allocation; a step uploads
// the batch once (pinned staging), and forward waits only for the loss.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda_check.cuh"
#include "gpt_model.cuh"
#include "gpt_ops.cuh"

namespace gossip::train::cuda {

namespace {

constexpr size_t kAlignBytes = 256;  // every carved buffer, as cuBLAS likes it

size_t aligned(size_t bytes) {
  return (bytes + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
}

}  // namespace

CudaGptModel::CudaGptModel(const GptSpec& spec, int max_batch, bool allow_tf32)
    : spec_(spec), off_(spec.offsets()), max_batch_(max_batch), stream_(), blas_(stream_.get()) {
  if (auto st = spec.validate(); !st) throw std::invalid_argument(st.message());
  if (max_batch < 1) throw std::invalid_argument("CudaGptModel: max_batch must be >= 1");
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  check_kernel_image();
  CUBLAS_CHECK(cublasSetMathMode(blas_.get(),
                                 allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  // Our own cuBLAS workspace: no product allocates mid-run, and with one
  // stream and a fixed workspace cuBLAS repeats its results bit for bit.
  blas_workspace_ = DeviceBuffer(prop.major >= 9 ? size_t{32} << 20 : size_t{4} << 20);
  CUBLAS_CHECK(
      cublasSetWorkspace(blas_.get(), blas_workspace_.as<void>(), blas_workspace_.bytes()));

  const size_t n = static_cast<size_t>(max_batch) * spec.block;
  const size_t c = static_cast<size_t>(spec.embd);
  const size_t v = static_cast<size_t>(spec.vocab);
  const size_t att = static_cast<size_t>(max_batch) * spec.heads * spec.block * spec.block;
  const size_t scratch = attention_scratch_floats(max_batch, spec.block, spec.embd, spec.heads);

  // Every view into the workspace with its element count, written once and
  // walked twice: to size the one allocation, then to place the views.
  blocks_.resize(static_cast<size_t>(spec.layers));
  auto layout = [&](auto&& place) {
    place(tokens_, n);
    place(targets_, n);
    place(encoded_, n * c);
    place(lnf_, n * c);
    place(lnf_mean_, n);
    place(lnf_rstd_, n);
    place(logits_, n * v);
    for (Block& b : blocks_) {
      place(b.ln1, n * c);
      place(b.ln1_mean, n);
      place(b.ln1_rstd, n);
      place(b.qkv, 3 * n * c);
      place(b.atty, n * c);
      place(b.att, att);
      place(b.res2, n * c);
      place(b.ln2, n * c);
      place(b.ln2_mean, n);
      place(b.ln2_rstd, n);
      place(b.fch, 4 * n * c);
      place(b.fch_gelu, 4 * n * c);
      place(b.res3, n * c);
    }
    place(proj_, n * c);
    place(dlogits_, n * v);
    place(dres_, n * c);
    place(dln_, n * c);
    place(datty_, n * c);
    place(dqkv_, 3 * n * c);
    place(dfch_, 4 * n * c);
    place(dfch_gelu_, 4 * n * c);
    place(att_scratch_, scratch);
    place(row_loss_, n);
    place(row_correct_, n);
    place(stats_, size_t{1});
  };
  size_t bytes = 0;
  layout([&](auto*& view, size_t count) { bytes += aligned(count * sizeof(*view)); });
  work_ = DeviceBuffer(bytes);
  char* next = work_.as<char>();
  layout([&](auto*& view, size_t count) {
    view = reinterpret_cast<std::remove_reference_t<decltype(view)>>(next);
    next += aligned(count * sizeof(*view));
  });

  stage_ = PinnedBuffer(2 * n * sizeof(int32_t));
  stats_host_ = PinnedBuffer(sizeof(LossStats));
  CUDA_CHECK(cudaEventRecord(staged_.get(), stream_.get()));
  CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
}

CudaGptModel::~CudaGptModel() {
  (void)cudaStreamSynchronize(stream_.get());
}

void CudaGptModel::synchronize() {
  CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
}

cpu::TokenLossSums CudaGptModel::forward(const float* params, const int32_t* tokens,
                                         const int32_t* targets, int B, int Tn, bool for_backward) {
  if (B < 1 || B > max_batch_ || Tn < 1 || Tn > spec_.block) {
    throw std::invalid_argument("CudaGptModel::forward: batch " + std::to_string(B) + " x " +
                                std::to_string(Tn) + " outside 1.." + std::to_string(max_batch_) +
                                " x 1.." + std::to_string(spec_.block));
  }
  if (params == nullptr || tokens == nullptr) {
    throw std::invalid_argument("CudaGptModel::forward: null params or tokens");
  }
  const int C = spec_.embd, NH = spec_.heads, V = spec_.vocab, N = B * Tn;
  // Every index is checked on the host: a kernel cannot report a bad one.
  for (int pass = 0; pass < (targets != nullptr ? 2 : 1); ++pass) {
    const int32_t* ids = pass == 0 ? tokens : targets;
    for (int i = 0; i < N; ++i) {
      if (ids[i] < 0 || ids[i] >= V) {
        throw std::out_of_range(std::string("CudaGptModel::forward: ") +
                                (pass == 0 ? "token " : "target ") + std::to_string(ids[i]) +
                                " at position " + std::to_string(i) + " is outside the vocabulary");
      }
    }
  }
  cudaStream_t s = stream_.get();
  cublasHandle_t h = blas_.get();
  // The previous upload must have left the staging buffer before we refill it.
  CUDA_CHECK(cudaEventSynchronize(staged_.get()));
  const size_t ids_bytes = static_cast<size_t>(N) * sizeof(int32_t);
  int32_t* stage = stage_.as<int32_t>();
  std::memcpy(stage, tokens, ids_bytes);
  CUDA_CHECK(cudaMemcpyAsync(tokens_, stage, ids_bytes, cudaMemcpyHostToDevice, s));
  if (targets != nullptr) {
    std::memcpy(stage + N, targets, ids_bytes);
    CUDA_CHECK(cudaMemcpyAsync(targets_, stage + N, ids_bytes, cudaMemcpyHostToDevice, s));
  }
  CUDA_CHECK(cudaEventRecord(staged_.get(), s));
  B_ = B;
  Tn_ = Tn;
  have_grad_ = false;

  const float* p = params;
  const size_t nc = static_cast<size_t>(N) * C;
  encoder_forward(s, encoded_, tokens_, p + off_.wte, p + off_.wpe, B, Tn, C);
  const float* residual = encoded_;
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const Block& a = blocks_[l];
    const GptBlockOffsets& w = off_.blocks[l];
    layernorm_forward(s, a.ln1, a.ln1_mean, a.ln1_rstd, residual, p + w.ln1_w, p + w.ln1_b, N, C);
    matmul_forward(h, s, a.qkv, a.ln1, p + w.qkv_w, p + w.qkv_b, N, C, 3 * C);
    attention_forward(h, s, a.atty, a.att, att_scratch_, a.qkv, B, Tn, C, NH);
    matmul_forward(h, s, proj_, a.atty, p + w.attn_proj_w, p + w.attn_proj_b, N, C, C);
    residual_forward(s, a.res2, residual, proj_, nc);
    layernorm_forward(s, a.ln2, a.ln2_mean, a.ln2_rstd, a.res2, p + w.ln2_w, p + w.ln2_b, N, C);
    matmul_forward(h, s, a.fch, a.ln2, p + w.fc_w, p + w.fc_b, N, C, 4 * C);
    gelu_forward(s, a.fch_gelu, a.fch, 4 * nc);
    matmul_forward(h, s, proj_, a.fch_gelu, p + w.fc_proj_w, p + w.fc_proj_b, N, 4 * C, C);
    residual_forward(s, a.res3, a.res2, proj_, nc);
    residual = a.res3;
  }
  layernorm_forward(s, lnf_, lnf_mean_, lnf_rstd_, residual, p + off_.lnf_w, p + off_.lnf_b, N, C);
  // The output head is the token embedding, transposed (weight tying).
  matmul_forward(h, s, logits_, lnf_, p + off_.wte, nullptr, N, C, V);
  if (targets == nullptr) return {};
  have_grad_ = for_backward;
  crossentropy_forward_backward(s, stats_, row_loss_, row_correct_,
                                for_backward ? dlogits_ : nullptr, logits_, targets_, N, V);
  CUDA_CHECK(cudaMemcpyAsync(stats_host_.as<LossStats>(), stats_, sizeof(LossStats),
                             cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  const LossStats got = *stats_host_.as<LossStats>();
  cpu::TokenLossSums sums;
  sums.loss_sum = got.loss_sum;
  sums.correct = got.correct;
  return sums;
}

void CudaGptModel::backward(const float* params, float* grads) {
  if (!have_grad_) {
    throw std::logic_error("CudaGptModel::backward: no forward with targets and for_backward");
  }
  if (params == nullptr || grads == nullptr) {
    throw std::invalid_argument("CudaGptModel::backward: null params or grads");
  }
  cudaStream_t s = stream_.get();
  cublasHandle_t h = blas_.get();
  const int B = B_, Tn = Tn_, C = spec_.embd, NH = spec_.heads, V = spec_.vocab, N = B * Tn;
  const size_t nc = static_cast<size_t>(N) * C;
  const float* p = params;
  float* g = grads;
  auto zero = [s](float* buf, size_t count) {
    CUDA_CHECK(cudaMemsetAsync(buf, 0, count * sizeof(float), s));
  };
  zero(grads, spec_.param_count());
  zero(dln_, nc);
  matmul_backward(h, s, dln_, g + off_.wte, nullptr, dlogits_, lnf_, p + off_.wte, N, C, V);
  const float* last = blocks_.empty() ? encoded_ : blocks_.back().res3;
  zero(dres_, nc);
  layernorm_backward(s, dres_, g + off_.lnf_w, g + off_.lnf_b, dln_, last, p + off_.lnf_w,
                     lnf_mean_, lnf_rstd_, N, C);
  for (size_t l = blocks_.size(); l-- > 0;) {
    const Block& a = blocks_[l];
    const GptBlockOffsets& w = off_.blocks[l];
    const float* residual = l == 0 ? encoded_ : blocks_[l - 1].res3;
    // res3 = res2 + fc_proj: both receive dres_ as it stands.
    zero(dfch_gelu_, 4 * nc);
    matmul_backward(h, s, dfch_gelu_, g + w.fc_proj_w, g + w.fc_proj_b, dres_, a.fch_gelu,
                    p + w.fc_proj_w, N, 4 * C, C);
    zero(dfch_, 4 * nc);
    gelu_backward(s, dfch_, a.fch, dfch_gelu_, 4 * nc);
    zero(dln_, nc);
    matmul_backward(h, s, dln_, g + w.fc_w, g + w.fc_b, dfch_, a.ln2, p + w.fc_w, N, C, 4 * C);
    layernorm_backward(s, dres_, g + w.ln2_w, g + w.ln2_b, dln_, a.res2, p + w.ln2_w, a.ln2_mean,
                       a.ln2_rstd, N, C);
    // dres_ is now the gradient wrt res2 = residual + attn_proj.
    zero(datty_, nc);
    matmul_backward(h, s, datty_, g + w.attn_proj_w, g + w.attn_proj_b, dres_, a.atty,
                    p + w.attn_proj_w, N, C, C);
    zero(dqkv_, 3 * nc);
    attention_backward(h, s, dqkv_, att_scratch_, datty_, a.qkv, a.att, B, Tn, C, NH);
    zero(dln_, nc);
    matmul_backward(h, s, dln_, g + w.qkv_w, g + w.qkv_b, dqkv_, a.ln1, p + w.qkv_w, N, C, 3 * C);
    layernorm_backward(s, dres_, g + w.ln1_w, g + w.ln1_b, dln_, residual, p + w.ln1_w, a.ln1_mean,
                       a.ln1_rstd, N, C);
  }
  encoder_backward(s, g + off_.wte, g + off_.wpe, dres_, tokens_, B, Tn, C, V);
}

void CudaGptModel::read_logits(std::span<float> out) {
  const size_t want = static_cast<size_t>(B_) * Tn_ * spec_.vocab;
  if (want == 0 || out.size() != want) {
    throw std::invalid_argument("CudaGptModel::read_logits: buffer has " +
                                std::to_string(out.size()) + " floats, the last forward made " +
                                std::to_string(want));
  }
  CUDA_CHECK(cudaMemcpyAsync(out.data(), logits_, want * sizeof(float), cudaMemcpyDeviceToHost,
                             stream_.get()));
  CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
}

}  // namespace gossip::train::cuda
