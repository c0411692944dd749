// Internal state of an averaging Engine, split by concern. Who touches what:
//   - strand-only (Core): the exchange in flight and its ExchangeMachine,
//     state fetches and serves (sessions by peer are the Node's registry:
//     net::Node::session_to);
//   - Mailbox (mailbox.hpp, own mutex): the hand-off between the strand and
//     the trainer thread, the exchange slot and the Schedule;
//   - BlobRegistry (own mutex): blobs we expect, read by the session strands
//     in on_blob_begin (a blob being received is the session's: its
//     net::BlobReceiver holds the slot until the blob ends);
//   - CounterBoard (own mutex): the counters, from any thread;
//   - XidSource (own mutex): exchange and request ids;
//   - BufferPool (own mutex): recycled snapshot buffers.
// Each of these five mutexes is a leaf: no code holds one while taking
// another, so there is no lock order to get wrong.
//
// Files: engine.cpp (the trainer-thread side), session_events.cpp (the
// session callbacks), buffers.cpp (snapshot buffers), blob_registry.cpp,
// options.cpp (Options and ModelIdentity from config and backend),
// exchange.cpp (running an exchange on the strand), snapshot.cpp (the one
// place that decides how parameters are read and deltas applied),
// state_sync.cpp, mailbox.cpp, schedule.cpp and exchange_machine.cpp (the
// decisions).
#pragma once

#include <asio/experimental/channel.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>

#include "gossip/averaging/codec.hpp"
#include "gossip/averaging/engine.hpp"
#include "gossip/averaging/exchange_machine.hpp"
#include "gossip/averaging/protocol.hpp"
#include "mailbox.hpp"

namespace gossip::averaging::detail {

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
  FloatStore own_exact;               // outer mode: the exact own parameters s
};
struct BufferPool {
  std::mutex mu;
  std::vector<std::unique_ptr<Buffers>> free;
  std::unique_ptr<Buffers> take(size_t wire_bytes);
  void give(std::unique_ptr<Buffers> b);
};

// How this exchange reads the parameters and applies its delta; decided once,
// when our snapshot is taken (snapshot.cpp).
enum class ParamPath : uint8_t {
  // The backend's parameters live in host memory (Backend::host_parameters):
  // quantize straight from them, and apply from both wire blobs in one pass
  // that also computes ||delta||^2, on the trainer thread.
  kInPlace,
  // Anything else (CUDA): Backend::snapshot() to take, Backend::apply_delta()
  // with dequantized float arrays to apply; the strand dequantizes and takes
  // the norm before the hand-off so the trainer only applies.
  kStaged,
};

// One event of an exchange, as the network, the trainer thread or a helper
// coroutine reports it to the exchange's coroutine (through its channel).
struct ExchangeEvent {
  enum class Kind : uint8_t {
    kDialed,  // session or status
    kReply,   // weight
    kBusy,
    kRefuse,  // code, text
    kAck,
    kOtherSnapshot,  // status: received and validated, or why not
    kOwnSnapshot,    // the trainer took ours (responder)
    kOwnSent,        // status
    kClosed,         // status
    kStop,
  };
  ExchangeEvent() = default;  // the channel needs it
  ExchangeEvent(Kind k, core::Status st = core::Status::ok()) : kind(k), status(std::move(st)) {}
  Kind kind = Kind::kStop;
  core::Status status;
  double weight = 0;
  RefuseCode code = RefuseCode::kUnspecified;
  std::string text;
  std::shared_ptr<net::Session> session;
};
using EventChannel = asio::experimental::channel<void(asio::error_code, ExchangeEvent)>;

struct Exchange {
  // Draws the exchange's layout (randk: its blocks) from the machine's xid.
  Exchange(Strand strand, std::shared_ptr<BufferPool> pool, const WireCodec& codec, size_t count,
           ExchangeMachine machine);
  ~Exchange();  // returns the buffers to the pool

  std::span<uint8_t> own_wire();
  std::span<uint8_t> other_wire();
  // kStaged only: allocates own/other dequantized arrays (all codecs but
  // fp32, which uses the wire buffers).
  void stage_values();
  std::span<float> own_values();    // dq(q(s_own))
  std::span<float> other_values();  // dq(q(s_other)), after decode
  // Outer mode: the exact own parameters at the snapshot (sized by
  // take_snapshot; empty in params mode).
  std::span<float> own_exact();

  // Strand only: every protocol decision about this exchange.
  ExchangeMachine machine;
  uint64_t xid() const { return machine.xid(); }
  bool initiator() const { return machine.role() == Role::kInitiator; }
  WireLayout layout;  // both blobs' codec and shape
  size_t count;
  WireFormat format() const { return layout.codec.format; }
  std::string peer_id;
  std::shared_ptr<net::Session> session;
  bool outer = false;  // gossip.mode outer: take_snapshot keeps s, apply_outer applies
  // Set with our snapshot (trainer thread, before it is posted to the strand).
  ParamPath path = ParamPath::kStaged;
  double delta_sq = 0;  // ||s_other - s_own||^2
  int64_t step = 0;
  Clock::time_point t0 = Clock::now();
  std::shared_ptr<BufferPool> pool;
  std::unique_ptr<Buffers> buf;
  asio::steady_timer timer;  // at the machine's deadline (arm_timer)
  EventChannel events;       // strand only
};

// Snapshot and apply (snapshot.cpp): the only code that reaches the live
// parameters for averaging. Trainer thread, between steps.
void take_snapshot(train::Backend& backend, Exchange& ex);
// Strand, once the exchange applies: for kStaged, dequantizes the partner's
// snapshot and computes delta_sq, so the trainer thread only applies.
void prepare_apply(Exchange& ex);
// Trainer thread: x += scale * (s_other - s_own). Returns ||applied delta||.
double apply_delta(train::Backend& backend, Exchange& ex);
// Trainer thread, outer mode: the outer step of outer.hpp at this sync point
// (target = s + the params delta, into `target`, then phi and v updated and
// x += phi' - s). Returns ||phi' - s||.
double apply_outer(train::Backend& backend, Exchange& ex, OuterState& outer,
                   const OuterOptions& options, std::vector<float>& target);

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

// Blobs we expect, by session and xid. Once one begins, its slot leaves the
// registry for the session's net::BlobReceiver (on_blob_begin). Any thread;
// its mutex is a leaf.
class BlobRegistry {
 public:
  void expect(const net::Session* s, BlobSlot slot);
  void unexpect(const net::Session* s, uint64_t xid);
  void forget(const net::Session* s);  // the session closed
  // BLOB_BEGIN for (s, xid, type): the slot, removed from the registry;
  // nullopt when nothing of that type and xid was expected.
  std::optional<BlobSlot> begin(const net::Session* s, uint64_t xid, uint8_t type);

 private:
  std::mutex mu_;
  std::map<std::pair<const net::Session*, uint64_t>, BlobSlot> expected_;  // by xid
};

// The counters, from any thread; its mutex is a leaf.
class CounterBoard {
 public:
  void add(const std::function<void(Counters&)>& fn) {
    std::lock_guard l(mu_);
    fn(counters_);
  }
  Counters get() const {
    std::lock_guard l(mu_);
    return counters_;
  }

 private:
  mutable std::mutex mu_;
  Counters counters_;
};

// Exchange and request ids: random, < 2^53, never 0. Any thread.
class XidSource {
 public:
  explicit XidSource(uint64_t seed) : rng_(seed) {}
  uint64_t next() {
    std::lock_guard l(mu_);
    return (rng_() >> 11) | 1;
  }

 private:
  std::mutex mu_;
  std::mt19937_64 rng_;
};

struct Core final : net::SessionHandler, std::enable_shared_from_this<Core> {
  // `seed` (non-zero) drives exchange ids and the schedule's jitter.
  Core(asio::io_context& io, net::Node& node, std::shared_ptr<PeerDirectory> directory,
       ModelIdentity model, Options options, uint64_t seed);

  // SessionHandler (session strands): parse, then post to strand_.
  // (session_events.cpp)
  void on_frame(net::Session& s, uint8_t type, std::span<const uint8_t> body) override;
  core::Result<net::BlobReceiver> on_blob_begin(net::Session& s, const net::BlobBegin& b) override;
  void on_closed(net::Session& s, const core::Status& reason) override;
  // A snapshot or state blob from `s` ended (or was refused: wrong size).
  void blob_ended(const std::shared_ptr<net::Session>& s, const BlobSlot& slot,
                  const core::Status& st);

  // Exchange protocol (exchange.cpp), strand only. Each exchange is one
  // coroutine, initiate() or respond(), that awaits its events (deliver()
  // puts them in its channel), feeds them to its ExchangeMachine and carries
  // out the decisions, until the machine says it ended.
  asio::awaitable<void> initiate(std::shared_ptr<Exchange> ex, Member peer);
  asio::awaitable<void> respond(std::shared_ptr<Exchange> ex);
  asio::awaitable<void> run_to_end(std::shared_ptr<Exchange> ex);
  asio::awaitable<ExchangeEvent> next_event(Exchange& ex);
  void handle_offer(std::shared_ptr<net::Session> s, Offer offer);
  void handle_snapshot_blob(net::Session* s, uint64_t xid, core::Status st);
  void handle_refuse(net::Session* s, Refuse refuse);
  void handle_busy(net::Session* s, uint64_t xid);
  // The exchange in flight with `s` and `xid`, if any.
  std::shared_ptr<Exchange> for_current(net::Session* s, uint64_t xid);
  void deliver(const std::shared_ptr<Exchange>& ex, ExchangeEvent ev);
  // Carries out `d`; returns whether the exchange ended.
  bool act(const std::shared_ptr<Exchange>& ex, const Decision& d);
  void send_own(std::shared_ptr<Exchange> ex);
  void finish(const std::shared_ptr<Exchange>& ex, const Decision& d);
  void arm_timer(const std::shared_ptr<Exchange>& ex);  // reports kTimeout at the deadline

  // State sync (state_sync.cpp), strand only unless noted.
  void handle_state_req(std::shared_ptr<net::Session> s, StateRequest req);
  void send_state(std::shared_ptr<StateServe> serve);
  asio::awaitable<void> run_fetch(std::shared_ptr<StateFetch> f);
  void handle_state_info(net::Session* s, StateInfo info);
  void handle_state_blob(net::Session* s, uint64_t xid, core::Status st);
  void finish_fetch(std::shared_ptr<StateFetch> f, core::Status st);
  std::shared_ptr<StateFetch> fetch_for(net::Session* s, uint64_t xid);

  void post(std::function<void()> fn);
  void log_failure(const std::string& what);
  // Floats of outer state in a STATE blob: 2 * param_count in outer mode.
  uint64_t outer_count() const {
    return opt_.mode == GossipMode::kOuter ? 2 * model_.param_count : 0;
  }

  asio::io_context& io;
  Strand strand_;
  net::Node& node_;
  std::shared_ptr<PeerDirectory> directory_;
  const ModelIdentity model_;
  const Options opt_;
  const std::string fingerprint_;  // hex
  std::shared_ptr<BufferPool> pool_ = std::make_shared<BufferPool>();

  XidSource xids_;
  CounterBoard counters_;
  Mailbox mailbox_;
  BlobRegistry blobs_;

  // Trainer-thread only (outer mode): phi and v, and the target's scratch.
  OuterState outer_;
  std::vector<float> outer_target_;

  // Strand-only.
  std::shared_ptr<Exchange> current_;
  std::map<uint64_t, std::shared_ptr<StateFetch>> fetches_;
  int serving_ = 0;
};

}  // namespace gossip::averaging::detail
