// PeerNetwork: keys, network threads, Node + Router, Swarm (membership) and
// Engine (averaging), composed for one peer; the membership view serves as
// the averaging engine's directory of partners.
#include "gossip/peer/network.hpp"

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "gossip/averaging/engine.hpp"
#include "gossip/core/fingerprint.hpp"
#include "gossip/core/log.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/crypto/noise.hpp"
#include "gossip/membership/reach.hpp"
#include "gossip/membership/swarm.hpp"
#include "gossip/net/http_metrics.hpp"
#include "gossip/net/link_filter.hpp"
#include "gossip/net/node.hpp"
#include "gossip/net/port_mapping.hpp"
#include "gossip/net/relay.hpp"
#include "gossip/net/router.hpp"
#include "gossip/peer/observe.hpp"
#include "relay_keeper.hpp"

namespace gossip::peer {
namespace {

using std::chrono::milliseconds;

// The membership view as the averaging engine's directory of partners.
// A private member (it says nobody can dial it) is a partner while a session
// with it is open; without one, only where a Traversal can punch or relay to
// it, and not while its last attempt found no path (for
// net.relay.direct_retry_ms): nobody waits on a dial that cannot succeed.
class SwarmDirectory final : public averaging::PeerDirectory {
 public:
  SwarmDirectory(membership::Swarm& swarm, net::Node& node, const net::Traversal* traversal)
      : swarm_(swarm), node_(node), traversal_(traversal) {}

  std::optional<averaging::Member> random_live_peer() override {
    auto peers = live_peers();
    if (peers.empty()) return std::nullopt;
    std::lock_guard l(mu_);
    return peers[std::uniform_int_distribution<size_t>(0, peers.size() - 1)(rng_)];
  }
  std::vector<averaging::Member> live_peers() override {
    std::vector<averaging::Member> out;
    std::map<std::string, net::PathInfo> paths;
    if (traversal_) paths = traversal_->paths();
    const auto now = std::chrono::steady_clock::now();
    for (const auto& m : swarm_.live_members()) {
      if (m.is_private() && !node_.session_to(m.id)) {
        if (!traversal_) continue;
        auto p = paths.find(m.id);
        if (p != paths.end() && p->second.kind == net::PathKind::kUnreachable &&
            now - p->second.when < node_.config().relay.direct_retry) {
          continue;
        }
      }
      if (auto p = to_partner(m)) out.push_back(*p);
    }
    return out;
  }

 private:
  static std::optional<averaging::Member> to_partner(const membership::Member& m) {
    auto ep = core::parse_endpoint(m.address);  // validated by membership on arrival
    if (!ep) return std::nullopt;
    return averaging::Member{m.id, std::move(*ep)};
  }
  membership::Swarm& swarm_;
  net::Node& node_;
  const net::Traversal* traversal_;  // null in the simulator
  std::mutex mu_;
  std::mt19937_64 rng_{std::random_device{}()};
};

core::Status key_error(const char* key, const core::Status& st) {
  return st.with_context(std::string("peer.") + key);
}

std::string host_port(const asio::ip::tcp::endpoint& e) {
  std::string text = e.address().to_string();
  if (e.address().is_v6()) text = '[' + text + ']';
  text += ':';
  text += std::to_string(e.port());
  return text;
}

}  // namespace

struct PeerNetwork::Parts {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::vector<std::thread> threads;
  std::shared_ptr<net::Node> node;
  std::shared_ptr<net::Router> router;
  std::unique_ptr<net::Traversal> traversal;  // relays and punching (borrows the Node)
  std::shared_ptr<net::LinkFilter> filter;
  std::unique_ptr<membership::Swarm> swarm;
  std::unique_ptr<membership::Reach> reach;
  std::shared_ptr<SwarmDirectory> directory;
  std::unique_ptr<averaging::Engine> engine;
  bool outer_mode = false;  // gossip.mode outer
  std::vector<std::string> seeds;
  int64_t join_timeout_ms = 30000;
  TrainGauges gauges;
  PeerFacts facts;  // complete once listening
  std::unique_ptr<net::MetricsHttpServer> http;
  std::string listen;
  bool joined = false;  // join() succeeded (trainer thread only)
  // Router port mapping (net.port_mapping): its own thread, since the
  // NAT-PMP and UPnP libraries block.
  std::thread mapping_thread;
  std::mutex mapping_mu;
  std::condition_variable mapping_cv;
  bool mapping_stop = false;

  PeerObservation observe() const {
    const auto members = swarm->members();
    const auto exchanges = engine->counters();
    const auto traffic = node->counters();
    const auto open = node->session_peer_ids();
    const auto reach_status = reach->status();
    if (!traversal) {
      return peer::observe({facts, gauges.read(), exchanges, members, traffic, open,
                            node->session_count(), &reach_status});
    }
    return peer::observe({facts, gauges.read(), exchanges, members, traffic, open,
                          node->session_count(), &reach_status, traversal->paths(),
                          traversal->counters(), node->config().relay.enabled,
                          traversal->reserved_relays()});
  }
  core::Status serve_metrics(const core::ServiceAddress& where);
  void start_port_mapping(uint16_t port);
  std::unique_ptr<RelayKeeper> relay_keeper;  // from join(), with traversal only

  ~Parts() {
    if (relay_keeper) relay_keeper->stop();  // its chain ends at its next tick
    if (mapping_thread.joinable()) {
      {
        std::lock_guard l(mapping_mu);
        mapping_stop = true;
      }
      mapping_cv.notify_all();
      mapping_thread.join();  // releases the mapping (bounded: the libraries' timeouts)
    }
    if (reach) reach->stop();
    if (http) http->close();
    if (engine) engine->stop();
    if (swarm) swarm->stop();
    if (traversal) traversal->close();
    if (node) node->close();
    // Let sessions finish closing on their strands, then stop the threads.
    work.reset();
    io.run_for(milliseconds(200));
    io.stop();
    for (auto& t : threads) t.join();
    engine.reset();  // before the Node it borrows
    reach.reset();   // before the Swarm it borrows
    swarm.reset();
    traversal.reset();
  }
};

PeerNetwork::PeerNetwork(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
PeerNetwork::~PeerNetwork() = default;

core::Result<std::unique_ptr<PeerNetwork>> PeerNetwork::start(const config::Config& config,
                                                              Trainer& trainer, double weight,
                                                              bool link_filter, int io_threads) {
  const auto& pc = config.peer;
  auto identity = crypto::load_identity_file(pc.identity_key);
  if (!identity) return key_error("identity_key", identity.status());
  auto swarm_key = crypto::load_swarm_key_file(pc.swarm_key);
  if (!swarm_key) return key_error("swarm_key", swarm_key.status());

  const net::NetConfig& net_config = config.net;
  if (auto st = crypto::check_cipher_available(net_config.cipher); !st)
    return st.with_context("net.cipher");
  auto parts = std::make_unique<Parts>();
  parts->node = std::make_shared<net::Node>(parts->io, net_config, std::move(*identity),
                                            std::move(*swarm_key));
  parts->router = std::make_shared<net::Router>();
  if (link_filter) {
    parts->filter = std::make_shared<net::LinkFilter>(parts->router);
    parts->node->set_handler(parts->filter);
    parts->node->set_link_filter(parts->filter);
  } else {
    parts->node->set_handler(parts->router);
  }

  // NAT traversal for real peers only, for now: a host with a LinkFilter
  // (the simulator) cuts links on purpose. Traversal's reach no longer
  // detours around a cut link (Node::link_blocked), but the simulator has
  // not been rerun with it on (docs/design.md "Peers behind NAT").
  if (!link_filter) {
    parts->traversal = std::make_unique<net::Traversal>(parts->io, *parts->node);
    parts->traversal->install(*parts->router);
  }

  membership::SwarmConfig sc;
  sc.protocol = membership::options_from(config.membership);
  if (!pc.advertise.host.empty()) sc.advertise = pc.advertise.to_string();
  parts->swarm = std::make_unique<membership::Swarm>(parts->io, parts->node, *parts->router, sc);
  parts->swarm->set_event_handler([](const membership::Event& e) {
    core::log_info("swarm", std::string(membership::event_kind_name(e.kind)) + ": " +
                                membership::describe(e.member));
  });

  membership::ReachConfig rc;
  // peer.advertise overrides discovery; on loopback there is no NAT to find
  // (and every test swarm of one host keeps its old behaviour).
  {
    asio::error_code ec;
    const auto listen_ip = asio::ip::make_address(pc.listen.host, ec);
    rc.discover = pc.advertise.host.empty() && !(!ec && listen_ip.is_loopback());
  }
  rc.listen_port = pc.listen.port;
  parts->reach =
      std::make_unique<membership::Reach>(parts->io, parts->node, *parts->swarm, rc, sc.advertise);
  parts->reach->attach(*parts->router);

  parts->directory =
      std::make_shared<SwarmDirectory>(*parts->swarm, *parts->node, parts->traversal.get());
  auto options = averaging::options_from(config.gossip, trainer.shard_size());
  options.weight = weight;
  parts->outer_mode = options.mode == averaging::GossipMode::kOuter;
  parts->engine =
      std::make_unique<averaging::Engine>(parts->io, *parts->node, parts->directory,
                                          averaging::identity_of(trainer.backend()), options);
  parts->engine->attach(*parts->router);

  Parts* raw = parts.get();
  parts->node->set_status_provider([raw] {
    const PeerObservation o = raw->observe();
    return net::PeerStatus{
        static_cast<uint64_t>(o.train.step),
        static_cast<uint64_t>(o.members[static_cast<size_t>(membership::MemberState::kAlive)]),
        o.facts.model, std::make_shared<const nlohmann::json>(status_details(o))};
  });
  parts->gauges.set_step(trainer.progress().step);
  parts->facts = {parts->node->peer_id(),
                  build_version(),
                  1,
                  "",
                  core::format_fingerprint(config.model.fingerprint()),
                  averaging::wire_format_name(config.gossip.wire.format),
                  config.gossip.mode,
                  config.gossip.interval_ms > 0 ? 0 : config.gossip.interval_steps,
                  config.gossip.interval_ms,
                  config.gossip.outer};

  asio::error_code ec;
  const auto address = asio::ip::make_address(pc.listen.host, ec);
  if (ec) {
    return core::invalid_argument("peer.listen: '" + pc.listen.host +
                                  "' is not an IP address to bind: " + ec.message());
  }
  GOSSIP_RETURN_IF_ERROR(
      parts->node->listen({address, pc.listen.port}).with_context("peer.listen"));
  const auto bound = parts->node->local_endpoint();
  parts->listen = host_port(bound);
  parts->facts.listen = parts->listen;
  parts->reach->set_listen(bound.port(), sc.advertise.empty() ? parts->listen : sc.advertise);
  // JSON log lines name the peer they come from (a simulator hosts many).
  const std::string log_peer = core::short_peer_id(parts->node->peer_id());
  core::set_thread_log_peer(log_peer);  // the trainer thread
  if (config.metrics.http.enabled()) {
    GOSSIP_RETURN_IF_ERROR(parts->serve_metrics(config.metrics.http));
  }
  for (int i = 0; i < std::max(1, io_threads); ++i) {
    parts->threads.emplace_back([raw, log_peer] {
      core::set_thread_log_peer(log_peer);
      raw->io.run();
    });
  }
  GOSSIP_RETURN_IF_ERROR(parts->swarm->start());  // its messages start with "membership: "
  if (net_config.port_mapping && rc.discover) {
    parts->start_port_mapping(bound.port());
  }
  parts->join_timeout_ms = config.membership.join_timeout_ms;
  for (const auto& b : pc.bootstrap) parts->seeds.push_back(b.to_string());
  core::log_info("peer", "peer " + core::short_peer_id(parts->node->peer_id()) + " listening on " +
                             parts->listen);
  return std::unique_ptr<PeerNetwork>(new PeerNetwork(std::move(parts)));
}

void PeerNetwork::Parts::start_port_mapping(uint16_t port) {
  mapping_thread = std::thread([this, port, log_peer = core::short_peer_id(node->peer_id())] {
    core::set_thread_log_peer(log_peer);
    net::PortMapping mapping(port);
    bool logged_failure = false;
    std::unique_lock l(mapping_mu);
    while (!mapping_stop) {
      l.unlock();
      auto result = mapping.request();
      l.lock();
      if (mapping_stop) break;
      auto wait = std::chrono::seconds(300);  // retry a failure now and then
      if (result) {
        core::log_info("net", "port mapping: the router forwards " + result->external +
                                  " to port " + std::to_string(port) + " (" + result->protocol +
                                  ", lease " + std::to_string(result->lifetime.count()) + " s)");
        reach->set_mapped_address(result->external);
        wait = std::max(std::chrono::seconds(30), result->lifetime / 2);  // renew in time
        logged_failure = false;
      } else if (!logged_failure) {
        core::log_info("net", "port mapping: " + result.status().message() +
                                  " (net.port_mapping: false turns this off)");
        logged_failure = true;
      }
      mapping_cv.wait_for(l, wait, [this] { return mapping_stop; });
    }
  });
}

core::Status PeerNetwork::Parts::serve_metrics(const core::ServiceAddress& where) {
  asio::error_code ec;
  const auto address = asio::ip::make_address(where.endpoint.host, ec);
  if (ec) {
    return core::invalid_argument("metrics.http: '" + where.endpoint.host +
                                  "' is not an IP address to bind: " + ec.message());
  }
  http = std::make_unique<net::MetricsHttpServer>(io, [this] {
    return render_metrics({{{}, observe()}});
  });
  GOSSIP_RETURN_IF_ERROR(http->listen({address, where.endpoint.port}).with_context("metrics.http"));
  const auto bound = http->local_endpoint();
  std::string line = "serving Prometheus metrics on http://" + host_port(bound) + "/metrics";
  if (!where.host_given) {
    line += " (metrics.http gives no host: loopback only; write \"0.0.0.0:" +
            std::to_string(bound.port()) + "\" to let other machines scrape it)";
  }
  core::log_info("metrics", line);
  return core::Status::ok();
}

core::Status PeerNetwork::join(const std::atomic<bool>* stop) {
  if (parts_->seeds.empty()) {
    core::log_info("swarm", "no bootstrap addresses: founding a new swarm");
  }
  std::function<bool()> cancelled;
  if (stop) cancelled = [stop] { return stop->load(std::memory_order_relaxed); };
  core::Status st = parts_->swarm->join_wait(parts_->seeds, milliseconds(parts_->join_timeout_ms),
                                             std::move(cancelled));
  if (st) {
    parts_->joined = true;
    if (parts_->traversal) {
      parts_->relay_keeper =
          std::make_unique<RelayKeeper>(parts_->io, *parts_->node, *parts_->swarm, *parts_->reach,
                                        *parts_->traversal, parts_->seeds);
      parts_->relay_keeper->start();
    }
  } else if (stop && stop->load(std::memory_order_relaxed)) {
    return core::Status(core::Code::kClosed, "stopped before joining the swarm");
  }
  return st;
}

core::Result<bool> PeerNetwork::fetch_swarm_state(Trainer& trainer) {
  if (!parts_->joined) return false;  // the join was stopped: nobody to ask
  auto candidates = parts_->directory->live_peers();
  if (candidates.empty()) return false;
  std::shuffle(candidates.begin(), candidates.end(), std::mt19937_64(std::random_device{}()));
  auto fetched = parts_->engine->fetch_state(trainer.backend(), candidates);
  if (!fetched) return fetched.status().with_context("state sync");
  GOSSIP_RETURN_IF_ERROR(trainer.adopt_step(fetched->step));
  parts_->gauges.set_step(fetched->step);
  core::log_info("peer", "downloaded the swarm's state (step " + std::to_string(fetched->step) +
                             ") from " + core::short_peer_id(fetched->donor) +
                             (parts_->outer_mode
                                  ? ", with its outer state: " +
                                        averaging::outer_norms_text(parts_->engine->outer_state())
                                  : std::string()));
  return true;
}

void PeerNetwork::count_step(const Trainer& trainer, float loss) {
  parts_->gauges.step_done(trainer.progress().step, loss);
}

void PeerNetwork::between_steps(Trainer& trainer) {
  parts_->gauges.set_step(trainer.progress().step);
  parts_->engine->between_steps(trainer.backend(), trainer.progress().step);
}

void PeerNetwork::leave(Trainer& trainer, bool final_exchange) {
  // Not after a join stopped half-way: the peer never took part, whatever
  // the membership learned in the background since.
  if (final_exchange && parts_->joined && parts_->swarm->live_count() > 0) {
    auto st = parts_->engine->final_exchange(trainer.backend(), trainer.progress().step,
                                             milliseconds(5000));
    if (!st) core::log_info("peer", "no final exchange before leaving: " + st.message());
  }
  parts_->engine->stop();
  parts_->swarm->leave_wait(milliseconds(1000));
}

averaging::OuterState PeerNetwork::outer_state() const {
  return parts_->engine->outer_state();
}

core::Status PeerNetwork::resume_outer_state(averaging::OuterState state) {
  if (state.empty()) return core::Status::ok();
  if (parts_->outer_mode) {
    GOSSIP_RETURN_IF_ERROR(
        parts_->engine->set_outer_state(std::move(state)).with_context("checkpoint outer state"));
    core::log_info("peer", "resumed the outer state from the checkpoint: " +
                               averaging::outer_norms_text(parts_->engine->outer_state()));
    return core::Status::ok();
  }
  core::log_info("peer",
                 "the checkpoint holds an outer-optimizer state, unused in gossip.mode params");
  return core::Status::ok();
}

NetworkCounters PeerNetwork::counters() const {
  const auto c = parts_->engine->counters();
  NetworkCounters n;
  n.exchanges_ok = static_cast<int64_t>(c.exchanges_ok);
  n.exchanges_busy = static_cast<int64_t>(c.exchanges_busy);
  n.exchanges_failed = static_cast<int64_t>(c.exchanges_failed);
  n.bytes_in = static_cast<int64_t>(c.bytes_in);
  n.bytes_out = static_cast<int64_t>(c.bytes_out);
  n.members_alive = static_cast<int64_t>(parts_->swarm->live_count()) + 1;
  n.exchange_s_total = c.total_exchange_s;
  if (c.exchanges_ok > 0) n.last_delta_norm = c.last_delta_norm;
  return n;
}

void PeerNetwork::record_eval(double test_loss, std::optional<double> test_accuracy) {
  parts_->gauges.eval_done(test_loss, test_accuracy);
}
PeerObservation PeerNetwork::observe() const {
  return parts_->observe();
}

void PeerNetwork::wait_for_work(std::chrono::milliseconds max_wait) {
  parts_->engine->wait_for_work(max_wait);
}

void PeerNetwork::set_initiating(bool on) {
  parts_->engine->set_initiating(on);
}

std::shared_ptr<net::LinkFilter> PeerNetwork::link_filter() const {
  return parts_->filter;
}

std::vector<std::string> PeerNetwork::live_member_ids() const {
  std::vector<std::string> ids;
  for (const auto& m : parts_->swarm->live_members()) ids.push_back(m.id);
  return ids;
}

const std::string& PeerNetwork::peer_id() const {
  return parts_->node->peer_id();
}
std::string PeerNetwork::listen_address() const {
  return parts_->listen;
}

}  // namespace gossip::peer
