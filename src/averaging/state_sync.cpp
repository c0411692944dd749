// State sync: serving STATE_REQ (one snapshot of parameters + optimizer state
// taken between two training steps, then streamed without holding the
// trainer), and fetch_state on a joiner, donor after donor.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>

#include "core.hpp"
#include "gossip/core/finite.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"

namespace gossip::averaging {

namespace detail {

namespace {
constexpr int kMaxServing = 2;  // concurrent state downloads served
std::span<uint8_t> bytes_of(std::vector<float>& v) {
  return {reinterpret_cast<uint8_t*>(v.data()), v.size() * sizeof(float)};
}
}  // namespace

void Core::handle_state_req(std::shared_ptr<net::Session> s, StateRequest req) {
  if (auto refusal = check_state_request(req, fingerprint_, model_.param_count, model_.state_count,
                                         opt_.mode, s->peer_id(), node_.peer_id())) {
    log_failure("refused STATE_REQ: " + refusal->reason);
    s->try_send_frame(kRefuse, encode(Refuse{req.xid, refusal->reason, refusal->code}));
    return;
  }
  if (mailbox_.stopping() || serving_ >= kMaxServing) {
    s->try_send_frame(kBusy, encode_xid(req.xid));
    return;
  }
  ++serving_;
  auto serve = std::make_shared<StateServe>();
  serve->xid = req.xid;
  serve->session = std::move(s);
  mailbox_.push_state_request(std::move(serve));
}

void Core::send_state(std::shared_ptr<StateServe> serve) {
  auto self = shared_from_this();
  asio::co_spawn(
      strand_,
      [self, serve]() -> asio::awaitable<void> {
        auto st = co_await serve->session->send_frame(kState, encode(serve->info));
        if (st) {
          st = co_await serve->session->send_blob(blob_header(kStateBlob, serve->xid),
                                                  bytes_of(serve->data));
        }
        --self->serving_;
        if (st) {
          self->counters_.add([&](Counters& c) {
            c.states_served++;
            c.bytes_out += serve->data.size() * sizeof(float);
          });
          core::log_info("averaging", "served training state (step " +
                                          std::to_string(serve->info.step) + ") to " +
                                          core::short_peer_id(serve->session->peer_id()));
        } else {
          self->log_failure("serving state to " + core::short_peer_id(serve->session->peer_id()) +
                            " failed: " + st.to_string());
        }
      },
      asio::detached);
}

std::shared_ptr<StateFetch> Core::fetch_for(net::Session* s, uint64_t xid) {
  auto it = fetches_.find(xid);
  if (it == fetches_.end() || it->second->session.get() != s || it->second->done) return nullptr;
  return it->second;
}

asio::awaitable<void> Core::run_fetch(std::shared_ptr<StateFetch> f) {
  fetches_[f->xid] = f;
  f->timer.expires_after(opt_.state_timeout);
  auto self = shared_from_this();
  f->timer.async_wait([self, f](const asio::error_code& ec) {
    if (ec) return;
    self->finish_fetch(
        f, core::timeout_error("donor " + core::short_peer_id(f->donor.peer_id) +
                               " did not deliver the state within " +
                               std::to_string(self->opt_.state_timeout.count()) + " ms"));
  });
  auto r = co_await node_.reach(f->donor.endpoint, f->donor.peer_id);
  if (f->done) co_return;
  if (!r) {
    finish_fetch(f, r.status().with_context("dial " + f->donor.address()));
    co_return;
  }
  f->session = *r;
  blobs_.expect(f->session.get(), {kStateBlob, f->xid, bytes_of(f->data), f});
  const StateRequest req{f->xid,    fingerprint_, model_.param_count, model_.state_count,
                         opt_.mode, outer_count()};
  if (!f->session->try_send_frame(kStateReq, encode(req))) {
    finish_fetch(f, core::Status(core::Code::kClosed, "could not send STATE_REQ"));
  }
}

void Core::handle_state_info(net::Session* s, StateInfo info) {
  auto f = fetch_for(s, info.xid);
  if (!f) return;
  if (info.fingerprint != fingerprint_ || info.param_count != model_.param_count ||
      info.state_count != model_.state_count || info.outer_count != outer_count()) {
    finish_fetch(f, core::protocol_error(
                        "donor state does not fit: fingerprint " + info.fingerprint + " vs " +
                        fingerprint_ + ", sizes " + std::to_string(info.param_count) + "+" +
                        std::to_string(info.state_count) + "+" + std::to_string(info.outer_count)));
    return;
  }
  f->info = info;
}

void Core::handle_state_blob(net::Session* s, uint64_t xid, core::Status st) {
  auto f = fetch_for(s, xid);
  if (!f) return;
  if (!st) return finish_fetch(f, st.with_context("receiving state"));
  if (!f->info) return finish_fetch(f, core::protocol_error("STATE blob without STATE header"));
  const size_t bad = core::first_non_finite(f->data);
  if (bad < f->data.size()) {
    return finish_fetch(
        f, core::corrupt("donor state has a non-finite value at element " + std::to_string(bad)));
  }
  finish_fetch(f, core::Status::ok());
}

void Core::finish_fetch(std::shared_ptr<StateFetch> f, core::Status st) {
  if (f->done) return;
  f->done = true;
  f->timer.cancel();
  fetches_.erase(f->xid);
  if (!st && f->session) {
    blobs_.unexpect(f->session.get(), f->xid);
    f->session->close(st);  // stops a slow or broken stream
  }
  f->result.set_value(std::move(st));
}

}  // namespace detail

core::Result<FetchedState> Engine::fetch_state(train::Backend& backend,
                                               std::vector<Member> candidates) {
  detail::Core& c = *core_;
  const ModelIdentity mine = identity_of(backend);
  if (mine.fingerprint != c.model_.fingerprint || mine.param_count != c.model_.param_count ||
      mine.state_count != c.model_.state_count) {
    return core::invalid_argument("fetch_state: backend does not match the engine's model");
  }
  std::string errors;
  bool all_model_refusals = true;  // every donor tried refused our model
  for (const Member& m : candidates) {
    if (m.peer_id == c.node_.peer_id()) continue;
    auto f = std::make_shared<detail::StateFetch>(c.strand_);
    f->xid = c.xids_.next();
    f->donor = m;
    f->data.resize(mine.param_count + mine.state_count + c.outer_count());
    auto fut = f->result.get_future();
    asio::co_spawn(c.strand_, c.run_fetch(f), asio::detached);
    if (fut.wait_for(c.opt_.state_timeout + std::chrono::seconds(5)) != std::future_status::ready) {
      auto self = core_;
      c.post([self, f] { self->finish_fetch(f, core::timeout_error("state fetch abandoned")); });
    }
    const core::Status st = fut.get();
    if (st) {
      std::span<const float> all(f->data);
      const size_t p = mine.param_count, s = mine.state_count;
      backend.write_parameters(all.first(p));
      backend.write_optimizer_state(all.subspan(p, s));
      if (c.outer_count()) {
        c.outer_.phi.assign(all.begin() + p + s, all.begin() + 2 * p + s);
        c.outer_.v.assign(all.begin() + 2 * p + s, all.end());
      }
      backend.set_optimizer_steps(f->info->optimizer_steps);
      core::log_info("averaging", "downloaded training state (step " +
                                      std::to_string(f->info->step) + ") from " +
                                      core::short_peer_id(m.peer_id));
      return FetchedState{m.peer_id, f->info->step, f->info->optimizer_steps};
    }
    c.counters_.add([](Counters& k) { k.state_fetch_failed++; });
    core::log_warn("averaging", "state download from " + core::short_peer_id(m.peer_id) + " at " +
                                    m.address() + " failed: " + st.to_string() +
                                    (&m != &candidates.back() ? "; trying the next member" : ""));
    errors += (errors.empty() ? "" : "; ") + m.address() + ": " + st.to_string();
    all_model_refusals = all_model_refusals && st.code() == core::Code::kInvalidArgument;
  }
  if (!errors.empty() && all_model_refusals) {
    return core::invalid_argument("every member refused this peer's model or gossip.mode (" +
                                  errors + ")");
  }
  return core::unavailable(
      "no member could serve the training state" +
      (errors.empty() ? std::string(" (no candidates)") : " (" + errors + ")"));
}

}  // namespace gossip::averaging
