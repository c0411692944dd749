// gossip-bench averaging: how long one gossip round takes against the
// MPI_Allreduce that a centralised data-parallel job would run instead.
//
// 8 peers (one process, real Noise sessions on loopback, one trainer thread
// each) hold a 25M-parameter model. A round = every peer completes one
// exchange: the peers are matched in fixed pairs (0-1, 2-3, ...) and the even
// peer of each pair initiates, so a round is a perfect matching, the gossip
// analogue of one allreduce (which gives everyone the mean). Measured from
// the moment the exchanges are requested until the last delta is applied
// (snapshots, quantization, encryption, transfer, validation, apply). A warm
// up round (dials, buffer allocation) precedes the timed rounds. Then the
// same vector through MPI_Allreduce with OpenMPI over TCP (tools/bench/
// mpi_allreduce.c, compiled with mpicc here; skipped with a note when
// OpenMPI is absent), and a two-peer exchange against the single-core AEAD
// rate. Each with ChaChaPoly (the default) and, where the CPU has AES-NI,
// AESGCM (net.cipher). First, the single-core rate of the bf16 and fp16
// wire conversions. The last line of stdout is one JSON object.
//
// Where the time goes: the process's CPU time per round (user + system,
// getrusage) against the cores there are, and the crypto floor, the time
// that sealing and opening every blob of a round takes at the measured
// single-core AEAD rate with every core busy. On a host with fewer cores
// than peers the round is CPU-bound, and the floor says what no amount of
// overlap can beat; MPI_Allreduce pays no encryption.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "bench.hpp"
#include "gossip/averaging/codec.hpp"
#include "gossip/averaging/engine.hpp"
#include "gossip/crypto/noise.hpp"
#include "gossip/net/router.hpp"
#include "gossip/train/cpu_backend.hpp"

namespace gossip::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Peer {
  std::unique_ptr<net::Node> node;
  std::shared_ptr<averaging::StaticDirectory> dir;
  std::unique_ptr<averaging::Engine> engine;
  std::unique_ptr<train::Backend> backend;
  std::thread loop;
  std::atomic<bool> run{true};
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

struct RoundTimes {
  std::vector<double> wall;  // seconds per timed round
  std::vector<double> cpu;   // process CPU seconds (all threads) per round
};

// Runs `timed` timed rounds (after one warm-up) of `peers` peers.
RoundTimes rounds(asio::io_context& io, int peers, size_t params, const averaging::WireCodec& wire,
                  crypto::Cipher cipher, int timed) {
  const auto key = crypto::SwarmKey::generate();
  train::ModelSpec spec;
  spec.layers = {1000, static_cast<int>(params / 1001)};
  spec.loss = train::LossKind::kMse;
  train::OptimizerSpec opt;
  opt.momentum = 0;
  train::BackendOptions bo;
  bo.device = "cpu";
  bo.max_batch = 1;
  std::vector<std::unique_ptr<Peer>> ps;
  for (int i = 0; i < peers; ++i) {
    auto p = std::make_unique<Peer>();
    auto router = std::make_shared<net::Router>();
    net::NetConfig nc;
    nc.cipher = cipher;
    p->node = std::make_unique<net::Node>(io, nc, crypto::StaticKeypair::generate(), key);
    p->node->set_handler(router);
    if (auto st = p->node->listen({asio::ip::make_address("127.0.0.1"), 0}); !st) {
      throw std::runtime_error(st.to_string());
    }
    spec.seed = 1 + i;
    auto backend = train::cpu::make_cpu_backend(spec, opt, bo);
    if (!backend) throw std::runtime_error(backend.status().to_string());
    p->backend = std::move(backend).value();
    averaging::Options o;
    o.interval_steps = int64_t{1} << 40;  // only explicit requests
    o.wire = wire;
    o.exchange_timeout = 120s;
    o.seed = 7 + i;
    p->dir = std::make_shared<averaging::StaticDirectory>(std::vector<averaging::Member>{});
    p->engine = std::make_unique<averaging::Engine>(io, *p->node, p->dir,
                                                    averaging::identity_of(*p->backend), o);
    p->engine->set_initiating(false);
    p->engine->attach(*router);
    ps.push_back(std::move(p));
  }
  for (int i = 0; i < peers; ++i) {
    const auto& partner = ps[i ^ 1];
    ps[i]->dir->set(
        {{partner->node->peer_id(), "127.0.0.1", partner->node->local_endpoint().port()}});
  }
  for (auto& p : ps) {
    Peer* raw = p.get();
    p->loop = std::thread([raw] {
      int64_t step = 0;
      while (raw->run) {
        raw->engine->between_steps(*raw->backend, ++step);
        raw->engine->wait_for_work(1ms);
      }
    });
  }
  RoundTimes out;
  for (int r = 0; r <= timed; ++r) {
    std::vector<uint64_t> ok0;
    for (auto& p : ps) ok0.push_back(p->engine->counters().exchanges_ok);
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    for (int i = 0; i < peers; i += 2) ps[i]->engine->request_exchange();
    for (size_t i = 0; i < ps.size(); ++i) {
      while (ps[i]->engine->counters().exchanges_ok == ok0[i]) std::this_thread::sleep_for(200us);
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r > 0) {
      out.wall.push_back(s);
      out.cpu.push_back(cpu_seconds() - cpu0);
    }
    for (auto& p : ps) {
      if (p->engine->counters().exchanges_failed)
        std::fprintf(stderr, "warning: failed exchange: %s\n",
                     p->engine->counters().last_failure.c_str());
    }
  }
  for (auto& p : ps) p->run = false;
  for (auto& p : ps) p->loop.join();
  for (auto& p : ps) p->engine.reset();
  for (auto& p : ps) p->node->close();
  std::this_thread::sleep_for(100ms);
  return out;
}

double aead_gbps(crypto::Cipher cipher) {
  crypto::CipherState cs(crypto::SwarmKey::generate().key, cipher);
  constexpr size_t kMsg = 65536 - crypto::kTagBytes;
  std::vector<uint8_t> buf(kMsg + crypto::kTagBytes, 0x5a);
  const size_t n = (size_t{1} << 30) / kMsg;
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i)
    (void)cs.encrypt({}, std::span<const uint8_t>(buf.data(), kMsg), buf);
  return static_cast<double>(n * kMsg) / std::chrono::duration<double>(Clock::now() - t0).count() /
         1e9;
}

// Single-core rate of `wire`'s encode + decode, in GB/s of fp32 values
// converted (16M floats, 4 passes each way).
double convert_gbps(averaging::WireFormat wire) {
  std::vector<float> x(size_t{1} << 22, 0.123f), dequantized(x.size()), back(x.size());
  std::vector<uint8_t> bytes(averaging::wire_bytes(wire, x.size()));
  const auto t0 = Clock::now();
  for (int r = 0; r < 4; ++r) {
    averaging::encode(wire, x, bytes, dequantized);
    (void)averaging::decode(wire, bytes, back);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return 4.0 * 2 * static_cast<double>(x.size() * sizeof(float)) / s / 1e9;
}

// The calling thread's CPU time in seconds: a single-core kernel's rate over
// it does not depend on how many other processes share the host's cores.
double thread_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Single-core rates of the int8 codec, in GB/s of fp32 values over the
// thread's CPU time: encode (absmax, stochastic rounding), validate, and the
// fused apply from two blobs (the hot path of an exchange). 16M floats, best
// of 8.
nlohmann::json int8_rates() {
  const size_t n = size_t{1} << 24;
  std::vector<float> x(n), y(n);
  for (size_t i = 0; i < n; ++i) x[i] = 0.01f * static_cast<float>((i * 2654435761u) % 2001) - 10;
  const auto l = averaging::make_layout(averaging::WireFormat::kInt8, n, 1);
  std::vector<uint8_t> a(l.bytes()), b(l.bytes());
  double enc = 1e9, val = 1e9, app = 1e9;
  for (int r = 0; r < 8; ++r) {
    const double t0 = thread_cpu_s();
    averaging::encode(l, x, a, 1 + r);
    const double t1 = thread_cpu_s();
    if (!averaging::validate(l, a)) std::fprintf(stderr, "warning: int8 blob rejected\n");
    const double t2 = thread_cpu_s();
    averaging::encode(l, x, b, 100 + r);
    const double t3 = thread_cpu_s();
    (void)averaging::apply_wire_delta(l, 0.5f, a, b, y);
    const double t4 = thread_cpu_s();
    enc = std::min(enc, t1 - t0);
    val = std::min(val, t2 - t1);
    app = std::min(app, t4 - t3);
  }
  const double gb = static_cast<double>(n) * 4 / 1e9;
  return {{"encode", gb / enc}, {"validate", gb / val}, {"apply", gb / app}};
}

// Bytes per element and relative squared error sum (dq - x)^2 / sum x^2 of
// int8 at several block sizes, on Gaussian values and on heavy-tailed ones
// (Student t, 3 degrees of freedom: trained weights have outliers that
// inflate a block's absmax). The figures behind kDefaultBlock.
nlohmann::json int8_block_table() {
  const size_t n = size_t{1} << 20;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0, 1);
  std::student_t_distribution<float> t3(3);
  std::vector<float> g(n), h(n), dq(n);
  for (size_t i = 0; i < n; ++i) {
    g[i] = normal(rng);
    h[i] = t3(rng);
  }
  nlohmann::json rows = nlohmann::json::array();
  for (uint32_t block : {32u, 64u, 128u, 256u}) {
    const averaging::WireCodec c(averaging::WireFormat::kInt8, block, 1.0);
    const auto l = averaging::make_layout(c, n, 1);
    std::vector<uint8_t> w(l.bytes());
    nlohmann::json row = {{"block", block},
                          {"bytes_per_element", static_cast<double>(l.bytes()) / n}};
    for (const auto& [name, v] : {std::pair{"mse_gauss", &g}, std::pair{"mse_t3", &h}}) {
      averaging::encode(l, *v, w, 7, dq);
      double num = 0, den = 0;
      for (size_t i = 0; i < n; ++i) {
        num += static_cast<double>(dq[i] - (*v)[i]) * (dq[i] - (*v)[i]);
        den += static_cast<double>((*v)[i]) * (*v)[i];
      }
      row[name] = num / den;
    }
    std::printf("int8 block %-4u %6.4f bytes/element, relative MSE %.3g (gauss), %.3g (t3)\n",
                block, row["bytes_per_element"].get<double>(), row["mse_gauss"].get<double>(),
                row["mse_t3"].get<double>());
    rows.push_back(row);
  }
  return rows;
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t k = fread(buf, 1, sizeof buf, f)) out.append(buf, k);
    pclose(f);
  }
  return out;
}

// Finds tools/bench/mpi_allreduce.c: $GOSSIP_SOURCE_ROOT, or next to this
// source file (meson's __FILE__ is relative to the build folder, two levels
// above the gossip-bench executable).
fs::path mpi_source() {
  std::vector<fs::path> c;
  if (const char* r = std::getenv("GOSSIP_SOURCE_ROOT"))
    c.push_back(fs::path(r) / "tools/bench/mpi_allreduce.c");
  const fs::path here = fs::path(__FILE__).parent_path() / "mpi_allreduce.c";
  c.push_back(here);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) c.push_back(exe.parent_path().parent_path() / here);
  for (auto& p : c) {
    if (fs::exists(p, ec)) return p;
  }
  return {};
}

nlohmann::json run_mpi(int peers, size_t params, int repeat) {
  if (run_capture("command -v mpicc >/dev/null && command -v mpirun >/dev/null && echo yes")
          .find("yes") == std::string::npos) {
    return {{"note",
             "OpenMPI not found (apt-get install openmpi-bin libopenmpi-dev); allreduce skipped"}};
  }
  const fs::path src = mpi_source();
  if (src.empty())
    return {{"note", "tools/bench/mpi_allreduce.c not found (set GOSSIP_SOURCE_ROOT)"}};
  const fs::path exe =
      fs::temp_directory_path() / ("gossip_mpi_allreduce_" + std::to_string(getpid()));
  const std::string build = "mpicc -O2 -o " + exe.string() + " " + src.string() + " 2>&1";
  if (std::system((build + " >/dev/null").c_str()) != 0)
    return {{"note", "mpicc failed: " + run_capture(build)}};
  const std::string cmd = "mpirun --allow-run-as-root --oversubscribe --mca btl self,tcp -np " +
                          std::to_string(peers) + " " + exe.string() + " " +
                          std::to_string(params) + " " + std::to_string(repeat) + " 2>/dev/null";
  const std::string out = run_capture(cmd);
  std::error_code ec;
  fs::remove(exe, ec);
  const auto pos = out.rfind('{');
  if (pos == std::string::npos)
    return {{"note", "mpirun produced no result: " + out.substr(0, 300)}};
  auto j = nlohmann::json::parse(out.substr(pos), nullptr, false);
  if (j.is_discarded()) return {{"note", "unparsable mpirun output"}};
  return j;
}

double min_of(const std::vector<double>& v) {
  return *std::min_element(v.begin(), v.end());
}
double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run_averaging(int argc, char** argv) {
  size_t params = 25'000'000;
  int peers = 8, repeat = 3;
  bool mpi = true;
  int threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 2u, 16u));
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--params" && i + 1 < argc)
      params = std::stoul(argv[++i]);
    else if (a == "--peers" && i + 1 < argc)
      peers = std::max(2, std::stoi(argv[++i]) & ~1);
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::max(1, std::stoi(argv[++i]));
    else if (a == "--io-threads" && i + 1 < argc)
      threads = std::max(1, std::stoi(argv[++i]));
    else if (a == "--no-mpi")
      mpi = false;
    else {
      std::fprintf(stderr,
                   "usage: gossip-bench averaging [--params N] [--peers 8] [--repeat 3] "
                   "[--io-threads T] [--no-mpi]\n");
      return 2;
    }
  }
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&io] { io.run(); });

  std::printf("gossip-bench averaging: %d peers, %zu parameters, %d io threads, %u cores\n", peers,
              params, threads, std::thread::hardware_concurrency());
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  nlohmann::json j = {
      {"peers", peers}, {"params", params}, {"cores", cores}, {"allreduce_s", nullptr}};
  for (auto wire : {averaging::WireFormat::kBf16, averaging::WireFormat::kFp16}) {
    const std::string name(averaging::wire_format_name(wire));
    j["convert_gbps_" + name] = convert_gbps(wire);
    std::printf("%-40s %8.3f GB/s of fp32, encode + decode\n",
                ("wire conversion, " + name + ", 1 core").c_str(),
                j["convert_gbps_" + name].get<double>());
  }
  j["int8_block_table"] = int8_block_table();
  const auto rates = int8_rates();
  for (const char* k : {"encode", "validate", "apply"}) {
    j[std::string("int8_gbps_") + k] = rates[k];
    std::printf("%-40s %8.3f GB/s of fp32 (thread CPU time)\n",
                (std::string("int8 ") + k + ", 1 core").c_str(), rates[k].get<double>());
  }
  // The codecs of a round: today's two, int8 (default block) and randk
  // (default block and fraction).
  const std::vector<averaging::WireCodec> codecs = {
      averaging::WireFormat::kFp32, averaging::WireFormat::kBf16, averaging::WireFormat::kInt8,
      averaging::WireFormat::kRandK};
  // ChaChaPoly (the default, the original design's v1) keys its figures plainly;
  // AESGCM (net.cipher, where the CPU has AES-NI) adds "_aesgcm".
  std::vector<crypto::Cipher> ciphers;
  for (auto c : {crypto::Cipher::kChaChaPoly, crypto::Cipher::kAesGcm}) {
    if (crypto::check_cipher_available(c)) ciphers.push_back(c);
  }
  for (const crypto::Cipher cipher : ciphers) {
    const std::string name(crypto::cipher_name(cipher));
    const std::string suffix = cipher == crypto::Cipher::kAesGcm ? "_aesgcm" : "";
    const double aead = aead_gbps(cipher);
    // Every peer seals its blob and opens its partner's (2 x peers x blob
    // bytes), on the io threads, at most one per core.
    auto floor_s = [&](const averaging::WireCodec& w, int n) {
      const double bytes = static_cast<double>(averaging::make_layout(w, params, 1).bytes());
      return 2.0 * n * bytes / (aead * 1e9) / std::min(cores, static_cast<unsigned>(threads));
    };
    j["aead_gbps_1core" + suffix] = aead;
    for (const auto& wire : codecs) {
      const std::string key = std::string(averaging::wire_format_name(wire.format)) + suffix;
      const auto t = rounds(io, peers, params, wire, cipher, repeat);
      const double cpu = median_of(t.cpu), floor = floor_s(wire, peers);
      const std::string label =
          "gossip round, " + std::string(averaging::wire_format_name(wire.format)) + ", " + name;
      std::printf(
          "%-40s %8.3f s (median %.3f); CPU %.2f core-s of %.2f available; crypto floor %.3f s\n",
          label.c_str(), min_of(t.wall), median_of(t.wall), cpu, cores * median_of(t.wall), floor);
      j["round_s_" + key] = min_of(t.wall);
      j["round_median_s_" + key] = median_of(t.wall);
      j["round_cpu_s_" + key] = cpu;
      j["crypto_floor_s_" + key] = floor;
    }
    const auto pair = rounds(io, 2, params, averaging::WireFormat::kFp32, cipher, repeat);
    const double pair_gbps = static_cast<double>(params) * 4 / min_of(pair.wall) / 1e9;
    std::printf("%-40s %8.3f s = %.3f GB/s per direction\n",
                ("two-peer exchange, fp32, " + name).c_str(), min_of(pair.wall), pair_gbps);
    std::printf("%-40s %8.3f GB/s (%.0f%% reached per direction)\n",
                ("AEAD " + name + ", 1 core").c_str(), aead, 100 * pair_gbps / aead);
    j["pair_exchange_s_fp32" + suffix] = min_of(pair.wall);
    j["pair_gbps_per_direction" + suffix] = pair_gbps;
  }
  guard.reset();
  io.stop();
  for (auto& t : pool) t.join();
  if (mpi) {
    auto m = run_mpi(peers, params, repeat);
    if (m.contains("allreduce_s")) {
      const double ar = m["allreduce_s"].get<double>();
      j["allreduce_s"] = ar;
      j["allreduce_median_s"] = m["allreduce_median_s"];
      std::printf("%-40s %8.3f s (median %.3f); targets: fp32 round 1.5x, bf16 1.0x, int8 0.5x\n",
                  "MPI_Allreduce, OpenMPI btl tcp", ar, m["allreduce_median_s"].get<double>());
      for (const crypto::Cipher cipher : ciphers) {
        const std::string suffix = cipher == crypto::Cipher::kAesGcm ? "_aesgcm" : "";
        for (const char* w : {"fp32", "bf16", "int8", "randk"}) {
          const std::string key = w + suffix;
          j[key + "_vs_allreduce"] = j["round_s_" + key].get<double>() / ar;
          j["crypto_floor_" + key + "_vs_allreduce"] =
              j["crypto_floor_s_" + key].get<double>() / ar;
        }
        std::printf(
            "%-40s round fp32 %.2fx, bf16 %.2fx, int8 %.2fx, randk %.3fx; crypto floor alone "
            "fp32 %.2fx, bf16 %.2fx\n",
            ("vs MPI_Allreduce, " + std::string(crypto::cipher_name(cipher))).c_str(),
            j["fp32" + suffix + "_vs_allreduce"].get<double>(),
            j["bf16" + suffix + "_vs_allreduce"].get<double>(),
            j["int8" + suffix + "_vs_allreduce"].get<double>(),
            j["randk" + suffix + "_vs_allreduce"].get<double>(),
            j["crypto_floor_fp32" + suffix + "_vs_allreduce"].get<double>(),
            j["crypto_floor_bf16" + suffix + "_vs_allreduce"].get<double>());
      }
    } else {
      j["mpi_note"] = m.value("note", "");
      std::printf("MPI_Allreduce skipped: %s\n", j["mpi_note"].get<std::string>().c_str());
    }
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

const Registrar kReg{{"averaging", "gossip round (8 peers, 25M params, fp32/bf16) vs MPI_Allreduce",
                      &run_averaging}};

}  // namespace
}  // namespace gossip::bench
