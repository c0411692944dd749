// gossip-bench: performance measurements (never timed assertions in tests).
// Usage: gossip-bench <subcommand> [options]; see --help. The top level
// (--help, --version, usage errors, exit statuses) is cli::Program's; each
// subcommand parses its own options.
#include <time.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench.hpp"
#include "gossip/cli/program.hpp"

namespace gossip::bench {
std::vector<Command>& commands() {
  static std::vector<Command> list;
  return list;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::string find_bench_script(const std::string& flag, const std::string& name) {
  namespace fs = std::filesystem;
  if (!flag.empty()) return flag;
  std::vector<fs::path> candidates;
  if (const char* root = std::getenv("GOSSIP_SOURCE_ROOT")) {
    candidates.push_back(fs::path(root) / "tools/bench" / name);
  }
  candidates.push_back(fs::path("tools/bench") / name);
  candidates.push_back(fs::path(__FILE__).parent_path() / name);
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return c.string();
  }
  return "";
}
}  // namespace gossip::bench

int main(int argc, char** argv) {
  using namespace gossip;
  const auto& cmds = bench::commands();
  std::string names, list;
  for (const auto& c : cmds) {
    names += (names.empty() ? "" : ", ") + c.name;
    list += "\n  " + c.name + std::string(c.name.size() < 12 ? 12 - c.name.size() : 0, ' ') + " " +
            c.summary;
  }
  cli::Program program("gossip-bench", {"gossip-bench SUBCOMMAND [options]"},
                       "Measures performance; each subcommand prints a table and ends with one\n"
                       "JSON object on the last line of stdout (docs/benchmarks.md).");
  auto& app = program.app();
  app.footer("subcommands:" + list);
  app.prefix_command();  // everything from the subcommand on is the subcommand's
  if (auto status = program.parse(argc, argv)) return *status;
  const auto rest = app.remaining();  // the subcommand and its arguments, as given
  if (rest.empty()) return program.usage_error("missing subcommand: " + names);
  const int at = argc - static_cast<int>(rest.size());
  for (const auto& c : cmds) {
    if (c.name == rest.front()) return c.run(argc - at, argv + at);
  }
  if (rest.front().size() > 1 && rest.front()[0] == '-') {
    return program.usage_error("unknown option '" + rest.front() + "'");
  }
  return program.usage_error("unknown subcommand '" + rest.front() + "'");
}
