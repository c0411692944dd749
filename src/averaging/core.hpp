// Internal state of an averaging Engine, shared by the trainer-side code
// (engine.cpp), the exchange protocol (exchange.cpp) and state sync
// (state_sync.cpp).
//
// Three regions, each with one guard:
//   - strand-only: the exchange in flight, sessions by peer, state fetches;
//   - mail_mu_: the hand-off mailbox between the strand and the trainer
//     thread (the exchange slot, snapshot wanted, delta ready, state
//     requests) and the schedule (backoff);
//   - blob_mu_: blobs we expect / are receiving, read synchronously by the
//     session strands in on_blob_begin.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "gossip/averaging/engine.hpp"
#include "gossip/averaging/protocol.hpp"

namespace gossip::averaging::detail {

using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;

// Uninitialised float storage that only grows: zero-filling (or faulting in)
// hundreds of MB per exchange would cost as much as a pass over the data.
struct FloatStore {
  std::unique_ptr<float[]> data;
  size_t size = 0, capacity = 0;
  void resize(size_t n);
  float* get() { return data.get(); }
};

// Snapshot buffers of one exchange, recycled through a pool (a 25M-parameter
// model needs hundreds of MB; allocating per exchange would dominate).
struct Buffers {
  FloatStore own_store, other_store;  // wire bytes (fp32: the values)
  FloatStore own_f, other_f;          // dequantized (bf16/fp16, staged path only)
};
struct BufferPool {
  std::mutex mu;
  std::vector<std::unique_ptr<Buffers>> free;
  std::unique_ptr<Buffers> take(WireFormat format, size_t count);
  void give(std::unique_ptr<Buffers> b);
};

struct Exchange {
  Exchange(Strand strand, std::shared_ptr<BufferPool> pool, WireFormat format, size_t count);
  ~Exchange();  // returns the buffers to the pool

  std::span<uint8_t> own_wire();
  std::span<uint8_t> other_wire();
  // Staged path only (the backend's parameters are not in host memory, so
  // the delta goes through Backend::apply_delta with float arrays):
  // allocates own/other dequantized arrays (bf16/fp16; fp32 uses the wire).
  void stage_values();
  std::span<float> own_values();    // dq(q(s_own))
  std::span<float> other_values();  // dq(q(s_other)), after decode

  uint64_t xid = 0;
  bool initiator = false;
  WireFormat format;
  size_t count;
  std::string peer_id;
  std::shared_ptr<net::Session> session;
  double w_own = 1, w_other = 1;
  // Direct path (set with the own snapshot, on the trainer thread, before it
  // is posted): the backend exposes host parameters, so the trainer applies
  // the delta straight from both wire blobs (apply_wire_delta) and computes
  // delta_sq in that pass. Staged path: own_values()/other_values() hold the
  // dequantized snapshots and delta_sq is computed on the strand.
  bool direct = false;
  double delta_sq = 0;  // ||s_other - s_own||^2
  int64_t step = 0;
  Clock::time_point t0 = Clock::now();
  std::shared_ptr<BufferPool> pool;
  std::unique_ptr<Buffers> buf;
  asio::steady_timer timer;
  // Strand-only progress flags.
  bool replied = false, other_ok = false, peer_acked = false, own_sent = false, finished = false;
};

// A state snapshot being served to a joiner.
struct StateServe {
  uint64_t xid = 0;
  std::shared_ptr<net::Session> session;
  StateInfo info;
  std::vector<float> data;  // params then optimizer state
};

// A state download in progress (joiner side).
struct StateFetch {
  explicit StateFetch(Strand strand) : timer(strand) {}
  uint64_t xid = 0;
  Member donor;
  std::shared_ptr<net::Session> session;
  std::optional<StateInfo> info;
  std::vector<float> data;
  asio::steady_timer timer;
  bool done = false;
  std::promise<core::Status> result;
};

// A blob we accept: where it goes and who keeps that memory alive.
struct BlobSlot {
  uint8_t type = 0;
  uint64_t xid = 0;
  std::span<uint8_t> dest;
  std::shared_ptr<void> keep;
};

struct Core final : net::SessionHandler, std::enable_shared_from_this<Core> {
  Core(asio::io_context& io, net::Node& node, std::shared_ptr<PeerDirectory> directory,
       ModelIdentity model, Options options);

  // SessionHandler (session strands): parse, then post to strand_.
  void on_open(net::Session& s) override;
  void on_frame(net::Session& s, uint8_t type, std::span<const uint8_t> body) override;
  core::Result<std::span<uint8_t>> on_blob_begin(net::Session& s, const net::BlobBegin& b) override;
  void on_blob_end(net::Session& s, uint32_t stream_id, const core::Status& st) override;
  void on_closed(net::Session& s, const core::Status& reason) override;

  // Exchange protocol (exchange.cpp), strand only.
  asio::awaitable<void> run_initiator(std::shared_ptr<Exchange> ex, Member peer);
  void handle_offer(std::shared_ptr<net::Session> s, Offer offer);
  void handle_reply(net::Session* s, Reply reply);
  void handle_busy(net::Session* s, uint64_t xid);
  void handle_refuse(net::Session* s, Refuse refuse);
  void handle_ack(net::Session* s, uint64_t xid);
  void handle_snapshot_blob(net::Session* s, uint64_t xid, core::Status st);
  void own_snapshot_ready(std::shared_ptr<Exchange> ex);
  void send_own(std::shared_ptr<Exchange> ex);
  void maybe_complete(std::shared_ptr<Exchange> ex);
  // kStopped: abandoned because this engine is stopping (the peer leaves);
  // not a failure of the partner or the link, so neither counted nor logged
  // as one.
  enum class Outcome { kBusy, kFailed, kRefused, kRemote, kStopped };
  void fail(std::shared_ptr<Exchange> ex, const core::Status& why, Outcome outcome);  // by value: may reset current_
  std::shared_ptr<net::Session> find_session(const std::string& peer_id);
  void arm_timer(const std::shared_ptr<Exchange>& ex);

  // State sync (state_sync.cpp), strand only unless noted.
  void handle_state_req(std::shared_ptr<net::Session> s, StateRequest req);
  void send_state(std::shared_ptr<StateServe> serve);
  asio::awaitable<void> run_fetch(std::shared_ptr<StateFetch> f);
  void handle_state_info(net::Session* s, StateInfo info);
  void handle_state_blob(net::Session* s, uint64_t xid, core::Status st);
  void finish_fetch(std::shared_ptr<StateFetch> f, core::Status st);
  std::shared_ptr<StateFetch> fetch_for(net::Session* s, uint64_t xid);

  // Blob registry (any thread).
  void expect_blob(net::Session* s, BlobSlot slot);
  void unexpect_blob(net::Session* s, uint64_t xid);

  void post(std::function<void()> fn);
  uint64_t new_xid();  // strand or trainer (rng_mu_)
  void log_failure(const std::string& what);
  void add_counters(const std::function<void(Counters&)>& fn);

  asio::io_context& io;
  Strand strand_;
  net::Node& node_;
  std::shared_ptr<PeerDirectory> directory_;
  const ModelIdentity model_;
  const Options opt_;
  const std::string fingerprint_;  // hex
  std::shared_ptr<BufferPool> pool_ = std::make_shared<BufferPool>();

  std::mutex rng_mu_;
  std::mt19937_64 rng_;

  mutable std::mutex counters_mu_;
  Counters counters_;

  // Mailbox (mail_mu_).
  std::mutex mail_mu_;
  std::condition_variable mail_cv_;
  bool slot_busy_ = false;      // an exchange is claimed, in flight or unapplied
  bool initiating_ = true;
  bool closed_for_offers_ = false;
  bool stopping_ = false;
  bool force_initiate_ = false;  // final_exchange
  bool retry_pending_ = false;   // last attempt failed: retry after backoff
  int fail_streak_ = 0;
  bool schedule_started_ = false;
  int64_t last_init_step_ = 0;
  Clock::time_point last_init_time_{};
  Clock::duration next_interval_{};
  Clock::time_point next_attempt_{};
  std::shared_ptr<Exchange> want_snapshot_;
  std::shared_ptr<Exchange> ready_to_apply_;
  std::deque<std::shared_ptr<StateServe>> state_requests_;

  // Blob registry (blob_mu_).
  std::mutex blob_mu_;
  std::map<std::pair<const net::Session*, uint64_t>, BlobSlot> expected_;        // by xid
  std::map<std::pair<const net::Session*, uint32_t>, BlobSlot> receiving_;       // by stream

  // Strand-only.
  std::shared_ptr<Exchange> current_;
  std::multimap<std::string, std::weak_ptr<net::Session>> sessions_;
  std::map<uint64_t, std::shared_ptr<StateFetch>> fetches_;
  int serving_ = 0;
};

}  // namespace gossip::averaging::detail
