// Engine: the trainer-thread side (starting exchanges, snapshots, applying
// deltas, filling state requests, final exchange) and the plumbing shared
// with the network side (buffer pool, blob registry, session callbacks).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <cmath>

#include "core.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"

namespace gossip::averaging {

using detail::Core;
using detail::Exchange;

Options options_from(const config::GossipConfig& g, int64_t shard_samples) {
  Options o;
  o.interval_steps = g.interval_steps > 0 ? g.interval_steps : 10;
  o.interval = std::chrono::milliseconds(g.interval_ms);
  o.wire = g.wire;
  o.exchange_timeout = std::chrono::milliseconds(g.exchange_timeout_ms);
  o.backoff = std::chrono::milliseconds(g.backoff_ms);
  o.state_timeout = std::max(o.state_timeout, 3 * o.exchange_timeout);
  switch (g.weight) {
    case config::WeightMode::kSamples:
      o.weight = static_cast<double>(std::max<int64_t>(1, shard_samples));
      break;
    case config::WeightMode::kUniform:
      o.weight = 1.0;
      break;
    case config::WeightMode::kFixed:
      o.weight = g.weight_value;
      break;
  }
  return o;
}

ModelIdentity identity_of(const train::Backend& backend) {
  return {backend.model().fingerprint(), backend.param_count(), backend.optimizer_state_count()};
}

namespace detail {

void FloatStore::resize(size_t n) {
  if (n > capacity) {
    data = std::make_unique_for_overwrite<float[]>(n);
    capacity = n;
  }
  size = n;
}

std::unique_ptr<Buffers> BufferPool::take(WireFormat format, size_t count) {
  std::unique_ptr<Buffers> b;
  {
    std::lock_guard l(mu);
    if (!free.empty()) {
      b = std::move(free.back());
      free.pop_back();
    }
  }
  if (!b) b = std::make_unique<Buffers>();
  const size_t words = (wire_bytes(format, count) + 3) / 4;
  b->own_store.resize(words);
  b->other_store.resize(words);
  b->own_f.resize(0);
  b->other_f.resize(0);
  return b;
}

void BufferPool::give(std::unique_ptr<Buffers> b) {
  std::lock_guard l(mu);
  if (free.size() < 2) free.push_back(std::move(b));
}

Exchange::Exchange(Strand strand, std::shared_ptr<BufferPool> p, WireFormat f, size_t n,
                   ExchangeMachine m)
    : machine(m),
      format(f),
      count(n),
      pool(std::move(p)),
      buf(pool->take(f, n)),
      timer(strand),
      events(strand, 16) {}
Exchange::~Exchange() {
  pool->give(std::move(buf));
}

std::span<uint8_t> Exchange::own_wire() {
  return {reinterpret_cast<uint8_t*>(buf->own_store.get()), wire_bytes(format, count)};
}
std::span<uint8_t> Exchange::other_wire() {
  return {reinterpret_cast<uint8_t*>(buf->other_store.get()), wire_bytes(format, count)};
}
void Exchange::stage_values() {
  if (format == WireFormat::kFp32) return;
  buf->own_f.resize(count);
  buf->other_f.resize(count);
}
std::span<float> Exchange::own_values() {
  return format == WireFormat::kFp32 ? std::span<float>(buf->own_store.get(), count)
                                     : std::span<float>(buf->own_f.get(), buf->own_f.size);
}
std::span<float> Exchange::other_values() {
  return format == WireFormat::kFp32 ? std::span<float>(buf->other_store.get(), count)
                                     : std::span<float>(buf->other_f.get(), buf->other_f.size);
}

namespace {
Schedule::Options schedule_options(const Options& o) {
  return {o.interval_steps, o.interval, o.backoff};
}
}  // namespace

Core::Core(asio::io_context& io_ctx, net::Node& node, std::shared_ptr<PeerDirectory> directory,
           ModelIdentity model, Options options, uint64_t seed)
    : io(io_ctx),
      strand_(asio::make_strand(io_ctx)),
      node_(node),
      directory_(std::move(directory)),
      model_(model),
      opt_(options),
      fingerprint_(fingerprint_hex(model.fingerprint)),
      xids_(seed),
      mailbox_(schedule_options(options), seed ^ 0x5deece66dULL) {}

void Core::post(std::function<void()> fn) {
  asio::post(strand_, std::move(fn));
}

void Core::log_failure(const std::string& what) {
  core::log_rate_limited(core::LogLevel::kWarn, "averaging", what.substr(0, 40), what,
                         std::chrono::seconds(2));
}

void BlobRegistry::expect(const net::Session* s, BlobSlot slot) {
  std::lock_guard l(mu_);
  expected_[{s, slot.xid}] = std::move(slot);
}

void BlobRegistry::unexpect(const net::Session* s, uint64_t xid) {
  std::lock_guard l(mu_);
  expected_.erase({s, xid});
}

void BlobRegistry::forget(const net::Session* s) {
  std::lock_guard l(mu_);
  for (auto it = expected_.begin(); it != expected_.end();) {
    it = it->first.first == s ? expected_.erase(it) : std::next(it);
  }
}

BlobRegistry::Begin BlobRegistry::begin(const net::Session* s, uint64_t xid, uint8_t type,
                                        uint32_t stream, uint64_t total_bytes) {
  std::lock_guard l(mu_);
  auto it = expected_.find({s, xid});
  if (it == expected_.end() || it->second.type != type) return {};
  Begin b;
  if (total_bytes == it->second.dest.size()) {
    b.dest = it->second.dest;
    receiving_[{s, stream}] = std::move(it->second);
  } else {
    b.wrong_size = std::move(it->second);
  }
  expected_.erase(it);
  return b;
}

std::optional<BlobSlot> BlobRegistry::end(const net::Session* s, uint32_t stream) {
  std::lock_guard l(mu_);
  auto it = receiving_.find({s, stream});
  if (it == receiving_.end()) return std::nullopt;
  BlobSlot slot = std::move(it->second);
  receiving_.erase(it);
  return slot;
}

// --- session callbacks (session strands) -----------------------------------

void Core::on_open(net::Session& s) {
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp] { self->sessions_.emplace(sp->peer_id(), sp); });
}

void Core::on_closed(net::Session& s, const core::Status& reason) {
  blobs_.forget(&s);
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp, reason] {
    for (auto it = self->sessions_.begin(); it != self->sessions_.end();) {
      auto locked = it->second.lock();
      it = (!locked || locked == sp) ? self->sessions_.erase(it) : std::next(it);
    }
    if (auto ex = self->current_; ex && ex->session == sp)
      self->act(ex, ex->machine.on_closed(reason));
    std::vector<std::shared_ptr<StateFetch>> hit;
    for (auto& [xid, f] : self->fetches_) {
      if (f->session == sp) hit.push_back(f);
    }
    for (auto& f : hit) self->finish_fetch(f, reason.with_context("donor connection closed"));
  });
}

void Core::on_frame(net::Session& s, uint8_t type, std::span<const uint8_t> body) {
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  auto bad = [&](const core::Status& st) {
    core::log_rate_limited(
        core::LogLevel::kWarn, "averaging", "bad-frame",
        "ignored malformed frame from " + core::short_peer_id(s.peer_id()) + ": " + st.to_string());
  };
  switch (type) {
    case kOffer: {
      auto m = parse_offer(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] { self->handle_offer(sp, m); });
      return;
    }
    case kReply: {
      auto m = parse_reply(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] {
        if (auto ex = self->for_current(sp.get(), m.xid))
          self->act(ex, ex->machine.on_reply(m.weight));
      });
      return;
    }
    case kBusy:
    case kAck: {
      auto m = parse_xid(body);
      if (!m) return bad(m.status());
      if (type == kBusy) {
        post([self, sp, xid = *m] { self->handle_busy(sp.get(), xid); });
      } else {
        post([self, sp, xid = *m] {
          if (auto ex = self->for_current(sp.get(), xid)) {
            self->deliver(ex, {ExchangeEvent::Kind::kAck});
          }
        });
      }
      return;
    }
    case kRefuse: {
      auto m = parse_refuse(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] { self->handle_refuse(sp.get(), m); });
      return;
    }
    case kStateReq: {
      auto m = parse_state_request(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] { self->handle_state_req(sp, m); });
      return;
    }
    case kState: {
      auto m = parse_state_info(body);
      if (!m) return bad(m.status());
      post([self, sp, m = *m] { self->handle_state_info(sp.get(), m); });
      return;
    }
    default:
      bad(core::protocol_error("unknown averaging frame type " + std::to_string(type)));
  }
}

core::Result<std::span<uint8_t>> Core::on_blob_begin(net::Session& s, const net::BlobBegin& b) {
  auto tag = parse_blob_header(b.header);
  if (!tag) return tag.status();
  auto begun = blobs_.begin(&s, tag->xid, tag->type, b.stream_id, b.total_bytes);
  if (begun.dest) return *begun.dest;
  if (!begun.wrong_size) {
    return core::protocol_error("unexpected averaging blob (type " + std::to_string(tag->type) +
                                ", xid " + std::to_string(tag->xid) + ")");
  }
  const BlobSlot slot = std::move(*begun.wrong_size);
  // Wrong size: refuse the blob and fail what waited for it at once.
  auto st = core::corrupt("blob of " + std::to_string(b.total_bytes) + " bytes from " +
                          core::short_peer_id(s.peer_id()) + ", expected exactly " +
                          std::to_string(slot.dest.size()));
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp, slot, st] {
    if (slot.type == kSnapshotBlob)
      self->handle_snapshot_blob(sp.get(), slot.xid, st);
    else
      self->handle_state_blob(sp.get(), slot.xid, st);
  });
  return st;
}

void Core::on_blob_end(net::Session& s, uint32_t stream_id, const core::Status& st) {
  auto found = blobs_.end(&s, stream_id);
  if (!found) return;
  BlobSlot slot = std::move(*found);
  if (st) counters_.add([&](Counters& c) { c.bytes_in += slot.dest.size(); });
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp, slot = std::move(slot), st] {
    if (slot.type == kSnapshotBlob)
      self->handle_snapshot_blob(sp.get(), slot.xid, st);
    else
      self->handle_state_blob(sp.get(), slot.xid, st);
  });
}

}  // namespace detail

// --- Engine (trainer thread) -------------------------------------------------

Engine::Engine(asio::io_context& io, net::Node& node, std::shared_ptr<PeerDirectory> directory,
               ModelIdentity model, Options options)
    : core_(std::make_shared<Core>(io, node, std::move(directory), model, options,
                                   options.seed ? options.seed : std::random_device{}())) {}

Engine::~Engine() {
  stop();
}

void Engine::attach(net::Router& router) {
  router.add(kFirstType, kLastType, core_);
}
std::shared_ptr<net::SessionHandler> Engine::handler() const {
  return core_;
}

void Engine::between_steps(train::Backend& backend, int64_t step) {
  Core& c = *core_;
  auto work = c.mailbox_.take_work();
  if (work.to_apply) {
    detail::Exchange& ex = *work.to_apply;
    const double norm = detail::apply_delta(backend, ex);
    const double secs = std::chrono::duration<double>(Clock::now() - ex.t0).count();
    c.counters_.add([&](Counters& k) {
      k.exchanges_ok++;
      k.last_delta_norm = norm;
      k.last_exchange_s = secs;
      k.total_exchange_s += secs;
      k.exchange_s.observe(secs);
    });
    c.mailbox_.applied();
  }
  auto self = core_;
  if (auto ex = work.to_snapshot) {
    detail::take_snapshot(backend, *ex);
    ex->step = step;
    c.post([self, ex] {
      if (self->current_ == ex) self->deliver(ex, {detail::ExchangeEvent::Kind::kOwnSnapshot});
    });
  }
  for (auto& serve : work.states) {
    serve->data.resize(c.model_.param_count + c.model_.state_count);
    std::span<float> all(serve->data);
    backend.read_parameters(all.first(c.model_.param_count));
    backend.read_optimizer_state(all.subspan(c.model_.param_count));
    serve->info = {
        serve->xid,           step,          backend.optimizer_steps(), c.model_.param_count,
        c.model_.state_count, c.fingerprint_};
    c.post([self, serve] { self->send_state(serve); });
  }

  // Start an exchange when one is due and none is in flight.
  const auto now = Clock::now();
  if (!c.mailbox_.claim_for_initiate(step, now)) return;
  auto peer = c.directory_->random_live_peer();
  if (!peer || peer->peer_id == c.node_.peer_id()) {
    c.counters_.add([](Counters& k) { k.no_peer++; });
    c.mailbox_.no_peer(now);
    return;
  }
  const ExchangeMachine machine(Role::kInitiator, c.xids_.next(), c.opt_.weight, 1.0, now,
                                c.opt_.exchange_timeout);
  auto ex =
      std::make_shared<Exchange>(c.strand_, c.pool_, c.opt_.wire, c.model_.param_count, machine);
  ex->peer_id = peer->peer_id;
  ex->step = step;
  ex->t0 = now;
  detail::take_snapshot(backend, *ex);
  asio::co_spawn(c.strand_, c.initiate(ex, *peer), asio::detached);
}

bool Engine::wait_for_work(std::chrono::milliseconds max_wait) {
  return core_->mailbox_.wait_for_work(max_wait);
}

core::Status Engine::final_exchange(train::Backend& backend, int64_t step,
                                    std::chrono::milliseconds timeout) {
  Core& c = *core_;
  const auto deadline = Clock::now() + timeout;
  const uint64_t ok0 = counters().exchanges_ok;
  core::Status result = core::timeout_error("no partner completed a final exchange within " +
                                            std::to_string(timeout.count()) + " ms");
  while (Clock::now() < deadline) {
    c.mailbox_.force_initiate();
    between_steps(backend, step);
    if (counters().exchanges_ok > ok0) {
      result = core::Status::ok();
      break;
    }
    if (!c.directory_->random_live_peer()) {
      result = core::unavailable("final exchange: no live member to average with");
      break;
    }
    wait_for_work(std::chrono::milliseconds(2));
  }
  c.mailbox_.close_after_final();
  return result;
}

void Engine::set_initiating(bool on) {
  core_->mailbox_.set_initiating(on);
}
void Engine::request_exchange() {
  core_->mailbox_.request_exchange();
}
bool Engine::idle() const {
  return core_->mailbox_.idle();
}
Counters Engine::counters() const {
  return core_->counters_.get();
}

void Engine::stop() {
  Core& c = *core_;
  auto unserved = c.mailbox_.stop();
  if (!unserved) return;
  auto self = core_;
  c.post([self, unserved = std::move(*unserved)] {
    // Joiners still waiting for our state move on to another member now
    // rather than after their state timeout.
    for (const auto& serve : unserved) {
      serve->session->try_send_frame(kBusy, encode_xid(serve->xid));
      --self->serving_;
    }
    if (auto ex = self->current_) self->deliver(ex, {detail::ExchangeEvent::Kind::kStop});
    auto fetches = self->fetches_;
    for (auto& [xid, f] : fetches) {
      self->finish_fetch(f, core::Status(core::Code::kClosed, "averaging engine stopped"));
    }
  });
}

}  // namespace gossip::averaging
