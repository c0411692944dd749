// gossip-bench train for the GPT family: `gossip-bench train --config
// configs/bench-gpt.json` lands here (bench_train.cpp dispatches on the
// config's model.type). See bench_train_gpt.cpp for the method.
#pragma once

#include <string>

namespace gossip::bench {

// True when the JSON file at `path` is a peer config whose model.type is
// "gpt" (a config that cannot be read is left to the MLP path's errors).
bool is_gpt_bench_config(const std::string& path);

// Runs the GPT bench; argv[0] is "train". Returns the process exit status
// (2 for bad flags or a bad config, with the message on stderr).
int run_train_gpt(int argc, char** argv);

}  // namespace gossip::bench
