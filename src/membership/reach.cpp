// Reach: observed addresses and dial-backs (frames 0x60..0x63; see
// reach.hpp for the protocol and docs/design.md "Peers behind NAT").
//
// One mutex guards the state; it is a leaf (no callback, send or swarm call
// blocks under it: try_send_frame queues, set_self_address posts).
#include "gossip/membership/reach.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "gossip/core/endpoint.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/membership/member.hpp"
#include "gossip/membership/swarm.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/router.hpp"
#include "gossip/net/session.hpp"

namespace gossip::membership {

const char* reachability_name(Reachability r) {
  switch (r) {
    case Reachability::kUnknown:
      return "unknown";
    case Reachability::kPublic:
      return "public";
    case Reachability::kPrivate:
      return "private";
  }
  return "unknown";
}

namespace detail {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

constexpr auto kWindow = std::chrono::seconds(10);  // max_dialbacks counts per window

std::string host_port(const asio::ip::address& ip, uint16_t port) {
  std::string s = ip.to_string();
  if (ip.is_v6()) s = "[" + s + "]";
  return s + ":" + std::to_string(port);
}

// "ip:port" with an IP literal (no names: an observed address is never one).
std::optional<asio::ip::tcp::endpoint> parse_ip_port(const std::string& text) {
  if (!validate_address(text).is_ok()) return std::nullopt;
  auto ep = core::parse_endpoint(text);
  if (!ep) return std::nullopt;
  asio::error_code ec;
  const auto ip = asio::ip::make_address(ep->host, ec);
  if (ec) return std::nullopt;
  return asio::ip::tcp::endpoint(ip, ep->port);
}

void send_json(net::Session& s, uint8_t type, const json& j) {
  const std::string text = j.dump();
  s.try_send_frame(type, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

}  // namespace

struct ReachCore final : net::SessionHandler, std::enable_shared_from_this<ReachCore> {
  ReachCore(asio::io_context& io_, std::shared_ptr<net::Node> node_, Swarm& swarm_,
            ReachConfig config_, std::string advertised)
      : io(io_), node(node_), swarm(&swarm_), config(config_), timer(io_) {
    st.address = std::move(advertised);
    rng.seed(std::random_device{}());
  }

  // --- SessionHandler (session strands) ---
  void on_open(net::Session& session) override {
    if (session.is_initiator() || stopped) return;
    // Tell the dialer where its connection came from.
    const auto remote = session.remote_endpoint();
    send_json(session, kObservedFrame, {{"addr", host_port(remote.address(), remote.port())}});
  }

  void on_frame(net::Session& session, uint8_t type, std::span<const uint8_t> body) override {
    if (stopped) return;
    const json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return reject(session, type, "body is not JSON");
    switch (type) {
      case kObservedFrame:
        return on_observed(session, j);
      case kDialbackReqFrame:
        return on_dialback_req(session, j);
      case kDialbackFrame:
        return on_dialback(session, j);
      case kDialbackResultFrame:
        return on_result(session, j);
      default:
        return reject(session, type, "unknown reach frame");
    }
  }

  void reject(net::Session& session, uint8_t type, const std::string& why) {
    core::log_rate_limited(core::LogLevel::kWarn, "reach", "bad-frame",
                           "reach frame " + std::to_string(type) + " from " +
                               core::short_peer_id(session.peer_id()) + " dropped: " + why);
  }

  // --- this peer's own address ---
  void on_observed(net::Session& session, const json& j) {
    if (!session.is_initiator()) return;  // only the accepting side can observe
    const auto it = j.find("addr");
    if (it == j.end() || !it->is_string()) return reject(session, kObservedFrame, "no addr");
    const auto ep = parse_ip_port(it->get<std::string>());
    if (!ep) return reject(session, kObservedFrame, "addr is not an ip:port");
    std::lock_guard l(mu);
    const std::string seen = host_port(ep->address(), ep->port());
    if (st.observed != seen) {
      core::log_info("reach",
                     core::short_peer_id(session.peer_id()) + " sees this peer at " + seen);
    }
    st.observed = seen;
    st.observed_by = session.peer_id();
    observed_ip = ep->address();
    maybe_ask(Clock::now());
  }

  // Starts a dial-back when one is due (mu held).
  void maybe_ask(Clock::time_point now) {
    if (!config.discover || config.listen_port == 0 || pending || !observed_ip || now < next_try)
      return;
    auto n = node.lock();
    if (!n) return;
    const std::string candidate =
        !st.mapped.empty() ? st.mapped : host_port(*observed_ip, config.listen_port);
    if (st.state == Reachability::kPublic && candidate == st.address) return;
    // A helper other than the observer, when one is connected, checks the
    // observation independently (it dials only the IP it sees us at).
    std::shared_ptr<net::Session> helper;
    for (const auto& id : n->session_peer_ids()) {
      if (id == st.observed_by) continue;
      if (auto s = n->session_to(id); s && swarm->state_of(id)) {
        helper = s;
        break;
      }
    }
    if (!helper) helper = n->session_to(st.observed_by);
    if (!helper) return;
    const uint64_t nonce = rng() >> 11;  // < 2^53: exact in every JSON reader
    pending = Pending{nonce, helper->peer_id(), candidate, now + config.dialback_deadline};
    next_try = now + config.retry;
    last_ask = now;
    core::log_info("reach", "asking " + core::short_peer_id(helper->peer_id()) +
                                " to dial this peer back at " + candidate);
    send_json(*helper, kDialbackReqFrame, {{"addr", candidate}, {"nonce", nonce}});
  }

  void on_dialback(net::Session& session, const json& j) {
    const auto it = j.find("nonce");
    if (it == j.end() || !it->is_number_unsigned()) return;
    std::lock_guard l(mu);
    // Only a session the helper opened to us proves that it could dial us.
    if (!pending || session.is_initiator() || session.peer_id() != pending->helper ||
        it->get<uint64_t>() != pending->nonce) {
      return;
    }
    const std::string address = pending->address;
    const bool mapped = !st.mapped.empty() && address == st.mapped;
    // The helper closes this session a second later; closing it here at
    // once could cut the OBSERVED this peer queued on it for the helper.
    pending.reset();
    const bool changed = st.state != Reachability::kPublic || st.address != address;
    st.state = Reachability::kPublic;
    st.address = address;
    st.confirmed_by = session.peer_id();
    st.last_failure.clear();
    if (changed) {
      core::log_info("reach", "public: " + core::short_peer_id(session.peer_id()) +
                                  " dialed this peer back at " + address +
                                  (mapped ? " (router port mapping)" : ""));
      swarm->set_self_address(address, mapped ? kMemberMapped : 0);
    }
  }

  void on_result(net::Session& session, const json& j) {
    const auto nonce = j.find("nonce");
    const auto ok = j.find("ok");
    if (nonce == j.end() || !nonce->is_number_unsigned() || ok == j.end() || !ok->is_boolean())
      return reject(session, kDialbackResultFrame, "needs nonce and ok");
    std::lock_guard l(mu);
    if (!pending || session.peer_id() != pending->helper ||
        nonce->get<uint64_t>() != pending->nonce || ok->get<bool>()) {
      return;  // an ok verdict means nothing until the DIALBACK itself arrives
    }
    const auto reason = j.find("reason");
    fail(reason != j.end() && reason->is_string() ? reason->get<std::string>() : "no reason");
  }

  // The pending dial-back failed (mu held).
  void fail(const std::string& why) {
    const std::string helper = pending ? pending->helper : "";
    const std::string address = pending ? pending->address : "";
    pending.reset();
    st.last_failure = why;
    if (st.state == Reachability::kPublic) {
      // It was reachable before: one failure is not enough to hide it.
      core::log_rate_limited(core::LogLevel::kWarn, "reach", "recheck",
                             "dial-back to " + address + " failed: " + why);
      return;
    }
    if (st.state != Reachability::kPrivate) {
      core::log_warn("reach", "private: " + core::short_peer_id(helper) +
                                  " could not dial this peer at " + address + " (" + why +
                                  "); the others will not dial it, it keeps the sessions it "
                                  "opens (docs/operations.md \"Peers behind NAT\")");
    }
    st.state = Reachability::kPrivate;
    swarm->set_self_address(st.address, kMemberPrivate);
  }

  // --- serving the others ---
  void on_dialback_req(net::Session& session, const json& j) {
    const auto addr = j.find("addr");
    const auto nonce = j.find("nonce");
    if (addr == j.end() || !addr->is_string() || nonce == j.end() || !nonce->is_number_unsigned()) {
      return reject(session, kDialbackReqFrame, "needs addr and nonce");
    }
    const uint64_t n = nonce->get<uint64_t>();
    auto answer = [&](bool ok_, const std::string& reason) {
      send_json(session, kDialbackResultFrame, {{"nonce", n}, {"ok", ok_}, {"reason", reason}});
    };
    const auto ep = parse_ip_port(addr->get<std::string>());
    if (!ep) return answer(false, "addr is not an ip:port");
    if (ep->address() != session.remote_endpoint().address()) {
      refused("address", session,
              "asked to dial " + ep->address().to_string() + ", not the IP its session comes from");
      return answer(false, "not the IP this session comes from (" +
                               session.remote_endpoint().address().to_string() + ")");
    }
    const auto now = Clock::now();
    {
      std::lock_guard l(mu);
      while (!recent.empty() && now - recent.front() > kWindow) recent.pop_front();
      auto& last = last_request[session.peer_id()];
      const bool too_soon = last != Clock::time_point{} && now - last < config.requester_interval;
      if (too_soon || recent.size() >= config.max_dialbacks) {
        ++st.dialbacks_refused;
        core::log_rate_limited(
            core::LogLevel::kInfo, "reach", "rate",
            "dial-back for " + core::short_peer_id(session.peer_id()) + " refused: rate limited");
        return answer(false, "rate limited");
      }
      last = now;
      recent.push_back(now);
      if (last_request.size() > 4096) last_request.clear();  // bounded memory
    }
    asio::co_spawn(io, dial_back(session.shared_from_this(), *ep, n), asio::detached);
  }

  void refused(const char* key, net::Session& session, const std::string& why) {
    {
      std::lock_guard l(mu);
      ++st.dialbacks_refused;
    }
    core::log_rate_limited(
        core::LogLevel::kWarn, "reach", key,
        "dial-back for " + core::short_peer_id(session.peer_id()) + " refused: " + why);
  }

  asio::awaitable<void> dial_back(std::shared_ptr<net::Session> requester,
                                  asio::ip::tcp::endpoint where, uint64_t nonce) {
    auto self = shared_from_this();
    auto n = node.lock();
    if (!n) co_return;
    const std::string id = requester->peer_id();
    auto result = co_await n->dial(where, id);
    json verdict = {{"nonce", nonce}, {"ok", static_cast<bool>(result)}};
    if (result) {
      send_json(**result, kDialbackFrame, {{"nonce", nonce}});
      verdict["reason"] = "";
      {
        std::lock_guard l(mu);
        ++st.dialbacks_served;
      }
      send_json(*requester, kDialbackResultFrame, verdict);
      // The session served its purpose; keep-alives would hold it open forever.
      asio::steady_timer linger(io, std::chrono::seconds(1));
      co_await linger.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      (*result)->close(core::Status(core::Code::kClosed, "reach: dial-back done"));
      co_return;
    } else {
      verdict["reason"] = "dialing " + host_port(where.address(), where.port()) +
                          " failed: " + result.status().message();
      std::lock_guard l(mu);
      ++st.dialbacks_served;
    }
    send_json(*requester, kDialbackResultFrame, verdict);
  }

  // --- timer ---
  void tick() {
    if (stopped) return;
    {
      std::lock_guard l(mu);
      const auto now = Clock::now();
      if (pending && now >= pending->deadline) fail("no dial-back arrived in time");
      if (st.state != Reachability::kPublic || !st.mapped.empty()) maybe_ask(now);
    }
    timer.expires_after(std::chrono::milliseconds(500));
    timer.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
      if (auto c = weak.lock(); c && !ec) c->tick();
    });
  }

  struct Pending {
    uint64_t nonce;
    std::string helper;
    std::string address;
    Clock::time_point deadline;
  };

  asio::io_context& io;
  const std::weak_ptr<net::Node> node;  // the Node's Router owns this core
  Swarm* swarm;
  ReachConfig config;  // listen_port: under mu
  asio::steady_timer timer;
  std::atomic<bool> stopped{false};

  mutable std::mutex mu;
  ReachStatus st;
  std::optional<asio::ip::address> observed_ip;
  std::optional<Pending> pending;
  Clock::time_point next_try{};
  Clock::time_point last_ask{};          // when maybe_ask last sent a DIALBACK_REQ
  std::deque<Clock::time_point> recent;  // dial-backs served in the window
  std::map<std::string, Clock::time_point> last_request;
  std::mt19937_64 rng;
};

}  // namespace detail

Reach::Reach(asio::io_context& io, std::shared_ptr<net::Node> node, Swarm& swarm,
             ReachConfig config, std::string advertised)
    : core_(std::make_shared<detail::ReachCore>(io, std::move(node), swarm, config,
                                                std::move(advertised))) {}

Reach::~Reach() {
  stop();
}

void Reach::attach(net::Router& router) {
  router.add(kFirstReachFrame, kLastReachFrame, core_);
  asio::post(core_->io, [c = core_] { c->tick(); });
}

void Reach::set_listen(uint16_t port, std::string advertised) {
  std::lock_guard l(core_->mu);
  core_->config.listen_port = port;
  core_->st.address = std::move(advertised);
}

void Reach::set_mapped_address(std::string address) {
  std::lock_guard l(core_->mu);
  core_->st.mapped = std::move(address);
  // Ask again now, but not sooner after the last request than a helper
  // serves one requester (requester_interval): a mapping that arrives just
  // after a failed ask would otherwise be refused as rate limited, and the
  // peer would stay private until the next retry (30 s). The margin covers
  // the two requests' different delays on the way.
  auto& c = *core_;
  const auto margin = std::chrono::milliseconds(500);
  c.next_try = c.last_ask == detail::Clock::time_point{}
                   ? detail::Clock::time_point{}
                   : c.last_ask + c.config.requester_interval + margin;
}

ReachStatus Reach::status() const {
  std::lock_guard l(core_->mu);
  return core_->st;
}

void Reach::stop() {
  if (core_->stopped.exchange(true)) return;
  asio::post(core_->io, [c = core_] { c->timer.cancel(); });
}

}  // namespace gossip::membership
