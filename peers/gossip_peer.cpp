// gossip-peer: one peer of a gossip-train swarm. Thin main: parse the command
// line, load the config, hand over to the peer module, print the summary.
// Exit status (cli::Program): 0 success, 2 bad usage or config (a model that
// does not match the swarm's included), 1 runtime failure (a diverged run
// included). Each failure prints a one-line reason on stderr; once the run
// has begun (the config loaded), the summary line is printed too, its
// "error" naming the cause.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gossip/cli/program.hpp"
#include "gossip/config/config.hpp"
#include "gossip/peer/run.hpp"

int main(int argc, char** argv) {
  using namespace gossip;
  cli::Program program(
      "gossip-peer", {"gossip-peer --config FILE [options]"},
      "Runs one peer: trains its replica of the model on its shard of the data and,\n"
      "when the config enables the network, averages parameters with random members\n"
      "of the swarm. Resumes from the newest valid checkpoint in checkpoint.dir\n"
      "(default: the data dir). Stops when the training budget is spent or on\n"
      "SIGINT/SIGTERM (the current step finishes, a final checkpoint is written;\n"
      "a second signal exits at once). Metrics go to metrics.file as JSON lines.");
  std::string config_path, listen, data_dir;
  std::vector<std::string> joins;
  bool print_config = false;
  auto& app = program.app();
  app.add_option("--config", config_path, "JSON config (see docs/configuration.md); required")
      ->type_name("FILE");
  app.add_option("--join", joins,
                 "join the swarm through this member (repeatable; adds to peer.bootstrap)")
      ->type_name("HOST:PORT");
  app.add_option("--listen", listen, "listen address (overrides peer.listen)")
      ->type_name("HOST:PORT");
  app.add_option("--data-dir", data_dir,
                 "checkpoints, metrics and keys folder (overrides peer.data_dir)")
      ->type_name("DIR");
  app.add_flag("--print-config", print_config,
               "print the effective config (defaults filled in) and exit");
  app.footer(
      "config sections: peer, model, optimizer, data, training, gossip, membership,\n"
      "net, checkpoint, metrics. The last line of stdout is one JSON object with the\n"
      "run's summary (test_accuracy, epochs, steps, wall_s, samples_per_s, device,\n"
      "error: null, or why the run failed). Exit status: 0 success, 2 bad usage or\n"
      "config, 1 runtime failure.");
  if (auto status = program.parse(argc, argv)) return *status;
  if (config_path.empty()) return program.usage_error("--config FILE is required");
  if (app.count("--data-dir") > 0) {
    std::error_code ec;
    if (data_dir.empty()) return program.usage_error("--data-dir needs a folder");
    if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_directory(data_dir, ec)) {
      return program.usage_error("--data-dir " + data_dir + ": exists and is not a folder");
    }
  }

  auto cfg = config::load_config(config_path);
  if (!cfg) return program.fail(cfg.status().message(), cli::kExitUsage);
  if (cfg->sim.present) {
    return program.fail(config_path +
                            ": has a \"sim\" section, so it describes a simulation: "
                            "run it with gossip-sim --config " +
                            config_path,
                        cli::kExitUsage);
  }
  if (!cfg->peer.network && (!joins.empty() || !listen.empty())) {
    return program.usage_error(std::string(joins.empty() ? "--listen" : "--join") +
                               " needs a network, but " + config_path +
                               " sets peer.network false (a swarm of one): set it true or drop "
                               "the option");
  }
  for (const auto& j : joins) {
    auto ep = core::parse_endpoint(j);
    if (!ep) return program.usage_error("--join " + j + ": " + ep.status().message());
    cfg->peer.bootstrap.push_back(*ep);
  }
  if (!listen.empty()) {
    auto ep = core::parse_endpoint(listen, /*allow_port_zero=*/true);
    if (!ep) return program.usage_error("--listen " + listen + ": " + ep.status().message());
    cfg->peer.listen = *ep;
  }
  if (!data_dir.empty()) config::move_data_dir(*cfg, data_dir);
  if (print_config) {
    std::cout << config::to_json(*cfg).dump(2) << std::endl;
    return cli::kExitOk;
  }

  auto summary = peer::run_peer(*cfg, cli::stop_on_signals());
  if (!summary) {
    return program.report(peer::to_json(peer::failed_run(*cfg, summary.status())),
                          cli::exit_status(summary.status()));
  }
  // A run that failed after training began (a diverged loss, a backend error,
  // a final checkpoint not written) still has a summary describing it.
  return program.report(peer::to_json(*summary));
}
