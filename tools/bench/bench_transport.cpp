// gossip-bench transport: throughput of the secure session stack on loopback,
// next to the two ceilings it is built from: the single-core ChaCha20-Poly1305
// rate (the crypto module's CipherState, i.e. libsodium's
// crypto_aead_chacha20poly1305_ietf_encrypt_detached, over 64 KiB messages)
// and raw unencrypted TCP loopback. One io_context with two threads carries
// both peers, so the sender encrypts and the receiver decrypts on different
// cores. Prints a table, then one JSON object on the last line.
#include <asio.hpp>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "gossip/crypto/noise.hpp"
#include "gossip/net/node.hpp"

namespace gossip::bench {
namespace {

using Clock = std::chrono::steady_clock;
// CPU seconds used by this process so far (all threads).
double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double secs_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Returns {wall-clock rate, rate per CPU-second of this thread} in GB/s.
std::pair<double, double> aead_rate(size_t total_bytes) {
  crypto::CipherState cs(crypto::SwarmKey::generate().key);
  constexpr size_t kMsg = 65536 - crypto::kTagBytes;
  std::vector<uint8_t> buf(kMsg + crypto::kTagBytes, 0x5a);
  const size_t n = total_bytes / kMsg;
  timespec c0{}, c1{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    (void)cs.encrypt({}, std::span<const uint8_t>(buf.data(), kMsg), buf);
  }
  const double wall = secs_since(t0);
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
  const double cpu = static_cast<double>(c1.tv_sec - c0.tv_sec) + static_cast<double>(c1.tv_nsec - c0.tv_nsec) * 1e-9;
  const double bytes = static_cast<double>(n * kMsg);
  return {bytes / wall / 1e9, bytes / cpu / 1e9};
}

double raw_tcp_rate(size_t total_bytes) {
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket rx(io), tx(io);
  std::thread t([&] { acc.accept(rx); });
  tx.connect(acc.local_endpoint());
  t.join();
  std::vector<uint8_t> out(1 << 20, 1), in(1 << 20);
  const auto t0 = Clock::now();
  std::thread reader([&] {
    size_t got = 0;
    asio::error_code ec;
    while (got < total_bytes && !ec) got += rx.read_some(asio::buffer(in), ec);
  });
  for (size_t sent = 0; sent < total_bytes; sent += out.size()) asio::write(tx, asio::buffer(out));
  reader.join();
  return static_cast<double>(total_bytes) / secs_since(t0) / 1e9;
}

// Receives blobs of one expected size and signals each completion.
class Sink : public net::SessionHandler {
 public:
  explicit Sink(size_t size) : dest_(size) {}
  void on_open(net::Session& s) override {
    std::lock_guard l(mu_);
    session_ = s.shared_from_this();
    cv_.notify_all();
  }
  core::Result<std::span<uint8_t>> on_blob_begin(net::Session&, const net::BlobBegin& b) override {
    if (b.total_bytes != dest_.size()) return core::invalid_argument("size");
    return std::span<uint8_t>(dest_);
  }
  void on_blob_end(net::Session&, uint32_t, const core::Status& st) override {
    std::lock_guard l(mu_);
    ++ended_;
    ok_ = ok_ && st.is_ok();
    cv_.notify_all();
  }
  void wait_blobs(int n) {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return ended_ >= n; });
  }
  std::shared_ptr<net::Session> session() {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return session_ != nullptr; });
    return session_;
  }
  bool ok() {
    std::lock_guard l(mu_);
    return ok_;
  }

 private:
  std::vector<uint8_t> dest_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<net::Session> session_;
  int ended_ = 0;
  bool ok_ = true;
};

template <typename T>
T run_sync(asio::io_context& io, asio::awaitable<T> aw) {
  auto wrap = [](asio::awaitable<T> a) -> asio::awaitable<std::optional<T>> {
    co_return std::optional<T>(co_await std::move(a));
  };
  return *asio::co_spawn(io, wrap(std::move(aw)), asio::use_future).get();
}

int run_transport(int argc, char** argv) {
  size_t mb = 256;
  int threads = 2;
  net::NetConfig cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mb" && i + 1 < argc) mb = std::stoul(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) cfg.max_batch_messages = std::stoul(argv[++i]);
    else if (a == "--sockbuf" && i + 1 < argc) cfg.socket_buffer_bytes = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: gossip-bench transport [--mb N] [--threads N] [--batch N] [--sockbuf BYTES]\n");
      return 2;
    }
  }
  const size_t size = mb << 20;
  const auto [aead, aead_cpu] = aead_rate(size_t{1} << 30);
  const double raw = raw_tcp_rate(size);

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  const auto swarm = crypto::SwarmKey::generate();
  auto sink_a = std::make_shared<Sink>(size), sink_b = std::make_shared<Sink>(size);
  net::Node a(io, cfg, crypto::StaticKeypair::generate(), swarm);
  net::Node b(io, cfg, crypto::StaticKeypair::generate(), swarm);
  a.set_handler(sink_a);
  b.set_handler(sink_b);
  if (auto st = b.listen({asio::ip::make_address("127.0.0.1"), 0}); !st) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }
  auto sa = run_sync(io, a.dial(b.local_endpoint()));
  if (!sa) {
    std::fprintf(stderr, "dial: %s\n", sa.status().to_string().c_str());
    return 1;
  }
  auto sb = sink_b->session();
  std::vector<uint8_t> blob_a(size, 0xa5), blob_b(size, 0x5a);

  auto t0 = Clock::now();
  const double c0 = cpu_s();
  const core::Status s1 = run_sync(io, (*sa)->send_blob({}, blob_a));
  sink_b->wait_blobs(1);
  const double one_way = static_cast<double>(size) / secs_since(t0) / 1e9;
  // CPU seconds per GB moved one way, against the AEAD floor of one encrypt
  // plus one decrypt per byte: robust to other load on the machine.
  const double cpu_per_gb = (cpu_s() - c0) / (static_cast<double>(size) / 1e9);
  const double floor_per_gb = 2.0 / aead_cpu;

  t0 = Clock::now();
  auto fa = asio::co_spawn(io, (*sa)->send_blob({}, blob_a), asio::use_future);
  auto fb = asio::co_spawn(io, sb->send_blob({}, blob_b), asio::use_future);
  const bool duplex_sent = fa.get().is_ok() && fb.get().is_ok();
  sink_b->wait_blobs(2);
  sink_a->wait_blobs(1);
  const double duplex = 2.0 * static_cast<double>(size) / secs_since(t0) / 1e9;
  const bool ok = s1.is_ok() && duplex_sent && sink_a->ok() && sink_b->ok();

  a.close();
  b.close();
  guard.reset();
  io.stop();
  for (auto& t : pool) t.join();

  std::printf("%-44s %10s\n", "measurement", "GB/s");
  std::printf("%-44s %10.3f\n", "AEAD ChaCha20-Poly1305, 1 core, 64 KiB msgs", aead);
  std::printf("%-44s %10.3f\n", "AEAD per CPU-second (load-independent)", aead_cpu);
  std::printf("%-44s %10.3f\n", "raw TCP loopback (unencrypted)", raw);
  std::printf("%-44s %10.3f  (%.0f%% of AEAD)\n", "secure session, one way", one_way,
              100.0 * one_way / aead);
  std::printf("%-44s %10.3f  (both directions summed)\n", "secure session, full duplex", duplex);
  std::printf("%-44s %10.3f  (AEAD floor enc+dec %.3f: %.0f%% efficiency)\n",
              "one way: CPU seconds per GB, both ends", cpu_per_gb, floor_per_gb,
              100.0 * floor_per_gb / cpu_per_gb);
  std::printf("blob %zu MiB, io threads %d, batch %zu, %s\n", mb, threads, cfg.max_batch_messages,
              ok ? "all blobs ok" : "A BLOB FAILED");
  nlohmann::json j = {{"bench", "transport"},      {"blob_mb", mb},
                      {"one_way_GBps", one_way},   {"duplex_GBps", duplex},
                      {"aead_GBps", aead}, {"aead_cpu_GBps", aead_cpu},         {"raw_tcp_GBps", raw},
                      {"one_way_vs_aead", one_way / aead},
                      {"one_way_cpu_s_per_GB", cpu_per_gb}, {"aead_floor_cpu_s_per_GB", floor_per_gb},
                      {"ok", ok}};
  std::printf("%s\n", j.dump().c_str());
  return ok ? 0 : 1;
}

const Registrar kReg{{"transport", "secure session throughput vs AEAD and raw TCP (loopback)",
                      &run_transport}};

}  // namespace
}  // namespace gossip::bench
