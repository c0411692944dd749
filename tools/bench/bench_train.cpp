// gossip-bench train: training throughput (samples/s) of each available
// backend on random data, next to PyTorch on the same MLP when it is installed.
// A config whose model.type is "gpt" (configs/bench-gpt.json) runs the GPT
// bench instead (bench_train_gpt.cpp: tokens/s on text, --profile).
//
//   gossip-bench train [--config configs/bench-mlp.json] [--layers 784,4096,10]
//                      [--batch N] [--steps N] [--warmup N] [--rounds N]
//                      [--threads N] [--device all|cpu|cuda] [--no-torch]
//                      [--python /usr/bin/python3] [--torch-script PATH]
//
// Config file (JSON; every key optional, flags override it):
//   {"layers": [784, 256, 128, 10], "activation": "relu", "batch": 64,
//    "steps": 300, "warmup_steps": 30, "rounds": 3, "cpu_threads": 1,
//    "optimizer": {"type": "sgd", "lr": 0.02, "momentum": 0.9,
//                  "nesterov": false, "weight_decay": 0.0}}
//
// Method: a pool of 8 random batches (uniform features, uniform labels) is
// cycled; after `warmup_steps` steps, `rounds` rounds of `steps` steps are
// timed and the best round counts (the least disturbed by other processes).
// train_step returns the loss, so every step ends synchronised on any device.
// The PyTorch baseline (tools/bench/torch_baseline.py) does the same with
// torch.set_num_threads(cpu_threads). The last stdout line is one JSON object:
// samples_per_s and device of the fastest backend, batch, layers, then each
// device's figure, PyTorch's, and the CPU/PyTorch ratio.
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
#include "bench_train_gpt.hpp"
#include "gossip/train/backend.hpp"
#include "gossip/train/cpu_backend.hpp"

namespace gossip::bench {
namespace {

using nlohmann::json;
using train::Backend;

struct TrainBenchOptions {
  train::ModelSpec model;
  train::OptimizerSpec optimizer;
  int batch = 64;
  int steps = 300;
  int warmup = 30;
  int rounds = 3;
  int threads = 1;
  std::string device = "all";
  bool torch = true;
  std::string python = "/usr/bin/python3";
  std::string torch_script;
};

std::string layers_csv(const std::vector<int>& layers) {
  std::string s;
  for (size_t i = 0; i < layers.size(); ++i) s += (i ? "," : "") + std::to_string(layers[i]);
  return s;
}

bool parse_layers(const std::string& csv, std::vector<int>& out) {
  out.clear();
  std::stringstream ss(csv);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      out.push_back(std::stoi(item));
    } catch (const std::exception&) {
      return false;
    }
  }
  return out.size() >= 2;
}

// Reads the config file into `o`; returns an error message or "".
std::string load_config(const std::string& path, TrainBenchOptions& o) {
  std::ifstream in(path);
  if (!in) return "cannot open config " + path;
  try {
    const json j = json::parse(in);
    if (j.contains("layers")) o.model.layers = j.at("layers").get<std::vector<int>>();
    if (j.contains("activation")) {
      auto a = train::parse_activation(j.at("activation").get<std::string>());
      if (!a) return a.status().message();
      o.model.activation = *a;
    }
    o.batch = j.value("batch", o.batch);
    o.steps = j.value("steps", o.steps);
    o.warmup = j.value("warmup_steps", o.warmup);
    o.rounds = j.value("rounds", o.rounds);
    o.threads = j.value("cpu_threads", o.threads);
    if (j.contains("optimizer")) {
      const json& oj = j.at("optimizer");
      auto kind = train::parse_optimizer(oj.value("type", std::string("sgd")));
      if (!kind) return kind.status().message();
      o.optimizer.kind = *kind;
      o.optimizer.lr = oj.value("lr", o.optimizer.lr);
      o.optimizer.momentum = oj.value("momentum", o.optimizer.momentum);
      o.optimizer.nesterov = oj.value("nesterov", o.optimizer.nesterov);
      o.optimizer.weight_decay = oj.value("weight_decay", o.optimizer.weight_decay);
    }
  } catch (const json::exception& e) {
    return path + ": " + e.what();
  }
  return "";
}

// Throughput of the best round: by wall clock, and per second of process CPU
// time (steadier when other processes share the cores). Negative: none.
struct Rate {
  double wall = -1;
  double cpu = -1;
};

// Runs the PyTorch baseline; returns its rates, or negative ones with `note`
// saying why there are none.
Rate run_torch(const TrainBenchOptions& o, std::string& note) {
  if (!o.torch) {
    note = "skipped (--no-torch)";
    return {};
  }
  if (o.optimizer.kind != train::OptimizerKind::kSgd || o.optimizer.nesterov ||
      o.optimizer.weight_decay != 0.0) {
    note = "skipped (the baseline runs plain SGD with momentum only)";
    return {};
  }
  const std::string script = find_bench_script(o.torch_script, "torch_baseline.py");
  if (script.empty()) {
    note = "skipped (tools/bench/torch_baseline.py not found; run from the source root)";
    return {};
  }
  const std::string check = o.python + " -c 'import torch' >/dev/null 2>&1";
  if (std::system(check.c_str()) != 0) {
    note = "skipped (" + o.python + " cannot import torch; apt install python3-torch)";
    return {};
  }
  char lr[32], mom[32];
  std::snprintf(lr, sizeof lr, "%.9g", o.optimizer.lr);
  std::snprintf(mom, sizeof mom, "%.9g", o.optimizer.momentum);
  // Same BLAS kernels for both sides (PyTorch uses OpenBLAS too on Debian):
  // the comparison is of the training loops, not of OpenBLAS's CPU detection.
  const std::string env =
      std::getenv("OPENBLAS_CORETYPE")
          ? ""
          : "OPENBLAS_CORETYPE=" + std::string(train::cpu::blas_kernels()) + " ";
  const std::string cmd =
      env + o.python + " '" + script + "' --layers " + layers_csv(o.model.layers) + " --batch " +
      std::to_string(o.batch) + " --steps " + std::to_string(o.steps) + " --warmup " +
      std::to_string(o.warmup) + " --rounds " + std::to_string(o.rounds) + " --lr " + lr +
      " --momentum " + mom + " --threads " + std::to_string(o.threads) + " --activation " +
      train::activation_name(o.model.activation) + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    note = "skipped (cannot start " + o.python + ")";
    return {};
  }
  std::string out, last;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  const int rc = pclose(pipe);
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) {
    if (!line.empty()) last = line;
  }
  try {
    if (rc == 0) {
      const json j = json::parse(last);
      return {j.at("samples_per_s").get<double>(), j.at("samples_per_cpu_s").get<double>()};
    }
  } catch (const json::exception&) {
  }
  note = "failed (exit " + std::to_string(rc) + ", last line '" + last + "')";
  return {};
}

// The options for the CPU and PyTorch runs: a model too large for one core
// (the GPU case, e.g. --layers 784,4096,4096,4096,10 --batch 1024) gets fewer
// steps so that the CPU column stays a few seconds per round.
TrainBenchOptions cpu_options(const TrainBenchOptions& o) {
  constexpr double kFlopsPerRound = 1e11;  // a few seconds at 30 GFLOP/s
  double weights = 0;
  for (size_t i = 1; i < o.model.layers.size(); ++i) {
    weights += static_cast<double>(o.model.layers[i - 1]) * o.model.layers[i];
  }
  const double flops_per_step = 6.0 * weights * o.batch;  // forward 2, backward 4
  TrainBenchOptions c = o;
  const double fit = kFlopsPerRound / flops_per_step;
  if (fit < o.steps) {
    c.steps = std::max(3, static_cast<int>(fit));
    c.warmup = std::min(o.warmup, 1);
    std::printf(
        "  cpu: %d warm-up + %d steps per round for this model size (--steps %d "
        "applies to the GPU)\n",
        c.warmup, c.steps, o.steps);
  }
  return c;
}

// Times one backend; returns the best round's rates.
Rate time_backend(Backend& backend, const TrainBenchOptions& o) {
  const int in = o.model.layers.front();
  const int classes = o.model.layers.back();
  constexpr int kPool = 8;
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int32_t> label(0, classes - 1);
  std::vector<std::vector<float>> xs(kPool, std::vector<float>(static_cast<size_t>(o.batch) * in));
  std::vector<std::vector<int32_t>> ys(kPool, std::vector<int32_t>(o.batch));
  std::vector<data::Batch> batches(kPool);
  for (int p = 0; p < kPool; ++p) {
    for (auto& v : xs[p]) v = u(gen);
    for (auto& v : ys[p]) v = label(gen);
    batches[p].rows = o.batch;
    batches[p].cols = in;
    batches[p].x = xs[p].data();
    batches[p].labels = ys[p].data();
  }
  const float lr = static_cast<float>(o.optimizer.lr);
  float loss = 0;
  for (int s = 0; s < o.warmup; ++s) loss = backend.train_step(batches[s % kPool], lr);
  Rate best;
  const double samples = static_cast<double>(o.batch) * o.steps;
  for (int r = 0; r < o.rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    for (int s = 0; s < o.steps; ++s) loss = backend.train_step(batches[s % kPool], lr);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double dc = process_cpu_seconds() - c0;
    std::printf("  %-28s round %d: %10.0f samples/s  (%.3f ms/step, loss %.4f)\n",
                backend.device_name().c_str(), r, samples / dt, 1e3 * dt / o.steps, loss);
    best.wall = std::max(best.wall, samples / dt);
    best.cpu = std::max(best.cpu, samples / dc);
  }
  return best;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "gossip-bench train: %s\nusage: gossip-bench train [--config FILE] "
               "[--layers A,B,..] [--batch N] [--steps N] [--warmup N] [--rounds N] "
               "[--threads N] [--device all|cpu|cuda] [--no-torch] [--python PATH] "
               "[--torch-script PATH]\n",
               why);
  return 2;
}

int run_train(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config" && is_gpt_bench_config(argv[i + 1])) {
      return run_train_gpt(argc, argv);
    }
  }
  TrainBenchOptions o;
  o.model.layers = {784, 256, 128, 10};
  // The config first, so that flags override it wherever they appear.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") {
      const std::string err = load_config(argv[i + 1], o);
      if (!err.empty()) return usage(err.c_str());
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    auto int_arg = [&](int& dst) {
      dst = std::atoi(argv[++i]);
      return dst > 0;
    };
    if (a == "--no-torch") {
      o.torch = false;
    } else if (!has_value) {
      return usage(("missing value for " + a).c_str());
    } else if (a == "--config") {
      ++i;
    } else if (a == "--layers") {
      if (!parse_layers(argv[++i], o.model.layers)) return usage("--layers wants A,B[,C...]");
    } else if (a == "--batch") {
      if (!int_arg(o.batch)) return usage("--batch must be > 0");
    } else if (a == "--steps") {
      if (!int_arg(o.steps)) return usage("--steps must be > 0");
    } else if (a == "--warmup") {
      o.warmup = std::atoi(argv[++i]);
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
      return usage(("unknown option " + a).c_str());
    }
  }
  if (o.batch < 1 || o.steps < 1 || o.rounds < 1 || o.threads < 1 || o.warmup < 0) {
    return usage("batch, steps, rounds and cpu_threads must be >= 1, warmup_steps >= 0");
  }
  if (auto s = o.model.validate(); !s) return usage(s.message().c_str());
  if (auto s = o.optimizer.validate(); !s) return usage(s.message().c_str());

  std::vector<std::string> devices;
  if (o.device == "all" || o.device == "cpu") devices.push_back("cpu");
  if ((o.device == "all" && train::cuda_device_present()) || o.device == "cuda") {
    devices.push_back("cuda");
  }
  if (devices.empty()) return usage("--device must be all, cpu or cuda");

  std::printf(
      "train bench: %s, batch %d, %s lr %g momentum %g, %d warm-up + %d x %d steps, "
      "%d CPU thread(s)\n",
      o.model.describe().c_str(), o.batch, train::optimizer_name(o.optimizer.kind), o.optimizer.lr,
      o.optimizer.momentum, o.warmup, o.rounds, o.steps, o.threads);
  json result;
  json per_device = json::object();
  double best = 0;
  std::string best_device;
  Rate cpu_rate;
  const TrainBenchOptions cpu_o = cpu_options(o);
  for (const std::string& d : devices) {
    train::BackendOptions bo;
    bo.device = d;
    bo.cpu_threads = o.threads;
    bo.max_batch = o.batch;
    auto backend = train::make_backend(o.model, o.optimizer, bo);
    if (!backend) {
      std::printf("  %s: unavailable: %s\n", d.c_str(), backend.status().message().c_str());
      continue;
    }
    if (d == "cpu") std::printf("  cpu: OpenBLAS kernels %s\n", train::cpu::blas_kernels());
    const Rate rate = time_backend(**backend, d == "cpu" ? cpu_o : o);
    const double sps = rate.wall;
    std::printf("%-30s %10.0f samples/s (best round; %.0f per CPU-second)\n",
                (*backend)->device_name().c_str(), sps, rate.cpu);
    per_device[d] = sps;
    if (d == "cpu") cpu_rate = rate;
    if (sps > best) {
      best = sps;
      best_device = (*backend)->device_name();
    }
  }
  if (best_device.empty()) {
    std::printf("%s\n", json{{"error", "no backend could be built"}}.dump().c_str());
    return 1;
  }

  std::string note;
  const Rate torch_rate = run_torch(cpu_o, note);
  result["samples_per_s"] = best;
  result["device"] = best_device;
  result["batch"] = o.batch;
  result["layers"] = o.model.layers;
  result["per_device"] = per_device;
  if (cpu_rate.wall > 0) {
    result["cpu_blas"] = train::cpu::blas_kernels();
    result["cpu_samples_per_cpu_s"] = cpu_rate.cpu;
  }
  if (torch_rate.wall > 0) {
    std::printf(
        "%-30s %10.0f samples/s (best round; %.0f per CPU-second; %d thread(s), "
        "OpenBLAS %s)\n",
        "pytorch (cpu)", torch_rate.wall, torch_rate.cpu, o.threads,
        std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE")
                                         : train::cpu::blas_kernels());
    result["torch_samples_per_s"] = torch_rate.wall;
    result["torch_samples_per_cpu_s"] = torch_rate.cpu;
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

const Registrar kRegistrar{
    {"train", "training steps/s per device vs PyTorch (--config FILE)", &run_train}};

}  // namespace
}  // namespace gossip::bench
