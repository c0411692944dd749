// gossip-sim: many real peers in one process (module sim). Thin main: parse
// the command line, load the config, hand over to sim::run_simulation, print
// the summary as the last line of stdout.
// Exit status (cli::Program): 0 success, 2 bad usage or config, 1 runtime
// failure: the simulation could not run, a peer failed, or no peer finished
// (the summary's "error" says which). Once the run has begun, the summary
// line is printed in every case.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "gossip/cli/program.hpp"
#include "gossip/config/config.hpp"
#include "gossip/core/log.hpp"
#include "gossip/sim/simulation.hpp"

namespace {

std::string default_out(const std::string& name) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + name + "-" + stamp;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gossip;
  cli::Program program(
      "gossip-sim", {"gossip-sim --config FILE [--peers N] [--seed S] [--out DIR]"},
      "Runs N real peers in one process: each trains its replica on its shard and\n"
      "averages with random members over real loopback TCP with real encryption and\n"
      "membership. The config is a peer config plus a \"sim\" section (peers, events,\n"
      "sampling; see docs/simulation.md). Every sim.sample_every_s seconds the\n"
      "simulation looks at every replica and appends swarm-wide truth to\n"
      "DIR/metrics.jsonl; at the end it writes DIR/report.html and DIR/summary.json\n"
      "and prints the summary as one JSON object on the last line of stdout.\n"
      "SIGINT/SIGTERM ends the run early (peers leave gracefully, the report is\n"
      "still written; a second signal exits at once).");
  sim::SimOptions options;
  std::string config_path, out;
  int peers = 0;
  auto& app = program.app();
  app.add_option("--config", config_path, "JSON config with a \"sim\" section; required")
      ->type_name("FILE");
  app.add_option("--peers", peers, "peers at the start (overrides sim.peers)")->type_name("N");
  app.add_option("--seed", options.seed,
                 "model, shard, join and drop seed (default " + std::to_string(options.seed) + ")")
      ->type_name("S")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 62).description(""));
  app.add_option("--out", out,
                 "output folder (default runs/<config name>-<date-time>); must not hold an "
                 "earlier run")
      ->type_name("DIR");
  app.footer(
      "Peers log warnings and errors only (GOSSIP_LOG=info for everything).\n"
      "Exit status: 0 success, 2 bad usage or config, 1 runtime failure (the run\n"
      "could not go on, a peer failed, or no peer finished; the summary's \"error\"\n"
      "says which).");
  if (auto status = program.parse(argc, argv)) return *status;
  if (config_path.empty()) return program.usage_error("--config FILE is required");

  auto cfg = config::load_config(config_path);
  if (!cfg) return program.fail(cfg.status().message(), cli::kExitUsage);
  options.config = *cfg;
  if (app.count("--peers") > 0) options.config.sim.peers = peers;
  options.config_file = config_path;
  options.name = std::filesystem::path(config_path).stem().string();
  options.out = out.empty() ? default_out(options.name) : out;
  if (auto st = sim::check_options(options); !st) {
    return program.fail(app.count("--peers") > 0 && cfg->sim.present
                            ? "with --peers " + std::to_string(peers) + ": " + st.message()
                            : st.message(),
                        cli::kExitUsage);
  }
  if (!std::getenv("GOSSIP_LOG")) core::set_log_level(core::LogLevel::kWarn);

  const auto& stop = cli::stop_on_signals();
  std::signal(SIGPIPE, SIG_IGN);
  std::printf(
      "gossip-sim: %d peers, %s, output in %s\n", options.config.sim.peers,
      options.config.sim.average_only ? "averaging only" : options.config.model.describe().c_str(),
      options.out.string().c_str());
  std::fflush(stdout);
  auto summary = sim::run_simulation(options, stop);
  if (!summary) {
    return program.report({{"type", "final"}, {"error", summary.status().message()}},
                          cli::exit_status(summary.status()));
  }
  if ((*summary)["report"].is_string()) {
    std::printf("report: %s\n", (*summary)["report"].get<std::string>().c_str());
  }
  return program.report(*summary);
}
