// Simulation events: when a scripted event is due and what it does to the
// peers. Partitions, slow links and drops act through each peer's
// net::LinkFilter, so the sessions really fail or really slow down and every
// protocol above sees what a real network would show it.
#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "gossip/core/log.hpp"
#include "simulation_impl.hpp"

namespace gossip::sim {

namespace {

std::string join_indices(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += (s.empty() ? "" : ", ") + std::to_string(i);
  return s;
}

}  // namespace

bool Simulation::event_due(const SimEvent& event) const {
  if (event.at_s >= 0) return now_s() >= event.at_s;
  int64_t max_step = 0;
  for (const auto& p : peers_) {
    if (p->running()) max_step = std::max(max_step, p->step());
  }
  return max_step >= event.at_step;
}

std::string Simulation::describe(const SimEvent& e) const {
  switch (e.kind) {
    case SimEventKind::kKill:
    case SimEventKind::kLeave:
      return "peers " + join_indices(e.peers);
    case SimEventKind::kStart:
      return std::to_string(e.count) + " new peers (" + std::to_string(peers_.size()) + ".." +
             std::to_string(peers_.size() + static_cast<size_t>(e.count) - 1) + ")";
    case SimEventKind::kPartition:
    case SimEventKind::kSlowLink: {
      std::string s = e.all_links ? "every link" : "";
      for (const auto& g : e.groups) s += (s.empty() ? "[" : " | [") + join_indices(g) + "]";
      if (e.kind == SimEventKind::kSlowLink) {
        s += ", +" + std::to_string(e.latency_ms) + " ms";
        if (e.bandwidth_mbit_s > 0) {
          char buf[48];
          std::snprintf(buf, sizeof buf, ", %.4g Mbit/s", e.bandwidth_mbit_s);
          s += buf;
        }
      }
      return s;
    }
    case SimEventKind::kHeal:
      return "every link restored";
    case SimEventKind::kDrop: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.0f%% of exchanges fail", 100.0 * e.fraction);
      return buf;
    }
  }
  return "";
}

core::Status Simulation::apply_event(size_t index, const SimEvent& event) {
  int64_t max_step = 0;
  for (const auto& p : peers_) max_step = std::max(max_step, p->step());
  write_record({{"type", "event"},
                {"t_s", now_s()},
                {"index", index},
                {"event", sim_event_name(event.kind)},
                {"detail", describe(event)},
                {"step_max", max_step}});
  if (options_.progress) {
    std::printf("sim %6.1fs  event %s: %s\n", now_s(), sim_event_name(event.kind),
                describe(event).c_str());
    std::fflush(stdout);
  }
  switch (event.kind) {
    case SimEventKind::kKill:
    case SimEventKind::kLeave:
      for (int i : event.peers) {
        SimPeer& p = *peers_.at(static_cast<size_t>(i));
        if (event.kind == SimEventKind::kKill) {
          p.kill();
        } else {
          p.leave();
        }
        if (!p.id().empty()) gone_ids_.push_back(p.id());
      }
      return core::Status::ok();
    case SimEventKind::kStart:
      for (int k = 0; k < event.count; ++k) {
        const int index = static_cast<int>(peers_.size());
        joiners_.insert(index);
        auto p = start_peer(random_live_address());
        if (!p) return p.status().with_context("peer " + std::to_string(index));
      }
      return core::Status::ok();
    case SimEventKind::kPartition:
      apply_partition(event);
      return core::Status::ok();
    case SimEventKind::kHeal:
      all_links_shape_.reset();
      for (auto& p : peers_) {
        p->with_filter([](net::LinkFilter& f) {
          f.clear();
          f.clear_shape();
        });
      }
      return core::Status::ok();
    case SimEventKind::kSlowLink:
      apply_slow_link(event);
      return core::Status::ok();
    case SimEventKind::kDrop:
      drop_fraction_ = event.fraction;
      for (auto& p : peers_) apply_faults_to(*p);
      return core::Status::ok();
  }
  return core::Status::ok();
}

// Links between peers of different groups are cut on both ends; peers in no
// group keep every link.
void Simulation::apply_partition(const SimEvent& event) {
  std::unordered_map<std::string, size_t> group_of;
  for (size_t g = 0; g < event.groups.size(); ++g) {
    for (int i : event.groups[g]) group_of[peers_.at(static_cast<size_t>(i))->id()] = g;
  }
  for (size_t g = 0; g < event.groups.size(); ++g) {
    std::unordered_set<std::string> blocked;
    for (const auto& [id, other] : group_of) {
      if (other != g) blocked.insert(id);
    }
    for (int i : event.groups[g]) {
      peers_.at(static_cast<size_t>(i))->with_filter([&](net::LinkFilter& f) {
        f.block([blocked](std::string_view id) { return blocked.count(std::string(id)) > 0; });
      });
    }
  }
}

// Each side shapes what it sends to the other group; with "all", every peer
// shapes what it sends to anyone, and peers started later do too.
void Simulation::apply_slow_link(const SimEvent& event) {
  net::LinkShape shape;
  shape.latency = std::chrono::milliseconds(event.latency_ms);
  shape.bytes_per_s = event.bandwidth_mbit_s * 1e6 / 8.0;
  if (event.all_links) {
    all_links_shape_ = shape;
    for (auto& p : peers_) shape_every_link_of(*p, shape);
    return;
  }
  for (size_t g = 0; g < 2; ++g) {
    std::unordered_set<std::string> far;
    for (int i : event.groups[1 - g]) far.insert(peers_.at(static_cast<size_t>(i))->id());
    for (int i : event.groups[g]) {
      peers_.at(static_cast<size_t>(i))->with_filter([&](net::LinkFilter& f) {
        f.shape([far, shape](std::string_view id) -> std::optional<net::LinkShape> {
          if (far.count(std::string(id))) return shape;
          return std::nullopt;
        });
      });
    }
  }
}

void Simulation::shape_every_link_of(SimPeer& peer, const net::LinkShape& shape) {
  peer.with_filter([&](net::LinkFilter& f) {
    f.shape([shape](std::string_view) -> std::optional<net::LinkShape> { return shape; });
  });
}

// An exchange carries two blobs and each receiver cuts a blob with
// probability p, so exchanges fail with probability 1 - (1 - p)^2: p is
// chosen to make that the scripted fraction.
void Simulation::apply_faults_to(SimPeer& peer) {
  const double per_blob = 1.0 - std::sqrt(1.0 - drop_fraction_);
  const uint64_t seed = options_.seed * 7919 + static_cast<uint64_t>(peer.index());
  peer.with_filter([&](net::LinkFilter& f) { f.set_drop(per_blob, seed); });
}

// A random running peer's address to join through (none: found a swarm).
std::vector<core::Endpoint> Simulation::random_live_address() {
  std::vector<SimPeer*> live;
  for (auto& p : peers_) {
    if (p->running() && p->state() == PeerState::kRunning) live.push_back(p.get());
  }
  if (live.empty()) return {};
  std::uniform_int_distribution<size_t> pick(0, live.size() - 1);
  auto ep = core::parse_endpoint(live[pick(rng_)]->address());
  if (!ep) return {};
  return {*ep};
}

}  // namespace gossip::sim
