// Engine: the trainer-thread side: starting exchanges, taking snapshots,
// applying deltas, filling state requests, the final exchange and stop().
// The network side lives on the Core's strand (exchange.cpp, state_sync.cpp,
// session_events.cpp).
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <cmath>

#include "core.hpp"

namespace gossip::averaging {

using detail::Core;
using detail::Exchange;

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

namespace {
// Outer mode: phi starts at the parameters, v at zero.
void start_outer(train::Backend& backend, OuterState& outer) {
  outer.phi.resize(backend.param_count());
  backend.read_parameters(outer.phi);
  outer.v.assign(outer.phi.size(), 0.0f);
}
}  // namespace

void Engine::between_steps(train::Backend& backend, int64_t step) {
  Core& c = *core_;
  const bool outer = c.opt_.mode == GossipMode::kOuter;
  if (outer && c.outer_.empty()) start_outer(backend, c.outer_);
  auto work = c.mailbox_.take_work();
  if (work.to_apply) {
    detail::Exchange& ex = *work.to_apply;
    const double norm =
        outer ? detail::apply_outer(backend, ex, c.outer_, c.opt_.outer, c.outer_target_)
              : detail::apply_delta(backend, ex);
    const double secs = std::chrono::duration<double>(Clock::now() - ex.t0).count();
    c.counters_.add([&](Counters& k) {
      k.exchanges_ok++;
      k.ok_by_peer[ex.peer_id]++;
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
    const size_t p = c.model_.param_count, s = c.model_.state_count;
    const size_t outer_count = outer ? 2 * p : 0;
    serve->data.resize(p + s + outer_count);
    std::span<float> all(serve->data);
    backend.read_parameters(all.first(p));
    backend.read_optimizer_state(all.subspan(p, s));
    if (outer) {
      std::copy(c.outer_.phi.begin(), c.outer_.phi.end(), all.begin() + p + s);
      std::copy(c.outer_.v.begin(), c.outer_.v.end(), all.begin() + 2 * p + s);
    }
    serve->info = {serve->xid, step, backend.optimizer_steps(), p, s, c.fingerprint_, outer_count};
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
  ex->outer = outer;
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

const OuterState& Engine::outer_state() const {
  return core_->outer_;
}

core::Status Engine::set_outer_state(OuterState state) {
  GOSSIP_RETURN_IF_ERROR(check_outer_state(state, core_->model_.param_count));
  core_->outer_ = std::move(state);
  return core::Status::ok();
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
