// gossip-peer: one peer of a gossip-train swarm. Thin main: parse the command
// line, load the config, hand over to the peer module, print the summary.
// Exit status: 0 success, 2 bad usage or config (a model that does not match
// the swarm's included), 1 runtime failure (a diverged run included). Each
// failure prints a one-line reason on stderr; once the run has begun (the
// config loaded), the summary line is printed too, its "error" naming the
// cause.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/config/config.hpp"
#include "gossip/core/log.hpp"
#include "gossip/peer/run.hpp"

namespace {

constexpr const char* kUsage = R"(usage: gossip-peer --config FILE [options]

Runs one peer: trains its replica of the model on its shard of the data and,
when the config enables the network, averages parameters with random members
of the swarm. Resumes from the newest valid checkpoint in checkpoint.dir
(default: the data dir). Stops when the training budget is spent or on
SIGINT/SIGTERM (the current step finishes, a final checkpoint is written;
a second signal exits at once). Metrics go to metrics.file as JSON lines.

options:
  --config FILE       JSON config (see docs/configuration.md); required
  --join HOST:PORT    join the swarm through this member (repeatable; adds to
                      peer.bootstrap)
  --listen HOST:PORT  listen address (overrides peer.listen)
  --data-dir DIR      checkpoints, metrics and keys folder (overrides peer.data_dir)
  --print-config      print the effective config (defaults filled in) and exit
  -h, --help          this text

config sections: peer, model, optimizer, data, training, gossip, membership,
net, checkpoint, metrics. The last line of stdout is one JSON object with the
run's summary (test_accuracy, epochs, steps, wall_s, samples_per_s, device,
error: null, or why the run failed). Exit status: 0 success, 2 bad usage or
config, 1 runtime failure.
)";

std::atomic<bool> g_stop{false};

void on_signal(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second signal exits at once
}

int usage_error(const std::string& why) {
  std::fprintf(stderr, "gossip-peer: %s (try --help)\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gossip;
  std::string config_path, listen, data_dir;
  std::vector<std::string> joins;
  bool print_config = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--config") {
      if (!value(config_path)) return usage_error("--config needs a file");
    } else if (arg == "--join") {
      if (!value(v)) return usage_error("--join needs HOST:PORT");
      joins.push_back(v);
    } else if (arg == "--listen") {
      if (!value(listen)) return usage_error("--listen needs HOST:PORT");
    } else if (arg == "--data-dir") {
      if (!value(data_dir) || data_dir.empty()) return usage_error("--data-dir needs a folder");
      std::error_code ec;
      if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_directory(data_dir, ec)) {
        return usage_error("--data-dir " + data_dir + ": exists and is not a folder");
      }
    } else if (arg == "--print-config") {
      print_config = true;
    } else {
      return usage_error("unknown option '" + arg + "'");
    }
  }
  if (config_path.empty()) return usage_error("--config FILE is required");

  auto cfg = config::load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "gossip-peer: %s\n", cfg.status().message().c_str());
    return 2;
  }
  if (cfg->sim.present) {
    std::fprintf(stderr, "gossip-peer: %s: has a \"sim\" section, so it describes a simulation: "
                 "run it with gossip-sim --config %s\n", config_path.c_str(), config_path.c_str());
    return 2;
  }
  if (!cfg->peer.network && (!joins.empty() || !listen.empty())) {
    return usage_error(std::string(joins.empty() ? "--listen" : "--join") + " needs a network, "
                       "but " + config_path + " sets peer.network false (a swarm of one): set "
                       "it true or drop the option");
  }
  for (const auto& j : joins) {
    auto ep = config::parse_endpoint(j);
    if (!ep) return usage_error("--join " + j + ": " + ep.status().message());
    cfg->peer.bootstrap.push_back(*ep);
  }
  if (!listen.empty()) {
    auto ep = config::parse_endpoint(listen, /*allow_port_zero=*/true);
    if (!ep) return usage_error("--listen " + listen + ": " + ep.status().message());
    cfg->peer.listen = *ep;
  }
  if (!data_dir.empty()) {
    // Paths that defaulted to the config's data_dir follow the override.
    const std::filesystem::path old_dir = cfg->peer.data_dir;
    const std::filesystem::path new_dir = std::filesystem::absolute(data_dir).lexically_normal();
    auto follow = [&](std::filesystem::path& p, const std::filesystem::path& default_path,
                      const std::filesystem::path& new_path) {
      if (p == default_path) p = new_path;
    };
    follow(cfg->checkpoint.dir, old_dir, new_dir);
    follow(cfg->metrics.file, old_dir / "metrics.jsonl", new_dir / "metrics.jsonl");
    follow(cfg->peer.identity_key, old_dir / "identity.key", new_dir / "identity.key");
    follow(cfg->peer.swarm_key, old_dir / "swarm.key", new_dir / "swarm.key");
    cfg->peer.data_dir = new_dir;
  }
  if (print_config) {
    std::cout << config::to_json(*cfg).dump(2) << std::endl;
    return 0;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto summary = peer::run_peer(*cfg, g_stop);
  if (!summary) {
    std::cout << peer::to_json(peer::failed_run(*cfg, summary.status())).dump() << std::endl;
    std::fprintf(stderr, "gossip-peer: %s\n", summary.status().message().c_str());
    return summary.status().code() == core::Code::kInvalidArgument ? 2 : 1;
  }
  std::cout << peer::to_json(*summary).dump() << std::endl;
  if (!summary->error.empty()) {
    // Failed after training began (a diverged loss, a backend error, a final
    // checkpoint not written): the summary still describes the run.
    std::fprintf(stderr, "gossip-peer: %s\n", summary->error.c_str());
    return 1;
  }
  return 0;
}
