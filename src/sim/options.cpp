// The "sim" section of a config file (read only by gossip-sim): the swarm size,
// the metrics cadence and the event script. Values and the script as a
// whole are checked by check_sim_script (script.cpp), which catches what
// a reader of one event cannot see (a peer killed twice, an index that does
// not exist yet, events out of time order).
//
// Shape (every key optional; "events" defaults to none):
//   "sim": {"peers": 8, "average_only": false, "duration_s": 0, "sample_every_s": 2,
//           "eval_rows": 2000,
//           "events": [{"at_s": 30, "kill": [1, 2]},       // abrupt, no LEAVE
//                      {"at_step": 400, "leave": [3]},     // graceful
//                      {"at_s": 40, "start": 4},           // 4 new peers join through a
//                                                          // random live member
//                      {"at_s": 50, "partition": [[0, 1, 2], [3, 4, 5]]},
//                      {"at_s": 70, "heal": true},
//                      {"at_s": 80, "slow_link": {"between": [[0, 1], [2, 3]],
//                                                "latency_ms": 50, "bandwidth_mbit_s": 100}},
//                      {"at_s": 85, "slow_link": {"all": true, "bandwidth_mbit_s": 20}},
//                      {"at_s": 90, "drop": 0.2}]}
// Each event object holds exactly one time key (at_s: seconds, at_step:
// steps of the most advanced live peer) and exactly one event key. The
// reader checks JSON types and names the key path; check_sim_script checks
// values and the script as a whole, naming the event as
// "sim.events[3] (kill): ...". parse_config runs the check only when the
// section read cleanly, so one typo does not cascade into index errors.
// sim_json writes the section back in the same shape.
#include "gossip/sim/options.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/options/reader.hpp"
#include "script.hpp"

namespace gossip::sim {

namespace {

using options::closest;
using options::Errors;
using options::join_names;
using options::Json;
using options::Section;
using options::show;
using options::whole_number;
using Path = std::filesystem::path;
using script::kMaxSimPeers;
using script::kSimEventNames;
using script::sim_event_path;
using script::sim_past_time;

const std::vector<std::string> kTimeKeys = {"at_s", "at_step"};

// "a, b or c" (or "a and b" with `last` = " and ").
// A non-empty array of peer indices (range checks are check_sim_script's).
bool read_indices(const Json& v, const std::string& path, std::vector<int>& out, Errors& errors) {
  if (!v.is_array() || v.empty()) {
    errors.add(path, "expected a non-empty array of peer indices, got " + show(v));
    return false;
  }
  std::vector<int> list;
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t index = 0;
    if (!whole_number(v[i], INT32_MIN, INT32_MAX, index)) {
      errors.add(path + "[" + std::to_string(i) + "]",
                 "expected a peer index (an integer), got " + show(v[i]));
      return false;
    }
    list.push_back(static_cast<int>(index));
  }
  out = std::move(list);
  return true;
}

// An array of groups, each an array of peer indices.
bool read_groups(const Json& v, const std::string& path, std::vector<std::vector<int>>& out,
                 Errors& errors) {
  if (!v.is_array() || v.empty() || !v[0].is_array()) {
    errors.add(path,
               "expected an array of groups of peer indices ([[0, 1], [2, 3]]), got " + show(v));
    return false;
  }
  std::vector<std::vector<int>> groups(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string element = path + "[" + std::to_string(i) + "]";
    if (!v[i].is_array()) {
      errors.add(element, "expected a group (an array of peer indices), got " + show(v[i]));
      return false;
    }
    // An empty group reads fine; check_sim_script names it.
    if (!v[i].empty() && !read_indices(v[i], element, groups[i], errors)) return false;
  }
  out = std::move(groups);
  return true;
}

bool read_slow_link(const Json& v, const std::string& path, const Path& base_dir, Errors& errors,
                    SimEvent& out) {
  if (!v.is_object()) {
    errors.add(path,
               "expected an object {\"between\": [[...], [...]] or \"all\": true, "
               "\"latency_ms\": ..., \"bandwidth_mbit_s\": ...}, got " +
                   show(v));
    return false;
  }
  const size_t before = errors.size();
  Section s(&v, path, base_dir, errors);
  // A mistyped "all" is its own error; "between" is then not asked for.
  const bool all_unread = s.value("all") != nullptr && !s.boolean("all", out.all_links);
  const Json* between = s.value("between");
  if (between && out.all_links) {
    s.error("between", "give either between (two groups) or \"all\": true (every link), not both");
  } else if (between) {
    read_groups(*between, s.key_path("between"), out.groups, errors);
  } else if (!out.all_links && !all_unread) {
    s.error("between",
            "required: the two groups of peers whose links are slowed (or \"all\": true to slow "
            "every link)");
  }
  s.non_negative("latency_ms", out.latency_ms);
  s.number("bandwidth_mbit_s", out.bandwidth_mbit_s, 0.0, false);
  s.finish();
  return errors.size() == before;
}

// One event object; false (with the problems recorded) when it is unusable.
bool read_event(const Json& v, size_t index, const Path& base_dir, Errors& errors, SimEvent& out) {
  const std::string path = sim_event_path(static_cast<int64_t>(index));
  if (!v.is_object()) {
    errors.add(path, "expected an object with one time key (" + join_names(kTimeKeys) +
                         ") and one event key (" + join_names(kSimEventNames) + "), got " +
                         show(v));
    return false;
  }
  std::vector<std::string> known = kTimeKeys;
  known.insert(known.end(), kSimEventNames.begin(), kSimEventNames.end());
  std::vector<std::string> times;
  std::vector<std::string> kinds;
  bool unknown = false;
  for (const auto& item : v.items()) {
    const std::string& key = item.key();
    if (item.value().is_null()) continue;  // null means absent, as everywhere in a config
    if (std::find(kTimeKeys.begin(), kTimeKeys.end(), key) != kTimeKeys.end()) {
      times.push_back(key);
    } else if (std::find(kSimEventNames.begin(), kSimEventNames.end(), key) !=
               kSimEventNames.end()) {
      kinds.push_back(key);
    } else {
      unknown = true;
      const std::string near = closest(key, known);
      const bool time_like = std::find(kTimeKeys.begin(), kTimeKeys.end(), near) != kTimeKeys.end();
      if (near.empty()) {
        errors.add(path, "unknown key \"" + key + "\" (an event has one of " +
                             join_names(kTimeKeys) + " and one of " + join_names(kSimEventNames) +
                             ")");
      } else {
        errors.add(path, std::string(time_like ? "unknown key \"" : "unknown event key \"") + key +
                             "\" (did you mean " + near + "?)");
      }
    }
  }
  bool ok = !unknown;
  if (kinds.size() > 1) {
    errors.add(path, "has " + join_names(kinds, " and ") +
                         " (one event per entry; list the others as their own entries)");
    ok = false;
  } else if (kinds.empty()) {
    if (!unknown) errors.add(path, "needs one of " + join_names(kSimEventNames, ", "));
    ok = false;
  }
  if (times.size() > 1) {
    errors.add(path, "has both at_s and at_step (give one)");
    ok = false;
  } else if (times.empty()) {
    if (!unknown) errors.add(path, "needs one of at_s, at_step");
    ok = false;
  }
  const std::string label = kinds.size() == 1 ? path + " (" + kinds[0] + ")" : path;

  if (times.size() == 1 && times[0] == "at_s") {
    const Json& t = v["at_s"];
    if (!t.is_number() || !std::isfinite(t.get<double>())) {
      errors.add(path + ".at_s", "expected seconds from the start (a number >= 0), got " + show(t));
      ok = false;
    } else if (t.get<double>() < 0) {
      errors.add(label, sim_past_time("at_s", show(t)));
      ok = false;
    } else {
      out.at_s = t.get<double>();
    }
  } else if (times.size() == 1) {
    const Json& t = v["at_step"];
    int64_t step = 0;
    if (!whole_number(t, INT64_MIN, INT64_MAX, step)) {
      errors.add(path + ".at_step", "expected a step count (an integer >= 0), got " + show(t));
      ok = false;
    } else if (step < 0) {
      errors.add(label, sim_past_time("at_step", show(t)));
      ok = false;
    } else {
      out.at_step = step;
    }
  }
  if (kinds.size() != 1) return false;

  const std::string& kind = kinds[0];
  const std::string key_path = path + "." + kind;
  const Json& value = v[kind];
  out.kind = static_cast<SimEventKind>(
      std::find(kSimEventNames.begin(), kSimEventNames.end(), kind) - kSimEventNames.begin());
  switch (out.kind) {
    case SimEventKind::kKill:
    case SimEventKind::kLeave:
      return read_indices(value, key_path, out.peers, errors) && ok;
    case SimEventKind::kStart: {
      int64_t count = 0;
      if (!whole_number(value, INT32_MIN, INT32_MAX, count)) {
        errors.add(key_path,
                   "expected the number of new peers (an integer >= 1), got " + show(value));
        return false;
      }
      out.count = static_cast<int>(count);
      return ok;
    }
    case SimEventKind::kPartition:
      return read_groups(value, key_path, out.groups, errors) && ok;
    case SimEventKind::kHeal:
      if (!value.is_boolean() || !value.get<bool>()) {
        errors.add(
            key_path,
            "expected true (heal restores every link: ends partitions and slow links), got " +
                show(value));
        return false;
      }
      return ok;
    case SimEventKind::kSlowLink:
      return read_slow_link(value, key_path, base_dir, errors, out) && ok;
    case SimEventKind::kDrop:
      if (!value.is_number() || !std::isfinite(value.get<double>())) {
        errors.add(key_path,
                   "expected the fraction of exchanges that fail (a number in [0, 1]), "
                   "got " +
                       show(value));
        return false;
      }
      out.fraction = value.get<double>();
      return ok;
  }
  return false;
}

}  // namespace

void read_sim(Section& top, Errors& errors, SimConfig& out) {
  Section s = top.child("sim");
  if (!s.present()) return;
  out.present = true;
  int64_t peers = out.peers;
  if (s.integer("peers", peers, 1, kMaxSimPeers)) out.peers = static_cast<int>(peers);
  s.boolean("average_only", out.average_only);
  s.number("duration_s", out.duration_s, 0.0, false);
  s.number("sample_every_s", out.sample_every_s, 0.0, true);
  s.non_negative("eval_rows", out.eval_rows);
  s.non_negative("step_slots", out.step_slots);
  s.service_address("metrics_http", out.metrics_http);
  if (const Json* events = s.value("events")) {
    if (!events->is_array()) {
      s.error("events", "expected an array of event objects, got " + show(*events));
    } else {
      for (size_t i = 0; i < events->size(); ++i) {
        SimEvent e;
        if (read_event((*events)[i], i, s.base_dir(), errors, e)) out.events.push_back(e);
      }
    }
  }
  s.finish();
}

namespace {

// One event: its time key, then its event key in the shape read_sim reads.
Json sim_event_json(const SimEvent& e) {
  Json j = Json::object();
  if (e.at_step >= 0) {
    j["at_step"] = e.at_step;
  } else {
    j["at_s"] = e.at_s;
  }
  const char* name = sim_event_name(e.kind);
  switch (e.kind) {
    case SimEventKind::kKill:
    case SimEventKind::kLeave:
      j[name] = e.peers;
      break;
    case SimEventKind::kStart:
      j[name] = e.count;
      break;
    case SimEventKind::kPartition:
      j[name] = e.groups;
      break;
    case SimEventKind::kHeal:
      j[name] = true;
      break;
    case SimEventKind::kSlowLink:
      j[name] = {{"latency_ms", e.latency_ms}, {"bandwidth_mbit_s", e.bandwidth_mbit_s}};
      if (e.all_links) {
        j[name]["all"] = true;
      } else {
        j[name]["between"] = e.groups;
      }
      break;
    case SimEventKind::kDrop:
      j[name] = e.fraction;
      break;
  }
  return j;
}

}  // namespace

nlohmann::json sim_json(const SimConfig& s) {
  Json events = Json::array();
  for (const auto& e : s.events) events.push_back(sim_event_json(e));
  return {{"peers", s.peers},
          {"average_only", s.average_only},
          {"duration_s", s.duration_s},
          {"sample_every_s", s.sample_every_s},
          {"eval_rows", s.eval_rows},
          {"step_slots", s.step_slots},
          {"events", events},
          {"metrics_http",
           s.metrics_http.enabled() ? Json(s.metrics_http.to_string()) : Json(nullptr)}};
}

}  // namespace gossip::sim
