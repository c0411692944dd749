// Shards: how one shared dataset is split among the peers of a swarm.
//
// A shard is a list of row indices into the shared Dataset; the shards of a
// plan are disjoint and together cover every row. Strategies are picked by a
// "type" string through one factory:
//   random      iid: a seeded permutation cut into near-equal parts
//   block       contiguous ranges of the dataset's own order
//   label_skew  non-iid: for each class, proportions over shards drawn from
//               Dirichlet(alpha) split that class's rows (small alpha: each
//               shard sees few classes; huge alpha: close to iid)
// Every peer computes the same plan from (dataset, spec, num_shards, seed), so
// a peer only needs its own index to know its rows.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/data/dataset.hpp"

namespace gossip::data {

struct ShardSpec {
  std::string type = "random";  // "random" | "block" | "label_skew" ("label-skew" accepted)
  double alpha = 0.5;           // label_skew: Dirichlet concentration, > 0
  int64_t min_shard_size = 1;   // label_skew: redraw until every shard has this many rows
};

// All shards of one split; shards[i] is shard i's row indices.
struct ShardPlan {
  std::vector<std::vector<int64_t>> shards;
};

class ShardStrategy {
 public:
  virtual ~ShardStrategy() = default;
  virtual std::string type() const = 0;
  // Splits `dataset` into `num_shards` disjoint shards covering it. Same
  // inputs, same plan. invalid_argument when the split is impossible (more
  // shards than rows, label_skew on a regression dataset, ...).
  virtual core::Result<ShardPlan> plan(const Dataset& dataset, int num_shards,
                                       uint64_t seed) const = 0;
};

// The factory: invalid_argument naming the type when it is unknown or the
// spec's values are out of range. Every error of this file starts with the
// key it concerns, relative to the config's data section ("shard: ...",
// "shard.alpha: ..."), so a caller names the section with a "data." prefix.
core::Result<std::unique_ptr<ShardStrategy>> make_shard_strategy(const ShardSpec& spec);

// Convenience: builds the plan and returns shard `shard_index` (in
// [0, num_shards)).
core::Result<std::vector<int64_t>> make_shard(const Dataset& dataset, const ShardSpec& spec,
                                              int num_shards, int shard_index, uint64_t seed);

// Per-class row counts of `indices` (size dataset.classes()); classification only.
std::vector<int64_t> class_histogram(const Dataset& dataset, std::span<const int64_t> indices);

}  // namespace gossip::data
