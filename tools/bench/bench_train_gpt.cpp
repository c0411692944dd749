// gossip-bench train, GPT family: training tokens/s of each backend on real
// text, next to PyTorch training the same model on the same batches.
//
//   gossip-bench train --config configs/bench-gpt.json [--batch N] [--steps N]
//                      [--warmup N] [--rounds N] [--threads N]
//                      [--device all|cpu|cuda] [--profile] [--no-torch]
//                      [--python /usr/bin/python3] [--torch-script PATH]
//
// The config is a peer config (config::load_config checks it): the bench
// takes model (type gpt), optimizer, data.dataset (type text), data.batch
// and training.cpu_threads from it; flags override batch and threads.
//
// Method: a pool of 8 batches of windows (block + 1 bytes) drawn with a
// fixed seed from the training part of the text is cycled; after `warmup`
// steps, `rounds` rounds of `steps` steps are timed and the best round
// counts. A step is the backend's train_step: forward, loss, backward,
// gradient clipping, AdamW at the optimizer's base lr. Tokens per step =
// batch x block. PyTorch (tools/bench/torch_gpt_baseline.py) gets the same
// initial parameters and the same batch pool through two files, trains with
// torch.set_num_threads(threads), and is timed the same way; both sides'
// first-step losses are printed, and agree, as a check that they train the
// same model on the same data.
//
// --profile: after the timed rounds, one more round on the CPU backend with
// its per-operation timer on (gpt_profile_start), printed as a table, and
// PyTorch's own split (torch.autograd.profiler) when PyTorch runs.
//
// The last stdout line is one JSON object: tokens_per_s and device of the
// fastest backend, torch_tokens_per_s, cpu_vs_torch (the ratio by wall
// clock), per-device figures, the shape, and cpu_profile with --profile.
#include "bench_train_gpt.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench.hpp"
#include "gossip/config/config.hpp"
#include "gossip/data/factory.hpp"
#include "gossip/train/backend.hpp"
#include "gossip/train/cpu_backend.hpp"
#include "gossip/train/gpt_cpu.hpp"

namespace gossip::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kPool = 8;  // batches cycled

struct GptBenchOptions {
  config::Config config;
  int batch = 16;
  int steps = 20;
  int warmup = 3;
  int rounds = 3;
  int threads = 1;
  std::string device = "all";
  bool profile = false;
  bool torch = true;
  std::string python = "/usr/bin/python3";
  std::string torch_script;
};

// Throughput of the best round, by wall clock and per second of process
// CPU time; the loss of the very first step. Negative rates: none.
struct Rate {
  double wall = -1;
  double cpu = -1;
  double first_loss = 0;
};

// The batch pool: kPool x batch windows of block + 1 tokens, drawn from the
// training windows with a fixed seed.
std::vector<int32_t> draw_pool(const data::Dataset& train, int batch) {
  std::mt19937_64 gen(7);
  std::uniform_int_distribution<int64_t> pick(0, train.size() - 1);
  std::vector<int64_t> rows(static_cast<size_t>(kPool) * batch);
  for (auto& r : rows) r = pick(gen);
  std::vector<int32_t> tokens(rows.size() * static_cast<size_t>(train.features()));
  train.gather_tokens(rows, tokens.data());
  return tokens;
}

data::Batch pool_batch(const std::vector<int32_t>& pool, int batch, int window, int i) {
  data::Batch b;
  b.rows = batch;
  b.cols = window;
  b.tokens = pool.data() + static_cast<size_t>(i % kPool) * batch * window;
  return b;
}

Rate time_backend(train::Backend& backend, const GptBenchOptions& o,
                  const std::vector<int32_t>& pool, int window) {
  const auto lr = static_cast<float>(o.config.optimizer.lr);
  const double tokens = static_cast<double>(o.batch) * (window - 1) * o.steps;
  Rate best;
  int step = 0;
  float loss = 0;
  for (int s = 0; s < o.warmup; ++s, ++step) {
    loss = backend.train_step(pool_batch(pool, o.batch, window, step), lr);
    if (step == 0) best.first_loss = loss;
  }
  for (int r = 0; r < o.rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    for (int s = 0; s < o.steps; ++s, ++step) {
      loss = backend.train_step(pool_batch(pool, o.batch, window, step), lr);
      if (step == 0) best.first_loss = loss;
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double dc = process_cpu_seconds() - c0;
    std::printf("  %-28s round %d: %10.0f tokens/s  (%.1f ms/step, loss %.4f)\n",
                backend.device_name().c_str(), r, tokens / dt, 1e3 * dt / o.steps, loss);
    best.wall = std::max(best.wall, tokens / dt);
    best.cpu = std::max(best.cpu, tokens / dc);
  }
  return best;
}

// One more round with the CPU GPT's operation timer on; prints the table
// and returns it as JSON ({op: ms per step}).
json profile_cpu(train::Backend& backend, const GptBenchOptions& o,
                 const std::vector<int32_t>& pool, int window) {
  const auto lr = static_cast<float>(o.config.optimizer.lr);
  train::cpu::gpt_profile_start();
  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < o.steps; ++s) backend.train_step(pool_batch(pool, o.batch, window, s), lr);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<train::cpu::GptOpTime> ops = train::cpu::gpt_profile_stop();
  std::printf("\ncpu profile (%d steps, %.1f ms/step with the timer on):\n", o.steps,
              1e3 * total / o.steps);
  std::printf("  %-34s %10s %7s %8s\n", "operation", "ms/step", "share", "calls");
  json out = json::object();
  double covered = 0;
  for (const auto& op : ops) {
    const double ms = 1e3 * op.seconds / o.steps;
    covered += op.seconds;
    std::printf("  %-34s %10.2f %6.1f%% %8lld\n", op.name.c_str(), ms, 100 * op.seconds / total,
                static_cast<long long>(op.calls / o.steps));
    out[op.name] = ms;
  }
  std::printf("  %-34s %10.2f %6.1f%%\n", "(outside the timed operations)",
              1e3 * (total - covered) / o.steps, 100 * (total - covered) / total);
  return out;
}

template <typename V>
bool write_file(const fs::path& path, const std::vector<V>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(V)));
  return static_cast<bool>(out);
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Runs the PyTorch baseline on `params` (the initial parameters) and the
// pool; returns its rates, or negative ones with `note` saying why there are
// none. With --profile, the script's profile table is echoed.
Rate run_torch(const GptBenchOptions& o, const std::vector<float>& params,
               const std::vector<int32_t>& pool, std::string& note) {
  if (!o.torch) {
    note = "skipped (--no-torch)";
    return {};
  }
  const train::OptimizerSpec& opt = o.config.optimizer;
  if (opt.kind != train::OptimizerKind::kAdamW) {
    note = "skipped (the GPT baseline runs AdamW only)";
    return {};
  }
  const std::string script = find_bench_script(o.torch_script, "torch_gpt_baseline.py");
  if (script.empty()) {
    note = "skipped (tools/bench/torch_gpt_baseline.py not found; run from the source root)";
    return {};
  }
  const std::string check = o.python + " -c 'import torch' >/dev/null 2>&1";
  if (std::system(check.c_str()) != 0) {
    note = "skipped (" + o.python + " cannot import torch; apt install python3-torch)";
    return {};
  }
  const fs::path dir = fs::temp_directory_path() / ("gossip-bench-gpt-" + std::to_string(getpid()));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !write_file(dir / "params.f32", params) || !write_file(dir / "tokens.i32", pool)) {
    note = "skipped (cannot write the shared inputs under " + dir.string() + ")";
    return {};
  }
  const train::GptSpec& g = o.config.model.gpt;
  // Same BLAS kernels for both sides (PyTorch uses OpenBLAS too on Debian).
  const std::string env =
      std::getenv("OPENBLAS_CORETYPE")
          ? ""
          : "OPENBLAS_CORETYPE=" + std::string(train::cpu::blas_kernels()) + " ";
  const std::string cmd =
      env + o.python + " '" + script + "' --params '" + (dir / "params.f32").string() +
      "' --tokens '" + (dir / "tokens.i32").string() + "' --vocab " + std::to_string(g.vocab) +
      " --block " + std::to_string(g.block) + " --layers " + std::to_string(g.layers) +
      " --heads " + std::to_string(g.heads) + " --embd " + std::to_string(g.embd) + " --batch " +
      std::to_string(o.batch) + " --pool " + std::to_string(kPool) + " --steps " +
      std::to_string(o.steps) + " --warmup " + std::to_string(o.warmup) + " --rounds " +
      std::to_string(o.rounds) + " --threads " + std::to_string(o.threads) + " --lr " +
      num(opt.lr) + " --beta1 " + num(opt.beta1) + " --beta2 " + num(opt.beta2) + " --eps " +
      num(opt.eps) + " --weight-decay " + num(opt.weight_decay) + " --grad-clip " +
      num(opt.grad_clip) + (o.profile ? " --profile" : "") + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    fs::remove_all(dir, ec);
    note = "skipped (cannot start " + o.python + ")";
    return {};
  }
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  const int rc = pclose(pipe);
  fs::remove_all(dir, ec);
  std::vector<std::string> lines;
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  const std::string last = lines.empty() ? "" : lines.back();
  try {
    if (rc == 0 && !lines.empty()) {
      for (size_t i = 0; i + 1 < lines.size(); ++i) std::printf("%s\n", lines[i].c_str());
      const json j = json::parse(last);
      return {j.at("tokens_per_s").get<double>(), j.at("tokens_per_cpu_s").get<double>(),
              j.at("first_loss").get<double>()};
    }
  } catch (const json::exception&) {
  }
  note = "failed (exit " + std::to_string(rc) + ", last line '" + last + "')";
  return {};
}

int usage(const std::string& why) {
  std::fprintf(stderr,
               "gossip-bench train: %s\nusage: gossip-bench train --config FILE (a gpt peer "
               "config) [--batch N] [--steps N] [--warmup N] [--rounds N] [--threads N] "
               "[--device all|cpu|cuda] [--profile] [--no-torch] [--python PATH] "
               "[--torch-script PATH]\n",
               why.c_str());
  return 2;
}

}  // namespace

bool is_gpt_bench_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return false;
  try {
    const json j = json::parse(in, nullptr, true, /*ignore_comments=*/true);
    return j.is_object() && j.contains("model") && j.at("model").is_object() &&
           j.at("model").value("type", std::string()) == "gpt";
  } catch (const json::exception&) {
    return false;
  }
}

int run_train_gpt(int argc, char** argv) {
  GptBenchOptions o;
  std::string config_path;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") config_path = argv[i + 1];
  }
  auto config = config::load_config(config_path);
  if (!config) return usage(config.status().message());
  o.config = std::move(config).value();
  if (!o.config.model.is_gpt()) return usage(config_path + ": model.type is not gpt");
  o.batch = o.config.data.batch;
  o.threads = config::backend_options(o.config).cpu_threads;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto int_arg = [&](int& dst) {
      dst = std::atoi(argv[++i]);
      return dst > 0;
    };
    if (a == "--no-torch") {
      o.torch = false;
    } else if (a == "--profile") {
      o.profile = true;
    } else if (i + 1 >= argc) {
      return usage("missing value for " + a);
    } else if (a == "--config") {
      ++i;
    } else if (a == "--batch") {
      if (!int_arg(o.batch)) return usage("--batch must be > 0");
    } else if (a == "--steps") {
      if (!int_arg(o.steps)) return usage("--steps must be > 0");
    } else if (a == "--warmup") {
      o.warmup = std::atoi(argv[++i]);
      if (o.warmup < 0) return usage("--warmup must be >= 0");
    } else if (a == "--rounds") {
      if (!int_arg(o.rounds)) return usage("--rounds must be > 0");
    } else if (a == "--threads") {
      if (!int_arg(o.threads)) return usage("--threads must be > 0");
    } else if (a == "--device") {
      o.device = argv[++i];
    } else if (a == "--python") {
      o.python = argv[++i];
    } else if (a == "--torch-script") {
      o.torch_script = argv[++i];
    } else {
      return usage("unknown option " + a);
    }
  }
  std::vector<std::string> devices;
  if (o.device == "all" || o.device == "cpu") devices.push_back("cpu");
  if ((o.device == "all" && train::cuda_device_present()) || o.device == "cuda") {
    devices.push_back("cuda");
  }
  if (devices.empty()) return usage("--device must be all, cpu or cuda");

  const train::ModelSpec& model = o.config.model;
  const int window = model.gpt.block + 1;
  data::DatasetSpec dspec = o.config.data.dataset;
  dspec.window = window;
  auto sets = data::make_datasets(dspec);
  if (!sets) return usage(sets.status().message());
  const std::vector<int32_t> pool = draw_pool(*sets->train, o.batch);
  std::vector<float> params(model.param_count());
  train::init_parameters(model, params);

  const train::OptimizerSpec& opt = o.config.optimizer;
  std::printf(
      "train bench: %s (%zu parameters), batch %d x %d tokens, %s lr %g wd %g clip %g, "
      "%d warm-up + %d x %d steps, %d CPU thread(s)\n",
      model.describe().c_str(), model.param_count(), o.batch, model.gpt.block,
      train::optimizer_name(opt.kind), opt.lr, opt.weight_decay, opt.grad_clip, o.warmup, o.rounds,
      o.steps, o.threads);
  json result;
  json per_device = json::object();
  json cpu_profile;
  double best = 0;
  std::string best_device;
  Rate cpu_rate;
  for (const std::string& d : devices) {
    train::BackendOptions bo;
    bo.device = d;
    bo.cpu_threads = o.threads;
    bo.max_batch = o.batch;
    auto backend = train::make_backend(model, opt, bo);
    if (!backend) {
      std::printf("  %s: unavailable: %s\n", d.c_str(), backend.status().message().c_str());
      continue;
    }
    if (d == "cpu") std::printf("  cpu: OpenBLAS kernels %s\n", train::cpu::blas_kernels());
    const Rate rate = time_backend(**backend, o, pool, window);
    std::printf("%-30s %10.0f tokens/s (best round; %.0f per CPU-second; first loss %.5f)\n",
                (*backend)->device_name().c_str(), rate.wall, rate.cpu, rate.first_loss);
    per_device[d] = rate.wall;
    if (d == "cpu") {
      cpu_rate = rate;
      if (o.profile) cpu_profile = profile_cpu(**backend, o, pool, window);
    }
    if (rate.wall > best) {
      best = rate.wall;
      best_device = (*backend)->device_name();
    }
  }
  if (best_device.empty()) {
    std::printf("%s\n", json{{"error", "no backend could be built"}}.dump().c_str());
    return 1;
  }

  std::string note;
  const Rate torch_rate = run_torch(o, params, pool, note);
  result["tokens_per_s"] = best;
  result["device"] = best_device;
  result["model"] = model.describe();
  result["params"] = model.param_count();
  result["batch"] = o.batch;
  result["block"] = model.gpt.block;
  result["threads"] = o.threads;
  result["per_device"] = per_device;
  if (cpu_rate.wall > 0) {
    result["cpu_blas"] = train::cpu::blas_kernels();
    result["cpu_tokens_per_s"] = cpu_rate.wall;
    result["cpu_tokens_per_cpu_s"] = cpu_rate.cpu;
    result["cpu_first_loss"] = cpu_rate.first_loss;
  }
  if (!cpu_profile.is_null()) result["cpu_profile_ms_per_step"] = cpu_profile;
  if (torch_rate.wall > 0) {
    std::printf(
        "%-30s %10.0f tokens/s (best round; %.0f per CPU-second; first loss %.5f; %d "
        "thread(s), OpenBLAS %s)\n",
        "pytorch (cpu)", torch_rate.wall, torch_rate.cpu, torch_rate.first_loss, o.threads,
        std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE")
                                         : train::cpu::blas_kernels());
    result["torch_tokens_per_s"] = torch_rate.wall;
    result["torch_tokens_per_cpu_s"] = torch_rate.cpu;
    result["torch_first_loss"] = torch_rate.first_loss;
    if (cpu_rate.wall > 0) {
      std::printf("cpu / pytorch: %.2fx by wall clock, %.2fx by CPU time\n",
                  cpu_rate.wall / torch_rate.wall, cpu_rate.cpu / torch_rate.cpu);
      result["cpu_vs_torch"] = cpu_rate.wall / torch_rate.wall;
      result["cpu_vs_torch_cpu_time"] = cpu_rate.cpu / torch_rate.cpu;
    }
  } else {
    std::printf("pytorch baseline: %s\n", note.c_str());
    result["torch_note"] = note;
  }
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace gossip::bench
