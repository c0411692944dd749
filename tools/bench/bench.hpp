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

}  // namespace gossip::bench
