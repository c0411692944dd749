// Config loading: JSON text -> Config, section by section, then the checks
// that span sections; plus the dataset check and the backend options.
//
// All problems are collected and reported together, one per line, so a user
// fixes a config in one pass rather than one error per run.
#include "gossip/config/config.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_set>
#include <utility>

#include "sections.hpp"

namespace gossip::config {

namespace {

template <typename Enum>
core::Result<Enum> parse_named(const std::vector<std::string>& names, const std::string& name,
                               const char* what) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  std::string list;
  for (const auto& n : names) {
    if (!list.empty()) list += ", ";
    list += n;
  }
  return core::invalid_argument("unknown " + std::string(what) + " \"" + name + "\" (expected " +
                                list + ")");
}

template <typename Enum>
const char* name_of(const std::vector<std::string>& names, Enum e) {
  const auto i = static_cast<size_t>(e);
  return i < names.size() ? names[i].c_str() : "?";
}

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
core::Result<detail::Json> parse_json(const std::string& text, detail::Errors& errors) {
  std::vector<Frame> stack;
  auto callback = [&](int /*depth*/, detail::Json::parse_event_t event, detail::Json& parsed) {
    using E = detail::Json::parse_event_t;
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
    return detail::Json::parse(text, callback, /*allow_exceptions=*/true,
                               /*ignore_comments=*/true);
  } catch (const detail::Json::parse_error& e) {
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
void check_across(const Config& c, detail::Errors& errors) {
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

bool DataConfig::regression() const {
  return dataset.type == "synthetic_regression" ||
         (dataset.type == "csv" && !dataset.csv.target_columns.empty());
}

core::Result<WireFormat> parse_wire_format(const std::string& name) {
  return parse_named<WireFormat>(detail::kWireNames, name, "wire format");
}
const char* wire_format_name(WireFormat f) {
  return name_of(detail::kWireNames, f);
}

core::Result<Config> parse_config(const std::string& json_text, const Path& base_dir) {
  std::error_code ec;
  Path base = std::filesystem::absolute(base_dir.empty() ? Path(".") : base_dir, ec);
  if (ec) return core::invalid_argument("config folder " + base_dir.string() + ": " + ec.message());
  base = base.lexically_normal();
  if (!base.has_filename() && base != base.root_path()) {
    base = base.parent_path();  // drop the trailing "/" lexically_normal leaves on "dir/."
  }

  detail::Errors errors;
  auto root = parse_json(json_text, errors);
  if (!root) return root.status();
  if (!root->is_object()) {
    return core::invalid_argument("expected a JSON object at the top level, got " +
                                  detail::show(*root));
  }

  Config c;
  detail::Section top(&root.value(), "", base, errors);
  detail::read_peer(top, c.peer);
  detail::read_data(top, c.data);
  detail::read_model(top, c.data, c.model);
  if (c.model.is_gpt()) c.data.dataset.window = c.model.gpt.block + 1;
  detail::read_optimizer(top, c.optimizer);
  detail::read_training(top, c.training);
  detail::read_gossip(top, c.gossip);
  detail::read_membership(top, c.membership);
  detail::read_net(top, c.net);
  detail::read_checkpoint(top, c.checkpoint);
  detail::read_metrics(top, c.metrics);
  const size_t errors_before_sim = errors.size();
  detail::read_sim(top, errors, c.sim);
  const bool sim_read_cleanly = errors.size() == errors_before_sim;
  top.finish();
  fill_data_dir_defaults(c);
  if (errors.empty()) check_across(c, errors);
  // The script walk only makes sense over events that all read cleanly (a
  // dropped "start" would turn later indices into false errors).
  if (c.sim.present && sim_read_cleanly) {
    const core::Status script = check_sim_script(c.sim);
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

core::Result<train::ModelSpec> parse_model(const nlohmann::json& model) {
  if (!model.is_object()) return core::invalid_argument("model: expected an object");
  // read_model checks the model against its data: give it data of the kind
  // the model trains on.
  DataConfig data;
  const std::string type = model.value("type", std::string("mlp"));
  data.dataset.type = type == "gpt"                      ? "text"
                      : model.value("loss", "") == "mse" ? "synthetic_regression"
                                                         : "fashion_mnist";
  detail::Errors errors;
  const nlohmann::json top = {{"model", model}};
  detail::Section section(&top, "", Path("/"), errors);
  train::ModelSpec spec;
  detail::read_model(section, data, spec);
  if (!errors.empty()) return core::invalid_argument(errors.list().front());
  return spec;
}

train::BackendOptions backend_options(const Config& config) {
  train::BackendOptions o;
  o.device = config.training.device;
  o.cpu_threads = config.training.cpu_threads > 0
                      ? config.training.cpu_threads
                      : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  o.allow_tf32 = config.training.allow_tf32;
  o.max_batch = std::max(config.data.batch, config.training.eval.batch);
  return o;
}

}  // namespace gossip::config
