// cuda_gpt_bench: GPT training throughput of the CUDA backend, for
// tools/gpu_check (a measurement, not a test: it is built beside the gpu
// suite and never registered with meson test).
//
//   cuda_gpt_bench [--layers 4] [--heads 4] [--embd 128] [--block 128]
//                  [--batch 16] [--steps 30] [--warmup 5] [--tf32]
//                  [--peak-tflops T]
//
// It builds the backend through make_backend (device cuda, AdamW with decay
// 0.1 and grad_clip 1, as configs/gpt-single.json trains), feeds random byte
// windows, and times `steps` steps after `warmup`. No device sync is needed:
// each train_step waits for its own forward pass, which the stream runs only
// after the previous step's backward pass and update, so the time between the
// return of step k and of step k + n covers exactly n whole steps.
//
// Model FLOPs per trained token (PaLM's appendix B / nanoGPT's estimate_mfu):
//   6 P + 12 L C T
// with P every parameter (the tied token embedding once), L layers, C embd,
// T block: 6 P for the products of the forward (2 P) and backward (4 P)
// passes, 12 L C T for the attention scores and weighted sums (counted over
// the full T x T, as the convention does, though the causal half is masked).
// MFU = tokens/s x that / the device's peak: dense TF32 tensor-core FLOP/s
// with --tf32, else plain FP32 FLOP/s, from a table of known devices or
// --peak-tflops. The last stdout line is one JSON object.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "gossip/train/backend.hpp"

using namespace gossip::train;

namespace {

struct Peak {
  const char* name_part;
  double fp32_tflops;
  double tf32_tflops;  // dense tensor-core
};

// NVIDIA's data-sheet figures (dense, boost clock).
const Peak kPeaks[] = {
    {"H200", 67.0, 494.7},      {"H100 80GB HBM3", 67.0, 494.7},
    {"H100 SXM", 67.0, 494.7},  {"H100 NVL", 60.0, 417.5},
    {"H100 PCIe", 51.0, 378.0}, {"A100", 19.5, 156.0},
    {"L40S", 91.6, 183.0},      {"A10G", 31.2, 62.5},
};

int usage(const char* why) {
  std::fprintf(stderr,
               "cuda_gpt_bench: %s\nusage: cuda_gpt_bench [--layers N] [--heads N] [--embd N] "
               "[--block N] [--batch N] [--steps N] [--warmup N] [--tf32] [--peak-tflops T]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ModelSpec m;
  m.family = ModelFamily::kGpt;
  m.gpt.block = 128;
  m.gpt.layers = 4;
  m.gpt.heads = 4;
  m.gpt.embd = 128;
  int batch = 16, steps = 30, warmup = 5;
  bool tf32 = false;
  double peak_override = 0.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> int {
      if (i + 1 >= argc) return -1;
      return std::atoi(argv[++i]);
    };
    if (a == "--layers") {
      m.gpt.layers = next();
    } else if (a == "--heads") {
      m.gpt.heads = next();
    } else if (a == "--embd") {
      m.gpt.embd = next();
    } else if (a == "--block") {
      m.gpt.block = next();
    } else if (a == "--batch") {
      batch = next();
    } else if (a == "--steps") {
      steps = next();
    } else if (a == "--warmup") {
      warmup = next();
    } else if (a == "--tf32") {
      tf32 = true;
    } else if (a == "--peak-tflops" && i + 1 < argc) {
      peak_override = std::atof(argv[++i]);
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  if (batch < 1 || steps < 1 || warmup < 1) return usage("batch, steps, warmup must be >= 1");
  if (auto st = m.validate(); !st) return usage(st.message().c_str());

  OptimizerSpec o;
  o.kind = OptimizerKind::kAdamW;
  o.lr = 3e-4;
  o.beta2 = 0.95;
  o.weight_decay = 0.1;
  o.grad_clip = 1.0;
  BackendOptions opts;
  opts.device = "cuda";
  opts.max_batch = batch;
  opts.allow_tf32 = tf32;
  auto made = make_backend(m, o, opts);
  if (!made) {
    std::printf("%s\n", nlohmann::json{{"error", made.status().message()}}.dump().c_str());
    return 1;
  }
  Backend& b = **made;

  const int cols = m.gpt.block + 1;
  std::mt19937 gen(1);
  std::uniform_int_distribution<int> byte(0, 255);
  constexpr int kPool = 4;
  std::vector<int32_t> ids(static_cast<size_t>(kPool) * batch * cols);
  for (int32_t& v : ids) v = byte(gen);
  auto window = [&](int k) {
    gossip::data::Batch w;
    w.rows = batch;
    w.cols = cols;
    w.tokens = ids.data() + static_cast<size_t>(k % kPool) * batch * cols;
    return w;
  };
  float loss = 0.0f;
  for (int k = 0; k < warmup; ++k) loss = b.train_step(window(k), static_cast<float>(o.lr));
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < steps; ++k) loss = b.train_step(window(k), static_cast<float>(o.lr));
  const auto t1 = std::chrono::steady_clock::now();
  const double dt = std::chrono::duration<double>(t1 - t0).count();

  const double tokens = static_cast<double>(steps) * batch * m.gpt.block;
  const double params = static_cast<double>(m.param_count());
  const double flops_per_token =
      6.0 * params + 12.0 * m.gpt.layers * m.gpt.embd * static_cast<double>(m.gpt.block);
  const double tokens_per_s = tokens / dt;
  const double achieved_tflops = tokens_per_s * flops_per_token / 1e12;
  double peak = peak_override;
  const std::string device = b.device_name();
  if (peak <= 0.0) {
    for (const Peak& p : kPeaks) {
      if (device.find(p.name_part) != std::string::npos) {
        peak = tf32 ? p.tf32_tflops : p.fp32_tflops;
        break;
      }
    }
  }
  std::printf("%s: %s, batch %d, %s, %d steps in %.3f s (loss %.4f)\n", device.c_str(),
              m.describe().c_str(), batch, tf32 ? "tf32" : "fp32", steps, dt, loss);
  nlohmann::json out = {{"device", device},
                        {"model", m.describe()},
                        {"params", m.param_count()},
                        {"batch", batch},
                        {"precision", tf32 ? "tf32" : "fp32"},
                        {"steps", steps},
                        {"tokens_per_s", tokens_per_s},
                        {"flops_per_token", flops_per_token},
                        {"achieved_tflops", achieved_tflops},
                        {"peak_tflops", nullptr},
                        {"mfu", nullptr},
                        {"final_loss", loss}};
  if (peak > 0) {
    out["peak_tflops"] = peak;
    out["mfu"] = achieved_tflops / peak;
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
