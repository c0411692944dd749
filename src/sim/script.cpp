// check_sim_script: the walk over a "sim" event script in listed order,
// tracking which peer indices exist and are alive, so an event that names a
// peer that is not there (yet, or any more), overlapping groups, a time in
// the past or out of order are reported before anything starts, naming the
// event: "sim.events[3] (kill): peer 9 does not exist (...)". It also
// re-checks the values the reader checked, since gossip-sim calls it again
// on a SimConfig changed in code (--peers).
#include "script.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gossip/options/reader.hpp"
#include "gossip/sim/options.hpp"

namespace gossip::sim {

namespace script {

const std::vector<std::string> kSimEventNames = {"kill", "leave",     "start", "partition",
                                                 "heal", "slow_link", "drop"};

std::string sim_event_path(int64_t index) {
  return "sim.events[" + std::to_string(index) + "]";
}

std::string sim_past_time(const char* key, const std::string& value) {
  return std::string(key) + " " + value +
         " is a time in the past (times count from the start of the simulation, from 0)";
}

}  // namespace script

const char* sim_event_name(SimEventKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < script::kSimEventNames.size() ? script::kSimEventNames[i].c_str() : "?";
}

namespace {

using options::num;
using script::kMaxSimPeers;
using script::sim_event_path;
using script::sim_past_time;

// The walk's view of the swarm: which indices exist and which event ended
// each one.
class ScriptWalk {
 public:
  ScriptWalk(const SimConfig& sim, std::vector<std::string>& problems)
      : sim_(sim), problems_(problems), ended_by_(static_cast<size_t>(sim.peers), -1) {}

  void check_event(size_t index) {
    const SimEvent& e = sim_.events[index];
    label_ = sim_event_path(static_cast<int64_t>(index)) + " (" + sim_event_name(e.kind) + ")";
    check_time(index, e);
    switch (e.kind) {
      case SimEventKind::kKill:
      case SimEventKind::kLeave:
        check_removal(index, e);
        break;
      case SimEventKind::kStart:
        check_start(e);
        break;
      case SimEventKind::kPartition:
        if (e.groups.size() < 2) {
          add("needs at least 2 groups of peers, got " + std::to_string(e.groups.size()));
        }
        check_groups(e.groups);
        break;
      case SimEventKind::kHeal:
        break;
      case SimEventKind::kSlowLink:
        check_slow_link(e);
        break;
      case SimEventKind::kDrop:
        if (!(e.fraction >= 0 && e.fraction <= 1)) {
          add("fraction " + num(e.fraction) + " is not in [0, 1]");
        }
        break;
    }
  }

 private:
  void add(const std::string& message) { problems_.push_back(label_ + ": " + message); }

  void check_time(size_t index, const SimEvent& e) {
    const bool has_s = e.at_s >= 0;
    const bool has_step = e.at_step >= 0;
    if (has_s && has_step) {
      add("has both at_s and at_step (give one)");
      return;
    }
    if (std::isnan(e.at_s) || std::isinf(e.at_s)) {
      add("at_s must be a finite number, got " + num(e.at_s));
      return;
    }
    if (e.at_s < 0 && e.at_s != -1) {
      add(sim_past_time("at_s", num(e.at_s)));
      return;
    }
    if (e.at_step < -1) {
      add(sim_past_time("at_step", std::to_string(e.at_step)));
      return;
    }
    if (!has_s && !has_step) {
      add("needs one of at_s, at_step");
      return;
    }
    if (has_s) {
      if (last_s_ >= 0 && e.at_s < sim_.events[static_cast<size_t>(last_s_)].at_s) {
        add("at_s " + num(e.at_s) + " is before " + sim_event_path(last_s_) + "'s at_s " +
            num(sim_.events[static_cast<size_t>(last_s_)].at_s) +
            " (events must be listed in time order)");
      } else {
        last_s_ = static_cast<int>(index);
      }
      if (sim_.duration_s > 0 && e.at_s > sim_.duration_s) {
        add("at_s " + num(e.at_s) + " is after the end of the simulation (sim.duration_s " +
            num(sim_.duration_s) + ")");
      }
    } else {
      if (last_step_ >= 0 && e.at_step < sim_.events[static_cast<size_t>(last_step_)].at_step) {
        add("at_step " + std::to_string(e.at_step) + " is before " + sim_event_path(last_step_) +
            "'s at_step " + std::to_string(sim_.events[static_cast<size_t>(last_step_)].at_step) +
            " (events must be listed in time order)");
      } else {
        last_step_ = static_cast<int>(index);
      }
      if (sim_.average_only) {
        add("at_step is not used with sim.average_only (no training steps are taken); give at_s");
      }
    }
  }

  // Whether `peer` exists and is alive now; otherwise records why not,
  // prefixed with `where` ("" or "group 1: ").
  bool check_live(int peer, const std::string& where) {
    const int started = static_cast<int>(ended_by_.size());
    if (peer < 0 || peer >= started) {
      add(where + "peer " + std::to_string(peer) + " does not exist (" +
          (started == 1 ? std::string("only peer 0 exists")
                        : "peers 0.." + std::to_string(started - 1) + " exist") +
          " at that point)");
      return false;
    }
    const int ended = ended_by_[static_cast<size_t>(peer)];
    if (ended >= 0) {
      const bool killed = sim_.events[static_cast<size_t>(ended)].kind == SimEventKind::kKill;
      add(where + "peer " + std::to_string(peer) +
          (killed ? " was already killed by " : " already left at ") + sim_event_path(ended));
      return false;
    }
    return true;
  }

  void check_removal(size_t index, const SimEvent& e) {
    if (e.peers.empty()) add("lists no peers");
    std::vector<int> removed;
    for (const int peer : e.peers) {
      if (std::find(removed.begin(), removed.end(), peer) != removed.end()) {
        add("peer " + std::to_string(peer) + " is listed twice");
        continue;
      }
      if (check_live(peer, "")) removed.push_back(peer);
    }
    for (const int peer : removed) ended_by_[static_cast<size_t>(peer)] = static_cast<int>(index);
  }

  void check_start(const SimEvent& e) {
    if (e.count < 1) {
      add("needs a count >= 1 of new peers, got " + std::to_string(e.count));
      return;
    }
    if (std::count(ended_by_.begin(), ended_by_.end(), -1) == 0) {
      add("no live peer to join through (every peer was killed or has left by then)");
    }
    const int64_t total = static_cast<int64_t>(ended_by_.size()) + e.count;
    if (total > kMaxSimPeers) {
      add("would bring the peers ever started to " + std::to_string(total) + " (at most " +
          std::to_string(kMaxSimPeers) + ")");
      return;
    }
    ended_by_.resize(static_cast<size_t>(total), -1);
  }

  void check_groups(const std::vector<std::vector<int>>& groups) {
    std::vector<int> group_of(ended_by_.size(), -1);
    for (size_t g = 0; g < groups.size(); ++g) {
      const std::string where = "group " + std::to_string(g) + ": ";
      if (groups[g].empty()) add("group " + std::to_string(g) + " is empty");
      for (const int peer : groups[g]) {
        if (!check_live(peer, where)) continue;
        int& first = group_of[static_cast<size_t>(peer)];
        if (first >= 0) {
          add(where + "peer " + std::to_string(peer) +
              (first == static_cast<int>(g)
                   ? " is listed twice"
                   : " is also in group " + std::to_string(first) + " (groups must be disjoint)"));
        } else {
          first = static_cast<int>(g);
        }
      }
    }
  }

  void check_slow_link(const SimEvent& e) {
    if (e.all_links) {
      if (!e.groups.empty()) add("between: not with \"all\": true (it slows every link)");
    } else {
      if (e.groups.size() != 2) {
        add("between: expected exactly 2 groups of peers, got " + std::to_string(e.groups.size()));
      }
      check_groups(e.groups);
    }
    if (e.latency_ms < 0) add("latency_ms: expected >= 0, got " + std::to_string(e.latency_ms));
    if (!(e.bandwidth_mbit_s >= 0) || std::isinf(e.bandwidth_mbit_s)) {
      add("bandwidth_mbit_s: expected a number >= 0, got " + num(e.bandwidth_mbit_s));
    }
    if (e.latency_ms == 0 && e.bandwidth_mbit_s == 0) {
      add("needs latency_ms > 0 or bandwidth_mbit_s > 0 (otherwise nothing is slowed)");
    }
  }

  const SimConfig& sim_;
  std::vector<std::string>& problems_;
  std::vector<int> ended_by_;  // per index started so far: the event that ended it, or -1
  std::string label_;
  int last_s_ = -1;     // the event with the latest at_s so far
  int last_step_ = -1;  // the event with the latest at_step so far
};

}  // namespace

core::Status check_sim_script(const SimConfig& sim) {
  std::vector<std::string> problems;
  const bool peers_ok = sim.peers >= 1 && sim.peers <= kMaxSimPeers;
  if (!peers_ok) {
    problems.push_back("sim.peers: expected an integer in [1, " + std::to_string(kMaxSimPeers) +
                       "], got " + std::to_string(sim.peers));
  }
  if (!(sim.duration_s >= 0) || std::isinf(sim.duration_s)) {
    problems.push_back("sim.duration_s: expected a number >= 0, got " + num(sim.duration_s));
  } else if (sim.average_only && sim.duration_s == 0) {
    problems.push_back(
        "sim.duration_s: must be > 0 with sim.average_only (without training there is no "
        "budget to end the run)");
  }
  if (!(sim.sample_every_s > 0) || std::isinf(sim.sample_every_s)) {
    problems.push_back("sim.sample_every_s: expected a number > 0, got " + num(sim.sample_every_s));
  }
  if (sim.eval_rows < 0) {
    problems.push_back("sim.eval_rows: expected a non-negative integer, got " +
                       std::to_string(sim.eval_rows));
  }
  if (peers_ok) {  // the walk needs a sane peer count
    ScriptWalk walk(sim, problems);
    for (size_t i = 0; i < sim.events.size(); ++i) walk.check_event(i);
  }
  if (problems.empty()) return core::Status::ok();
  std::string message;
  for (const auto& p : problems) {
    if (!message.empty()) message += '\n';
    message += p;
  }
  return core::invalid_argument(message);
}

}  // namespace gossip::sim
