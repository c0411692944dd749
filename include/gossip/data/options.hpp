// The "data" section of a config file, owned by the data module: the dataset
// and shard specs as make_datasets / make_shard take them, plus how batches
// are drawn. config::Config holds one; read_data and data_json convert it
// from and to JSON (src/data/options.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>

#include "gossip/data/factory.hpp"
#include "gossip/data/shard.hpp"

namespace gossip::options {
class Section;
}

namespace gossip::data {

// Paths in the specs are resolved, and `dataset.normalize` holds the
// effective mode (never empty after reading).
struct ShardConfig {
  ShardSpec spec;  // type, alpha, min_shard_size
  int num_shards = 1;
  int index = 0;  // 0 <= index < num_shards
};

struct DataConfig {
  DatasetSpec dataset;  // dataset.seed == seed
  ShardConfig shard;
  int batch = 64;
  uint64_t seed = 1;       // shard plan and csv split (same on all peers);
                           // peers mix in shard.index for the batch order
  bool drop_last = false;  // drop the last incomplete batch of an epoch

  // Whether the dataset holds regression targets (synthetic_regression, or
  // csv with target_columns) rather than class labels.
  bool regression() const;
};

// Reads the top-level object's required "data" section into `out` (defaults
// already there), recording problems as "data.<key>: ..." through `top`.
void read_data(options::Section& top, DataConfig& out);

// The section as read_data reads it: exactly the keys the chosen dataset and
// shard types accept, unset optional values as null.
nlohmann::json data_json(const DataConfig& data);

}  // namespace gossip::data
