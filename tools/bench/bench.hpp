// gossip-bench subcommands register themselves here; bench_main dispatches.
// Each subcommand prints a human-readable table and ends with one JSON object
// on the last line of stdout.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace gossip::bench {

struct Command {
  std::string name;                               // "train", "transport", "averaging"
  std::string summary;                            // one line for --help
  std::function<int(int argc, char** argv)> run;  // argv[0] is the subcommand
};

std::vector<Command>& commands();

// Static registration: `const Registrar kReg{{"train", "...", &run_train}};`
struct Registrar {
  explicit Registrar(Command c) { commands().push_back(std::move(c)); }
};

// Seconds of CPU time this process has used (every thread): rates per
// CPU-second are steadier than wall-clock ones when other processes share
// the cores.
double process_cpu_seconds();

// A helper script of tools/bench (e.g. "torch_baseline.py"): `flag` when
// given, else the first that exists of $GOSSIP_SOURCE_ROOT/tools/bench/NAME,
// tools/bench/NAME (from the working directory) and NAME next to this
// source file; "" when none does.
std::string find_bench_script(const std::string& flag, const std::string& name);

}  // namespace gossip::bench
