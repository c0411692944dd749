// Config loading: JSON text -> Config, section by section through each
// module's reader, then the checks that span sections; to_json through each
// module's writer; plus the dataset check and the backend options.
//
// All problems are collected and reported together, one per line, so a user
// fixes a config in one pass rather than one error per run.
#include "gossip/config/config.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unordered_set>
#include <utility>

#include "gossip/options/reader.hpp"

namespace gossip::config {

namespace {

using options::Json;

// Where the parser stands inside nested objects, to name duplicate keys.
struct Frame {
  std::string path;
  std::unordered_set<std::string> keys;
  std::string last_key;
  bool is_object = false;
};

// Parses JSON text (comments allowed), reporting duplicate keys as errors
// (nlohmann would keep the last silently). Syntax errors come back as a
// Status with line and column.
core::Result<Json> parse_json(const std::string& text, options::Errors& errors) {
  std::vector<Frame> stack;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    using E = Json::parse_event_t;
    if (event == E::object_start || event == E::array_start) {
      Frame f;
      if (!stack.empty()) {
        const Frame& parent = stack.back();
        if (!parent.is_object) {
          f.path = parent.path + "[]";
        } else {
          f.path = parent.path.empty() ? parent.last_key : parent.path + "." + parent.last_key;
        }
      }
      f.is_object = event == E::object_start;
      stack.push_back(std::move(f));
    } else if (event == E::object_end || event == E::array_end) {
      if (!stack.empty()) stack.pop_back();
    } else if (event == E::key && !stack.empty()) {
      Frame& f = stack.back();
      f.last_key = parsed.get<std::string>();
      if (!f.keys.insert(f.last_key).second) {
        errors.add(f.path.empty() ? f.last_key : f.path + "." + f.last_key,
                   "duplicate key (each key may appear once per object)");
      }
    }
    return true;
  };
  try {
    return Json::parse(text, callback, /*allow_exceptions=*/true,
                       /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    // Line and column of the byte where parsing stopped.
    size_t line = 1;
    size_t column = 1;
    const size_t end = std::min(e.byte > 0 ? e.byte - 1 : 0, text.size());
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    const auto colon = what.find(": ", what.find("parse error"));
    if (colon != std::string::npos) what = what.substr(colon + 2);
    return core::invalid_argument("line " + std::to_string(line) + ", column " +
                                  std::to_string(column) + ": invalid JSON: " + what);
  }
}

// The checks that need more than one section.
void check_across(const Config& c, options::Errors& errors) {
  const auto& schedule = c.optimizer.schedule;
  if (schedule.kind == train::ScheduleKind::kCosine && schedule.total_steps == 0 &&
      c.training.epochs == 0 && c.training.steps == 0) {
    errors.add("optimizer.schedule.total_steps",
               "required for schedule type cosine when training runs until stopped "
               "(no training.epochs or training.steps to take it from)");
  }
  if (c.metrics.http.enabled() && c.sim.present) {
    errors.add("metrics.http",
               "gossip-sim serves one /metrics for all its peers: set sim.metrics_http instead");
  } else if (c.metrics.http.enabled() && !c.peer.network) {
    errors.add("metrics.http",
               "needs peer.network true (a peer training alone runs no network threads)");
  }
}

// The paths that default into peer.data_dir, each with its name in the
// folder ("" for the folder itself): the one list that filling the defaults
// and moving the folder (--data-dir) both read.
std::array<std::pair<Path*, const char*>, 4> data_dir_paths(Config& c) {
  return {{{&c.checkpoint.dir, ""},
           {&c.metrics.file, "metrics.jsonl"},
           {&c.peer.identity_key, "identity.key"},
           {&c.peer.swarm_key, "swarm.key"}}};
}

Path in_data_dir(const Path& dir, const char* name) {
  return *name ? dir / name : dir;
}

void fill_data_dir_defaults(Config& c) {
  for (const auto& [path, name] : data_dir_paths(c)) {
    if (path->empty()) *path = in_data_dir(c.peer.data_dir, name);
  }
}

}  // namespace

core::Result<Config> parse_config(const std::string& json_text, const Path& base_dir) {
  std::error_code ec;
  Path base = std::filesystem::absolute(base_dir.empty() ? Path(".") : base_dir, ec);
  if (ec) return core::invalid_argument("config folder " + base_dir.string() + ": " + ec.message());
  base = base.lexically_normal();
  if (!base.has_filename() && base != base.root_path()) {
    base = base.parent_path();  // drop the trailing "/" lexically_normal leaves on "dir/."
  }

  options::Errors errors;
  auto root = parse_json(json_text, errors);
  if (!root) return root.status();
  if (!root->is_object()) {
    return core::invalid_argument("expected a JSON object at the top level, got " +
                                  options::show(*root));
  }

  Config c;
  options::Section top(&root.value(), "", base, errors);
  peer::read_peer(top, c.peer);
  data::read_data(top, c.data);
  train::read_model(top, {c.data.dataset.type, c.data.regression()}, c.model);
  if (c.model.is_gpt()) c.data.dataset.window = c.model.gpt.block + 1;
  train::read_optimizer(top, c.optimizer);
  train::read_training(top, c.training);
  averaging::read_gossip(top, c.gossip);
  membership::read_membership(top, c.membership);
  net::read_net(top, c.net);
  peer::read_checkpoint(top, c.checkpoint);
  peer::read_metrics(top, c.metrics);
  const size_t errors_before_sim = errors.size();
  sim::read_sim(top, errors, c.sim);
  const bool sim_read_cleanly = errors.size() == errors_before_sim;
  top.finish();
  fill_data_dir_defaults(c);
  if (errors.empty()) check_across(c, errors);
  // The script walk only makes sense over events that all read cleanly (a
  // dropped "start" would turn later indices into false errors).
  if (c.sim.present && sim_read_cleanly) {
    const core::Status script = sim::check_sim_script(c.sim);
    std::istringstream lines(script.message());
    for (std::string line; !script.is_ok() && std::getline(lines, line);) errors.add("", line);
  }

  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors.list()) {
      if (!message.empty()) message += '\n';
      message += e;
    }
    return core::invalid_argument(message);
  }
  return c;
}

void move_data_dir(Config& config, const Path& dir) {
  const Path old_dir = config.peer.data_dir;
  const Path new_dir = std::filesystem::absolute(dir).lexically_normal();
  for (const auto& [path, name] : data_dir_paths(config)) {
    if (*path == in_data_dir(old_dir, name)) *path = in_data_dir(new_dir, name);
  }
  config.peer.data_dir = new_dir;
}

core::Result<Config> load_config(const Path& path) {
  std::error_code dir_ec;
  if (std::filesystem::is_directory(path, dir_ec)) {
    return core::invalid_argument(path.string() + " is a directory, not a config file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return core::not_found(path.string() + ": cannot open config file (" +
                           (std::filesystem::exists(path) ? "permission denied" : "no such file") +
                           ")");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return core::io_error(path.string() + ": read failed");
  auto config = parse_config(text.str(), path.parent_path());
  if (config) return config;
  // Prefix every line with the file, as compilers do.
  std::string message;
  std::istringstream lines(config.status().message());
  for (std::string line; std::getline(lines, line);) {
    if (!message.empty()) message += '\n';
    message.append(path.string()).append(": ").append(line);
  }
  return core::Status(config.status().code(), message);
}

core::Status validate_against_dataset(const Config& config, int features, int classes) {
  if (config.model.is_gpt()) {
    // The config made the windows from model.block; a dataset built
    // elsewhere (a host's shared copy) must have been made the same way.
    const int window = config.model.gpt.block + 1;
    if (features != window) {
      return core::invalid_argument(
          "model.block: the data's windows hold " + std::to_string(features) +
          " bytes, the model needs block + 1 = " + std::to_string(window));
    }
    return core::Status::ok();
  }
  const auto& layers = config.model.layers;
  if (layers.size() < 2) return core::invalid_argument("model.layers: needs at least 2 entries");
  const std::string& dataset = config.data.dataset.type;
  if (layers.front() != features) {
    return core::invalid_argument(
        "model.layers: the first entry must equal the dataset's feature count (" +
        std::to_string(features) + " in " + dataset + "), got " + std::to_string(layers.front()));
  }
  if (layers.back() != classes) {
    const char* what = config.data.regression() ? "target count" : "class count";
    return core::invalid_argument("model.layers: the last entry must equal the dataset's " +
                                  std::string(what) + " (" + std::to_string(classes) + " in " +
                                  dataset + "), got " + std::to_string(layers.back()));
  }
  return core::Status::ok();
}

nlohmann::json to_json(const Config& c) {
  Json j = {{"peer", peer::peer_json(c.peer)},
            {"model", train::model_json(c.model)},
            {"optimizer", train::optimizer_json(c.optimizer)},
            {"data", data::data_json(c.data)},
            {"training", train::training_json(c.training)},
            {"gossip", averaging::gossip_json(c.gossip)},
            {"membership", membership::membership_json(c.membership)},
            {"net", net::net_json(c.net)},
            {"checkpoint", peer::checkpoint_json(c.checkpoint)},
            {"metrics", peer::metrics_json(c.metrics)}};
  // Only when present, so a peer config's effective form has no "sim" key.
  if (c.sim.present) j["sim"] = sim::sim_json(c.sim);
  return j;
}

train::BackendOptions backend_options(const Config& config) {
  train::BackendOptions o;
  o.device = config.training.device;
  o.cpu_threads = config.training.cpu_threads > 0
                      ? config.training.cpu_threads
                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  o.allow_tf32 = config.training.allow_tf32;
  // The MLP evaluates training.eval.batch rows at once. The GPT's scratch
  // holds every activation of every window (about 1 MB per window of the
  // sim-gpt model), so it is sized for the training batch and evaluation runs
  // in chunks of that many windows: one eval.batch-sized scratch per peer made
  // a 4-peer sim-gpt run peak at 6.4 GB.
  o.max_batch = config.model.is_gpt() ? config.data.batch
                                      : std::max(config.data.batch, config.training.eval.batch);
  return o;
}

}  // namespace gossip::config
