// Helpers for the averaging integration tests: a swarm of real peers in one
// process (Node + Router + Engine + CPU backend each, real Noise sessions on
// loopback), with one "trainer thread" per peer that either only averages or
// trains on a tiny synthetic classification task between exchanges.
#pragma once

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "gossip/averaging/engine.hpp"
#include "gossip/net/router.hpp"
#include "gossip/train/cpu_backend.hpp"
#include "net_test_support.hpp"

namespace gossip::averaging::testing {

using namespace std::chrono_literals;
using net::testing::IoThreads;

inline train::ModelSpec small_model(uint64_t seed, std::vector<int> layers = {64, 64, 10}) {
  train::ModelSpec m;
  m.layers = std::move(layers);
  m.seed = seed;
  return m;
}

inline std::unique_ptr<train::Backend> cpu_backend(const train::ModelSpec& m,
                                                   train::OptimizerSpec opt = {}) {
  train::BackendOptions bo;
  bo.device = "cpu";
  bo.max_batch = 64;
  auto b = train::cpu::make_cpu_backend(m, opt, bo);
  if (!b) throw std::runtime_error(b.status().to_string());
  return std::move(*b);
}

// Gaussian blobs: `classes` centres in `features` dimensions, N(centre, 1).
struct BlobTask {
  int features = 16, classes = 4;
  std::vector<float> centres;
  explicit BlobTask(uint64_t seed = 7, int f = 16, int c = 4) : features(f), classes(c) {
    std::mt19937_64 r(seed);
    std::normal_distribution<float> n(0, 1.2f);
    for (int i = 0; i < f * c; ++i) centres.push_back(n(r));
  }
  // Fills a batch of `rows` samples drawn with `rng`.
  void sample(std::mt19937_64& rng, int rows, std::vector<float>& x,
              std::vector<int32_t>& y) const {
    std::normal_distribution<float> n(0, 1);
    x.resize(static_cast<size_t>(rows) * features);
    y.resize(rows);
    for (int i = 0; i < rows; ++i) {
      y[i] = static_cast<int32_t>(rng() % classes);
      for (int j = 0; j < features; ++j)
        x[i * features + j] = centres[y[i] * features + j] + n(rng);
    }
  }
  data::Batch batch(const std::vector<float>& x, const std::vector<int32_t>& y) const {
    data::Batch b;
    b.rows = static_cast<int>(y.size());
    b.cols = features;
    b.x = x.data();
    b.labels = y.data();
    return b;
  }
  // Accuracy of `backend` on a fixed test set of `rows` samples (seed 99).
  double accuracy(train::Backend& backend, int rows = 1024) const {
    std::mt19937_64 r(99);
    std::vector<float> x;
    std::vector<int32_t> y;
    train::EvalStats st;
    for (int done = 0; done < rows; done += 64) {
      sample(r, 64, x, y);
      st += backend.evaluate(batch(x, y));
    }
    return st.accuracy();
  }
};

struct TestPeer {
  std::unique_ptr<net::Node> node;
  std::shared_ptr<net::Router> router;
  std::shared_ptr<StaticDirectory> directory;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<train::Backend> backend;
  std::thread loop;
  std::atomic<bool> running{false};
  std::atomic<bool> paused{false};
  std::atomic<int64_t> step{0};
  Member member() const { return {node->peer_id(), {"127.0.0.1", node->local_endpoint().port()}}; }
};

// What a peer's trainer thread does between two between_steps() calls;
// empty = averaging only.
using StepFn = std::function<void(TestPeer&, std::mt19937_64&)>;

class Swarm {
 public:
  Swarm(IoThreads& io, int n, const std::function<train::ModelSpec(int)>& model,
        const std::function<Options(int)>& options, train::OptimizerSpec opt = {})
      : io_(io), swarm_key_(crypto::SwarmKey::generate()) {
    for (int i = 0; i < n; ++i) add_peer(model(i), options(i), opt);
    for (auto& p : peers) p->directory->set(others(*p));
  }
  ~Swarm() {
    stop_loops();
    for (auto& p : peers) p->engine.reset();
    for (auto& p : peers) p->node->close();
  }

  TestPeer& add_peer(const train::ModelSpec& m, const Options& o, train::OptimizerSpec opt = {}) {
    auto p = std::make_unique<TestPeer>();
    p->router = std::make_shared<net::Router>();
    p->node = net::testing::make_node(io_.io, swarm_key_, p->router);
    p->directory = std::make_shared<StaticDirectory>(std::vector<Member>{}, o.seed + 1000);
    p->backend = cpu_backend(m, opt);
    p->engine =
        std::make_unique<Engine>(io_.io, *p->node, p->directory, identity_of(*p->backend), o);
    p->engine->attach(*p->router);
    peers.push_back(std::move(p));
    return *peers.back();
  }

  // A Node of this swarm (same swarm key) with a hand-written handler.
  std::unique_ptr<net::Node> bare_node(std::shared_ptr<net::SessionHandler> handler) {
    return net::testing::make_node(io_.io, swarm_key_, std::move(handler));
  }

  std::vector<Member> others(const TestPeer& me) const {
    std::vector<Member> out;
    for (auto& p : peers) {
      if (p.get() != &me && p->node) out.push_back(p->member());
    }
    return out;
  }

  // Starts one trainer thread per peer: step_fn (if any), then between_steps.
  void start_loops(StepFn step_fn = {}) {
    for (size_t i = 0; i < peers.size(); ++i) start_loop(*peers[i], step_fn, 1000 + i);
  }
  void start_loop(TestPeer& p, StepFn step_fn, uint64_t seed) {
    p.running = true;
    p.loop = std::thread([&p, step_fn, seed] {
      std::mt19937_64 rng(seed);
      while (p.running) {
        if (p.paused) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        if (step_fn) step_fn(p, rng);
        p.engine->between_steps(*p.backend, ++p.step);
        if (!step_fn) p.engine->wait_for_work(2ms);
      }
    });
  }
  void stop_loops() {
    for (auto& p : peers) p->running = false;
    for (auto& p : peers) {
      if (p->loop.joinable()) p->loop.join();
    }
  }

  uint64_t total_ok() const {
    uint64_t s = 0;
    for (auto& p : peers) {
      if (p->engine) s += p->engine->counters().exchanges_ok;
    }
    return s;
  }

  // Waits until every peer's loop has reached `step`. Returns false on
  // timeout (a loop stuck or dead).
  bool wait_steps(int64_t step, std::chrono::milliseconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& p : peers) {
      while (p->step < step) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
      }
    }
    return true;
  }

  // Stops initiating and waits (loops still running) until no exchange is in
  // flight or unapplied anywhere. Returns false on timeout.
  bool quiesce(std::chrono::milliseconds timeout = 10s) {
    for (auto& p : peers) {
      if (p->engine) p->engine->set_initiating(false);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      for (auto& p : peers) all = all && (!p->engine || p->engine->idle());
      if (all) return true;
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }

  std::vector<std::vector<float>> parameters() const {
    std::vector<std::vector<float>> out;
    for (auto& p : peers) {
      std::vector<float> v(p->backend->param_count());
      p->backend->read_parameters(v);
      out.push_back(std::move(v));
    }
    return out;
  }

  std::vector<std::unique_ptr<TestPeer>> peers;

 private:
  IoThreads& io_;
  crypto::SwarmKey swarm_key_;
};

// mean_i ||x_i - xbar||^2 (unnormalised), xbar the plain mean.
inline double consensus_distance(const std::vector<std::vector<float>>& xs) {
  const size_t n = xs.size(), d = xs[0].size();
  double total = 0;
  for (size_t e = 0; e < d; ++e) {
    double mean = 0;
    for (size_t i = 0; i < n; ++i) mean += xs[i][e];
    mean /= static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) total += (xs[i][e] - mean) * (xs[i][e] - mean);
  }
  return total / static_cast<double>(n);
}

}  // namespace gossip::averaging::testing
