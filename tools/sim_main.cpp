// gossip-sim: many real peers in one process (module sim). Thin main: parse
// the command line, load the config, hand over to sim::run_simulation, print
// the summary as the last line of stdout.
// Exit status: 0 success, 2 bad usage or config, 1 runtime failure: the
// simulation could not run, a peer failed, or no peer finished (the summary's
// "error" says which). Once the run has begun, the summary line is printed
// in every case.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "gossip/config/config.hpp"
#include "gossip/core/log.hpp"
#include "gossip/sim/simulation.hpp"

namespace {

constexpr const char* kUsage = R"(usage: gossip-sim --config FILE [--peers N] [--seed S] [--out DIR]

Runs N real peers in one process: each trains its replica on its shard and
averages with random members over real loopback TCP with real encryption and
membership. The config is a peer config plus a "sim" section (peers, events,
sampling; see docs/simulation.md). Every sim.sample_every_s seconds the
simulation looks at every replica and appends swarm-wide truth to
DIR/metrics.jsonl; at the end it writes DIR/report.html and DIR/summary.json
and prints the summary as one JSON object on the last line of stdout.
SIGINT/SIGTERM ends the run early (peers leave gracefully, the report is
still written; a second signal exits at once).

options:
  --config FILE  JSON config with a "sim" section; required
  --peers N      peers at the start (overrides sim.peers)
  --seed S       model, shard, join and drop seed (default 1)
  --out DIR      output folder (default runs/<config name>-<date-time>); must
                 not hold an earlier run
  -h, --help     this text

Peers log warnings and errors only (GOSSIP_LOG=info for everything).
Exit status: 0 success, 2 bad usage or config, 1 runtime failure (the run
could not go on, a peer failed, or no peer finished; the summary's "error"
says which).
)";

std::atomic<bool> g_stop{false};

void on_signal(int) {
  if (g_stop.exchange(true)) std::_Exit(130);
}

int usage_error(const std::string& why) {
  std::fprintf(stderr, "gossip-sim: %s (try --help)\n", why.c_str());
  return 2;
}

bool parse_count(const std::string& text, long long min, long long max, long long& out) {
  try {
    size_t used = 0;
    out = std::stoll(text, &used);
    return used == text.size() && out >= min && out <= max;
  } catch (...) {
    return false;
  }
}

std::string default_out(const std::string& name) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + name + "-" + stamp;
}

// What would make the simulation refuse to start, checked before the start
// line is printed: a config without a sim section, an averaging-only run
// without a time-based schedule, an --out that is not a usable, fresh folder.
// (sim::run_simulation checks the same again.)
std::string check_before_start(const gossip::config::Config& cfg, const std::string& config_path,
                               const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  if (!cfg.sim.present) {
    return config_path + ": has no \"sim\" section, so it is not a simulation (add one, see "
           "configs/sim-fashion-mnist.json; a peer config runs with gossip-peer --config " +
           config_path + ")";
  }
  if (cfg.sim.average_only && cfg.gossip.interval_ms <= 0) {
    return config_path + ": gossip.interval_ms: averaging only (sim.average_only) needs a "
           "time-based schedule, interval_ms > 0";
  }
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) {
    return "--out " + out.string() + ": exists and is not a folder";
  }
  if (fs::exists(out / "metrics.jsonl", ec)) {
    return "--out " + out.string() + ": holds an earlier run (metrics.jsonl); choose a new folder";
  }
  fs::create_directories(out, ec);
  if (ec) return "--out " + out.string() + ": cannot create the folder: " + ec.message();
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gossip;
  std::string config_path, out;
  long long peers = 0, seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string& v) {
      if (i + 1 >= argc) return false;
      v = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--config") {
      if (!value(config_path)) return usage_error("--config needs a file");
    } else if (arg == "--peers") {
      if (!value(v) || !parse_count(v, 1, 1024, peers)) {
        return usage_error("--peers needs a whole number from 1 to 1024");
      }
    } else if (arg == "--seed") {
      if (!value(v) || !parse_count(v, 0, (1LL << 62), seed)) {
        return usage_error("--seed needs a non-negative whole number");
      }
    } else if (arg == "--out") {
      if (!value(out)) return usage_error("--out needs a folder");
    } else {
      return usage_error("unknown option '" + arg + "'");
    }
  }
  if (config_path.empty()) return usage_error("--config FILE is required");

  auto cfg = config::load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "gossip-sim: %s\n", cfg.status().message().c_str());
    return 2;
  }
  if (peers > 0 && cfg->sim.present) {  // without a sim section: the error below
    cfg->sim.peers = static_cast<int>(peers);
    if (auto st = config::check_sim_script(cfg->sim); !st) {
      std::fprintf(stderr, "gossip-sim: %s: with --peers %lld: %s\n", config_path.c_str(), peers,
                   st.message().c_str());
      return 2;
    }
  }
  if (!std::getenv("GOSSIP_LOG")) core::set_log_level(core::LogLevel::kWarn);

  sim::SimOptions options;
  options.config = *cfg;
  options.name = std::filesystem::path(config_path).stem().string();
  options.out = out.empty() ? default_out(options.name) : out;
  options.seed = static_cast<uint64_t>(seed);
  if (const std::string why = check_before_start(*cfg, config_path, options.out); !why.empty()) {
    std::fprintf(stderr, "gossip-sim: %s\n", why.c_str());
    return 2;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::printf("gossip-sim: %d peers, %s, output in %s\n", cfg->sim.peers,
              cfg->sim.average_only ? "averaging only" : cfg->model.describe().c_str(),
              options.out.string().c_str());
  std::fflush(stdout);
  auto summary = sim::run_simulation(options, g_stop);
  if (!summary) {
    const nlohmann::json failed = {{"type", "final"}, {"error", summary.status().message()}};
    std::cout << failed.dump() << std::endl;
    std::fprintf(stderr, "gossip-sim: %s\n", summary.status().message().c_str());
    return summary.status().code() == core::Code::kInvalidArgument ? 2 : 1;
  }
  if ((*summary)["report"].is_string()) {
    std::printf("report: %s\n", (*summary)["report"].get<std::string>().c_str());
  }
  std::cout << summary->dump() << std::endl;
  if (const auto& error = (*summary)["error"]; error.is_string()) {
    std::fprintf(stderr, "gossip-sim: %s\n", error.get<std::string>().c_str());
    return 1;
  }
  return 0;
}
