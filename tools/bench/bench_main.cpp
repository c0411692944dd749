// gossip-bench: performance measurements (never timed assertions in tests).
// Usage: gossip-bench <subcommand> [options]; see --help.
#include <cstdio>
#include <cstring>

#include "bench.hpp"

namespace gossip::bench {
std::vector<Command>& commands() {
  static std::vector<Command> list;
  return list;
}
}  // namespace gossip::bench

int main(int argc, char** argv) {
  auto& cmds = gossip::bench::commands();
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fprintf(stderr, "usage: gossip-bench <subcommand> [options]\n\nsubcommands:\n");
    for (const auto& c : cmds) std::fprintf(stderr, "  %-12s %s\n", c.name.c_str(), c.summary.c_str());
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : cmds) {
    if (c.name == argv[1]) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "gossip-bench: unknown subcommand '%s' (try --help)\n", argv[1]);
  return 2;
}
