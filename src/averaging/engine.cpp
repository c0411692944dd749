// Engine: the trainer-thread side (scheduling, snapshots, applying deltas,
// filling state requests, final exchange) and the plumbing shared with the
// network side (buffer pool, mailbox, blob registry, session callbacks).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <cmath>

#include "core.hpp"
#include "gossip/core/log.hpp"

namespace gossip::averaging {

using detail::Clock;
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
    case config::WeightMode::kSamples: o.weight = static_cast<double>(std::max<int64_t>(1, shard_samples)); break;
    case config::WeightMode::kUniform: o.weight = 1.0; break;
    case config::WeightMode::kFixed: o.weight = g.weight_value; break;
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

Exchange::Exchange(Strand strand, std::shared_ptr<BufferPool> p, WireFormat f, size_t n)
    : format(f), count(n), pool(std::move(p)), buf(pool->take(f, n)), timer(strand) {}
Exchange::~Exchange() { pool->give(std::move(buf)); }

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

Core::Core(asio::io_context& io_ctx, net::Node& node, std::shared_ptr<PeerDirectory> directory,
           ModelIdentity model, Options options)
    : io(io_ctx), strand_(asio::make_strand(io_ctx)), node_(node),
      directory_(std::move(directory)), model_(model), opt_(options),
      fingerprint_(fingerprint_hex(model.fingerprint)),
      rng_(options.seed ? options.seed : std::random_device{}()) {}

void Core::post(std::function<void()> fn) { asio::post(strand_, std::move(fn)); }

uint64_t Core::new_xid() {
  std::lock_guard l(rng_mu_);
  return (rng_() >> 11) | 1;  // < 2^53, never 0
}

void Core::add_counters(const std::function<void(Counters&)>& fn) {
  std::lock_guard l(counters_mu_);
  fn(counters_);
}

void Core::log_failure(const std::string& what) {
  core::log_rate_limited(core::LogLevel::kWarn, "averaging", what.substr(0, 40), what,
                         std::chrono::seconds(2));
}

void Core::expect_blob(net::Session* s, BlobSlot slot) {
  std::lock_guard l(blob_mu_);
  expected_[{s, slot.xid}] = std::move(slot);
}

void Core::unexpect_blob(net::Session* s, uint64_t xid) {
  std::lock_guard l(blob_mu_);
  expected_.erase({s, xid});
}

// --- session callbacks (session strands) -----------------------------------

void Core::on_open(net::Session& s) {
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp] { self->sessions_.emplace(sp->peer_id(), sp); });
}

void Core::on_closed(net::Session& s, const core::Status& reason) {
  {
    std::lock_guard l(blob_mu_);
    for (auto it = expected_.begin(); it != expected_.end();) {
      it = it->first.first == &s ? expected_.erase(it) : std::next(it);
    }
  }
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp, reason] {
    for (auto it = self->sessions_.begin(); it != self->sessions_.end();) {
      auto locked = it->second.lock();
      it = (!locked || locked == sp) ? self->sessions_.erase(it) : std::next(it);
    }
    if (self->current_ && self->current_->session == sp) {
      self->fail(self->current_, reason.with_context("connection to partner closed"), Outcome::kFailed);
    }
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
    core::log_rate_limited(core::LogLevel::kWarn, "averaging", "bad-frame",
                           "ignored malformed frame from " + s.peer_id().substr(0, 12) + ": " +
                               st.to_string());
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
      post([self, sp, m = *m] { self->handle_reply(sp.get(), m); });
      return;
    }
    case kBusy:
    case kAck: {
      auto m = parse_xid(body);
      if (!m) return bad(m.status());
      if (type == kBusy) {
        post([self, sp, xid = *m] { self->handle_busy(sp.get(), xid); });
      } else {
        post([self, sp, xid = *m] { self->handle_ack(sp.get(), xid); });
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
  BlobSlot slot;
  {
    std::lock_guard l(blob_mu_);
    auto it = expected_.find({&s, tag->xid});
    if (it == expected_.end() || it->second.type != tag->type) {
      return core::protocol_error("unexpected averaging blob (type " + std::to_string(tag->type) +
                                  ", xid " + std::to_string(tag->xid) + ")");
    }
    if (b.total_bytes == it->second.dest.size()) {
      auto dest = it->second.dest;
      receiving_[{&s, b.stream_id}] = std::move(it->second);
      expected_.erase(it);
      return dest;
    }
    slot = std::move(it->second);
    expected_.erase(it);
  }
  // Wrong size: refuse the blob and fail what waited for it at once.
  auto st = core::corrupt("blob of " + std::to_string(b.total_bytes) + " bytes from " +
                          s.peer_id().substr(0, 12) + ", expected exactly " +
                          std::to_string(slot.dest.size()));
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp, slot, st] {
    if (slot.type == kSnapshotBlob) self->handle_snapshot_blob(sp.get(), slot.xid, st);
    else self->handle_state_blob(sp.get(), slot.xid, st);
  });
  return st;
}

void Core::on_blob_end(net::Session& s, uint32_t stream_id, const core::Status& st) {
  BlobSlot slot;
  {
    std::lock_guard l(blob_mu_);
    auto it = receiving_.find({&s, stream_id});
    if (it == receiving_.end()) return;
    slot = std::move(it->second);
    receiving_.erase(it);
  }
  if (st) add_counters([&](Counters& c) { c.bytes_in += slot.dest.size(); });
  auto self = shared_from_this();
  auto sp = s.shared_from_this();
  post([self, sp, slot = std::move(slot), st] {
    if (slot.type == kSnapshotBlob) self->handle_snapshot_blob(sp.get(), slot.xid, st);
    else self->handle_state_blob(sp.get(), slot.xid, st);
  });
}

}  // namespace detail

// --- Engine (trainer thread) -------------------------------------------------

namespace {

Clock::duration jittered(std::mt19937_64& rng, Clock::duration base, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  return std::chrono::duration_cast<Clock::duration>(base * u(rng));
}

// Takes this peer's wire snapshot for `ex`. Direct path: quantized straight
// from the live host parameters (one pass, no staging copy); staged path:
// from Backend::snapshot(), keeping the dequantized values for apply_delta.
void take_snapshot(train::Backend& backend, Exchange& ex) {
  if (const auto host = backend.host_parameters(); !host.empty()) {
    ex.direct = true;
    encode(ex.format, host, ex.own_wire());
    return;
  }
  ex.direct = false;
  ex.stage_values();
  encode(ex.format, backend.snapshot(), ex.own_wire(),
         ex.format == WireFormat::kFp32 ? std::span<float>() : ex.own_values());
}

void apply(Core& c, train::Backend& backend, Exchange& ex) {
  const float scale = static_cast<float>(ex.w_other / (ex.w_own + ex.w_other));
  if (ex.direct) {
    // One pass over both wire blobs and the parameters: dequantize, delta
    // and its norm together (the host view is stable between steps).
    ex.delta_sq = apply_wire_delta(ex.format, scale, ex.other_wire(), ex.own_wire(),
                                   backend.host_parameters());
  } else {
    backend.apply_delta(scale, ex.other_values(), ex.own_values());
  }
  const double secs = std::chrono::duration<double>(Clock::now() - ex.t0).count();
  c.add_counters([&](Counters& k) {
    k.exchanges_ok++;
    k.last_delta_norm = scale * std::sqrt(ex.delta_sq);
    k.last_exchange_s = secs;
    k.total_exchange_s += secs;
  });
}

}  // namespace

Engine::Engine(asio::io_context& io, net::Node& node, std::shared_ptr<PeerDirectory> directory,
               ModelIdentity model, Options options)
    : core_(std::make_shared<Core>(io, node, std::move(directory), model, options)) {}

Engine::~Engine() { stop(); }

void Engine::attach(net::Router& router) { router.add(kFirstType, kLastType, core_); }
std::shared_ptr<net::SessionHandler> Engine::handler() const { return core_; }

void Engine::between_steps(train::Backend& backend, int64_t step) {
  Core& c = *core_;
  std::shared_ptr<Exchange> to_apply, to_snapshot;
  std::deque<std::shared_ptr<detail::StateServe>> states;
  {
    std::lock_guard l(c.mail_mu_);
    to_apply = std::move(c.ready_to_apply_);
    to_snapshot = std::move(c.want_snapshot_);
    states.swap(c.state_requests_);
  }
  if (to_apply) {
    apply(c, backend, *to_apply);
    std::lock_guard l(c.mail_mu_);
    c.slot_busy_ = false;
    c.fail_streak_ = 0;
    c.retry_pending_ = false;
  }
  auto self = core_;
  if (to_snapshot) {
    take_snapshot(backend, *to_snapshot);
    to_snapshot->step = step;
    c.post([self, to_snapshot] { self->own_snapshot_ready(to_snapshot); });
  }
  for (auto& serve : states) {
    serve->data.resize(c.model_.param_count + c.model_.state_count);
    std::span<float> all(serve->data);
    backend.read_parameters(all.first(c.model_.param_count));
    backend.read_optimizer_state(all.subspan(c.model_.param_count));
    serve->info = {serve->xid, step, backend.optimizer_steps(), c.model_.param_count,
                   c.model_.state_count, c.fingerprint_};
    c.post([self, serve] { self->send_state(serve); });
  }

  // Start an exchange when one is due and none is in flight.
  const auto now = Clock::now();
  {
    std::lock_guard l(c.mail_mu_);
    std::lock_guard r(c.rng_mu_);
    if (!c.schedule_started_) {
      c.schedule_started_ = true;
      c.last_init_step_ = step;
      c.last_init_time_ = now;
      c.next_interval_ = jittered(c.rng_, c.opt_.interval, 0.0, 1.0);  // random phase
    }
    if (c.slot_busy_ || c.stopping_ || (!c.initiating_ && !c.force_initiate_)) return;
    const bool due = c.force_initiate_ || c.retry_pending_ ||
                     (c.opt_.interval.count() > 0 ? now - c.last_init_time_ >= c.next_interval_
                                                  : step - c.last_init_step_ >= c.opt_.interval_steps);
    if (!due || now < c.next_attempt_) return;
    c.slot_busy_ = true;
    c.retry_pending_ = false;
    c.force_initiate_ = false;
    c.last_init_step_ = step;
    c.last_init_time_ = now;
    c.next_interval_ = jittered(c.rng_, c.opt_.interval, 0.75, 1.25);
  }
  auto peer = c.directory_->random_live_peer();
  if (!peer || peer->peer_id == c.node_.peer_id()) {
    c.add_counters([](Counters& k) { k.no_peer++; });
    std::lock_guard l(c.mail_mu_);
    std::lock_guard r(c.rng_mu_);
    c.slot_busy_ = false;
    c.retry_pending_ = true;
    c.next_attempt_ = now + jittered(c.rng_, c.opt_.backoff, 0.5, 1.5);
    return;
  }
  auto ex = std::make_shared<Exchange>(c.strand_, c.pool_, c.opt_.wire, c.model_.param_count);
  ex->xid = c.new_xid();
  ex->initiator = true;
  ex->peer_id = peer->peer_id;
  ex->w_own = c.opt_.weight;
  ex->step = step;
  ex->t0 = now;
  take_snapshot(backend, *ex);
  asio::co_spawn(c.strand_, c.run_initiator(ex, *peer), asio::detached);
}

bool Engine::wait_for_work(std::chrono::milliseconds max_wait) {
  Core& c = *core_;
  std::unique_lock l(c.mail_mu_);
  return c.mail_cv_.wait_for(l, max_wait, [&] {
    return c.ready_to_apply_ || c.want_snapshot_ || !c.state_requests_.empty() || c.stopping_ ||
           (c.force_initiate_ && !c.slot_busy_);
  });
}

core::Status Engine::final_exchange(train::Backend& backend, int64_t step,
                                    std::chrono::milliseconds timeout) {
  Core& c = *core_;
  const auto deadline = Clock::now() + timeout;
  const uint64_t ok0 = counters().exchanges_ok;
  core::Status result = core::timeout_error("no partner completed a final exchange within " +
                                            std::to_string(timeout.count()) + " ms");
  while (Clock::now() < deadline) {
    {
      std::lock_guard l(c.mail_mu_);
      c.force_initiate_ = true;
    }
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
  std::lock_guard l(c.mail_mu_);
  c.force_initiate_ = false;
  c.initiating_ = false;
  c.closed_for_offers_ = true;
  return result;
}

void Engine::set_initiating(bool on) {
  std::lock_guard l(core_->mail_mu_);
  core_->initiating_ = on;
}

void Engine::request_exchange() {
  {
    std::lock_guard l(core_->mail_mu_);
    core_->force_initiate_ = true;
  }
  core_->mail_cv_.notify_all();
}

bool Engine::idle() const {
  std::lock_guard l(core_->mail_mu_);
  return !core_->slot_busy_;
}

Counters Engine::counters() const {
  std::lock_guard l(core_->counters_mu_);
  return core_->counters_;
}

void Engine::stop() {
  Core& c = *core_;
  std::deque<std::shared_ptr<detail::StateServe>> unserved;
  {
    std::lock_guard l(c.mail_mu_);
    if (c.stopping_) return;
    c.stopping_ = true;
    c.initiating_ = false;
    c.closed_for_offers_ = true;
    unserved.swap(c.state_requests_);
  }
  c.mail_cv_.notify_all();
  auto self = core_;
  c.post([self, unserved = std::move(unserved)] {
    // Joiners still waiting for our state move on to another member now
    // rather than after their state timeout.
    for (const auto& serve : unserved) {
      serve->session->try_send_frame(kBusy, encode_xid(serve->xid));
      --self->serving_;
    }
    if (self->current_) {
      self->fail(self->current_, core::Status(core::Code::kClosed, "averaging engine stopped"),
                 Core::Outcome::kStopped);
    }
    auto fetches = self->fetches_;
    for (auto& [xid, f] : fetches) {
      self->finish_fetch(f, core::Status(core::Code::kClosed, "averaging engine stopped"));
    }
  });
}

}  // namespace gossip::averaging
