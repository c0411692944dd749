// One reader per config section, private to the config module.
//
// Each takes the top-level Section, reads its own sub-object with defaults
// already in `out`, and records problems through the Section. Checks that span
// sections (epochs vs cosine total_steps, paths under data_dir) live in
// config.cpp after all sections are read.
#pragma once

#include "gossip/config/config.hpp"
#include "reader.hpp"

namespace gossip::config::detail {

// The names accepted for each "type"-like key, in the order shown to users.
extern const std::vector<std::string> kModelTypeNames;
extern const std::vector<std::string> kActivationNames;
extern const std::vector<std::string> kLossNames;
extern const std::vector<std::string> kOptimizerNames;
extern const std::vector<std::string> kScheduleNames;
extern const std::vector<std::string> kDatasetNames;
extern const std::vector<std::string> kShardNames;
extern const std::vector<std::string> kWireNames;
extern const std::vector<std::string> kDeviceNames;

void read_peer(Section& top, PeerConfig& out);
// Needs the data section (read first) to match the loss to the task.
void read_model(Section& top, const DataConfig& data, train::ModelSpec& out);
void read_optimizer(Section& top, train::OptimizerSpec& out);
void read_training(Section& top, TrainingConfig& out);
void read_data(Section& top, DataConfig& out);
void read_gossip(Section& top, GossipConfig& out);
void read_membership(Section& top, MembershipConfig& out);
void read_net(Section& top, NetConfig& out);
void read_checkpoint(Section& top, CheckpointConfig& out);
void read_metrics(Section& top, MetricsConfig& out);
// A ServiceAddress at `key` of `s` (metrics.http, sim.metrics_http).
void service_address(Section& s, const char* key, ServiceAddress& out);
// The optional "sim" section (sets out.present when there is one). Checks
// JSON types, keys and the section's own ranges; event objects are read key
// by key, so their problems go to `errors` directly. Event values and the
// script as a whole are check_sim_script's (parse_config runs it when this
// added no errors).
void read_sim(Section& top, Errors& errors, SimConfig& out);

// Shared by the sim reader and check_sim_script (sim_script.cpp).
extern const std::vector<std::string> kSimEventNames;  // in SimEventKind order
constexpr int kMaxSimPeers = 1024;  // full-view membership is sized for ~1000 peers
// "sim.events[3]".
std::string sim_event_path(int64_t index);
// "at_s -5 is a time in the past (...)".
std::string sim_past_time(const char* key, const std::string& value);

}  // namespace gossip::config::detail
