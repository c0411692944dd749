// What the "sim" section's reader (options.cpp) and check_sim_script
// (script.cpp) share: the event names, the peer cap and the wording of event
// paths and past times. Private to the sim module.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gossip::sim::script {

extern const std::vector<std::string> kSimEventNames;  // in SimEventKind order
constexpr int kMaxSimPeers = 1024;  // full-view membership is sized for ~1000 peers
// "sim.events[3]".
std::string sim_event_path(int64_t index);
// "at_s -5 is a time in the past (...)".
std::string sim_past_time(const char* key, const std::string& value);

}  // namespace gossip::sim::script
