// The CUDA MLP backend's construction (its state traffic with the host is
// DeviceState's, device_state.cu), and the library's entry points
// probe_device() / make_cuda_backend(), which builds the MLP's or the GPT's
// backend.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_backend.cuh"
#include "cuda_check.cuh"
#include "gossip/train/cuda_backend.hpp"

namespace gossip::train::cuda {

CudaBackend::CudaBackend(const ModelSpec& model, const OptimizerSpec& optimizer,
                         const BackendOptions& options)
    : DeviceState(model, optimizer, options, own_stream_.get()), blas_(stream()) {
  cudaDeviceProp prop{};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  CUBLAS_CHECK(cublasSetMathMode(
      blas_.get(), options_.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  // cuBLAS's workspace is ours too, so that no product allocates mid-run; the
  // size cuBLAS recommends: 32 MiB from Hopper on, 4 MiB before. Set after
  // cublasSetStream (BlasHandle), which would reset it to cuBLAS's own pool.
  blas_workspace_ = DeviceBuffer(prop.major >= 9 ? size_t{32} << 20 : size_t{4} << 20);
  CUBLAS_CHECK(
      cublasSetWorkspace(blas_.get(), blas_workspace_.as<void>(), blas_workspace_.bytes()));
  inputs_ = model_.layers.front();
  outputs_ = model_.layers.back();
  const size_t max_batch = static_cast<size_t>(options_.max_batch);

  // Carve the workspace: offsets first, then one allocation.
  int widest = 0;
  for (size_t i = 1; i < model_.layers.size(); ++i) {
    widest = std::max(widest, model_.layers[i]);
  }
  const std::vector<LayerView> views = model_.layer_views();
  size_t offset = 0;
  auto take = [&offset](size_t bytes) {
    const size_t at = offset;
    offset = align_up(offset + bytes);
    return at;
  };
  // A batch's inputs are packed as x (rows*inputs floats, padded to kAlign)
  // then labels (rows int32) or targets (rows*outputs floats).
  input_bytes_ = align_up(max_batch * inputs_ * sizeof(float)) +
                 max_batch * static_cast<size_t>(outputs_) * sizeof(float);
  const size_t input_at = take(input_bytes_);
  const size_t ones_at = take(max_batch * sizeof(float));
  const size_t d0_at = take(max_batch * widest * sizeof(float));
  const size_t d1_at = take(max_batch * widest * sizeof(float));
  const size_t loss_at = take(max_batch * sizeof(float));
  const size_t correct_at = take(max_batch * sizeof(int));
  const size_t stats_at = take(sizeof(LossStats));
  std::vector<std::pair<size_t, size_t>> act_at;
  for (size_t l = 0; l < views.size(); ++l) {
    const size_t bytes = max_batch * views[l].out * sizeof(float);
    const size_t pre = take(bytes);
    const size_t post = l + 1 < views.size() ? take(bytes) : 0;
    act_at.emplace_back(pre, post);
  }
  work_ = DeviceBuffer(offset);
  char* base = work_.as<char>();
  input_ = base + input_at;
  ones_ = reinterpret_cast<float*>(base + ones_at);
  dbuf_[0] = reinterpret_cast<float*>(base + d0_at);
  dbuf_[1] = reinterpret_cast<float*>(base + d1_at);
  row_loss_ = reinterpret_cast<float*>(base + loss_at);
  row_correct_ = reinterpret_cast<int*>(base + correct_at);
  stats_ = reinterpret_cast<LossStats*>(base + stats_at);
  for (size_t l = 0; l < views.size(); ++l) {
    Layer layer;
    layer.view = views[l];
    layer.pre = reinterpret_cast<float*>(base + act_at[l].first);
    if (l + 1 < views.size()) layer.post = reinterpret_cast<float*>(base + act_at[l].second);
    layers_.push_back(layer);
  }

  batch_stage_ = PinnedBuffer(input_bytes_);
  stats_host_ = PinnedBuffer(sizeof(LossStats));

  // The ones vector for bias gradients.
  std::vector<float> ones(max_batch, 1.0f);
  CUDA_CHECK(cudaMemcpyAsync(ones_, ones.data(), max_batch * sizeof(float), cudaMemcpyHostToDevice,
                             stream()));
  CUDA_CHECK(cudaEventRecord(staged_.get(), stream()));
  CUDA_CHECK(cudaStreamSynchronize(stream()));
}

namespace {

// "12.4" from the runtime's 12040.
std::string cuda_version(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

}  // namespace

CudaProbe classify_probe(const ProbeAnswers& a) {
  const auto err = static_cast<cudaError_t>(a.count_error);
  CudaProbe p;
  if (err == cudaSuccess && a.count > 0) {
    p.outcome = CudaProbe::Outcome::kPresent;
    p.detail = std::to_string(a.count) + " CUDA device(s), driver for CUDA " +
               cuda_version(a.driver_version) + ", runtime " + cuda_version(a.runtime_version);
    return p;
  }
  if (err == cudaSuccess || err == cudaErrorNoDevice) {
    p.outcome = CudaProbe::Outcome::kNoDevice;
    p.detail = "the CUDA driver reports no device (check nvidia-smi and CUDA_VISIBLE_DEVICES)";
    return p;
  }
  // No driver library: no device either, unless the kernel module made its
  // device node (then the driver's user-space part is what is missing).
  if (a.driver_version == 0 && !a.device_node) {
    p.outcome = CudaProbe::Outcome::kNoDevice;
    p.detail = "no CUDA driver is installed (libcuda.so.1 not found) and no GPU device node exists";
    return p;
  }
  std::string driver = "driver for CUDA " + cuda_version(a.driver_version);
  if (a.driver_version == 0) driver = "no driver library (libcuda.so.1) loads";
  if (a.driver_version < 0) driver = "driver version unknown";
  p.outcome = CudaProbe::Outcome::kFailed;
  p.detail = std::string("the CUDA runtime cannot use this machine's GPU: cudaGetDeviceCount: ") +
             cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + "); " + driver +
             (a.device_node ? ", /dev/nvidiactl present" : "") + ", runtime " +
             cuda_version(a.runtime_version);
  return p;
}

CudaProbe probe_device() {
  ProbeAnswers a;
  // Neither version call needs a device; without a driver library the
  // driver version is 0 (and cudaGetDeviceCount says "insufficient driver").
  if (cudaDriverGetVersion(&a.driver_version) != cudaSuccess) a.driver_version = -1;
  if (cudaRuntimeGetVersion(&a.runtime_version) != cudaSuccess) a.runtime_version = 0;
  a.count_error = static_cast<int>(cudaGetDeviceCount(&a.count));
  (void)cudaGetLastError();  // clear it: a failed probe must not poison later calls
  std::error_code ec;
  a.device_node = std::filesystem::exists("/dev/nvidiactl", ec);
  return classify_probe(a);
}

core::Result<std::unique_ptr<Backend>> make_cuda_backend(const ModelSpec& model,
                                                         const OptimizerSpec& optimizer,
                                                         const BackendOptions& options) {
  GOSSIP_RETURN_IF_ERROR(model.validate());
  GOSSIP_RETURN_IF_ERROR(optimizer.validate());
  if (options.max_batch < 1) {
    return core::invalid_argument("training.max_batch: must be >= 1, got " +
                                  std::to_string(options.max_batch));
  }
  if (const CudaProbe probe = probe_device(); probe.outcome != CudaProbe::Outcome::kPresent) {
    return core::unavailable("cuda: " + probe.detail + "; use device \"cpu\" or \"auto\"");
  }
  try {
    std::unique_ptr<Backend> backend;
    if (model.is_gpt()) {
      backend = build_cuda_gpt_backend(model, optimizer, options);
    } else {
      backend = std::make_unique<CudaBackend>(model, optimizer, options);
    }
    std::vector<float> params(model.param_count());
    init_parameters(model, params);
    backend->write_parameters(params);
    return core::Result<std::unique_ptr<Backend>>(std::move(backend));
  } catch (const CudaError& e) {
    // A failed allocation leaves its (non-sticky) error as the thread's last
    // one; clear it, or the next backend's first launch check would report it.
    (void)cudaGetLastError();
    return core::unavailable(std::string("cuda backend for ") + model.describe() + " (max_batch " +
                             std::to_string(options.max_batch) + ") could not start: " + e.what());
  }
}

}  // namespace gossip::train::cuda
