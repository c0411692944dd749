// Shard strategies (random, block, label_skew) and their factory.
//
// label_skew follows the common non-iid benchmark recipe (Hsu et al. 2019;
// NIID-Bench, Li et al. 2021): for each class, draw proportions over shards
// from Dirichlet(alpha); shards already holding their fair share N/K get no
// more, which keeps sizes balanced enough to train; the whole draw is repeated
// (with a new derived seed) until every shard has min_shard_size rows.
#include "gossip/data/shard.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "gossip/data/rng.hpp"

namespace gossip::data {
namespace {

constexpr int kLabelSkewAttempts = 200;

core::Status check_count(const Dataset& dataset, int num_shards) {
  if (num_shards <= 0) {
    return core::invalid_argument("shard: num_shards must be > 0, got " +
                                  std::to_string(num_shards));
  }
  if (num_shards > dataset.size()) {
    return core::invalid_argument("shard: " + std::to_string(num_shards) + " shards but " +
                                  dataset.name() + " has only " + std::to_string(dataset.size()) +
                                  " samples");
  }
  return core::Status::ok();
}

// Cuts `order` into num_shards contiguous near-equal parts (sizes differ by <= 1).
ShardPlan cut(const std::vector<int64_t>& order, int num_shards) {
  ShardPlan plan;
  plan.shards.resize(static_cast<size_t>(num_shards));
  const auto n = static_cast<int64_t>(order.size());
  for (int k = 0; k < num_shards; ++k) {
    const int64_t begin = n * k / num_shards;
    const int64_t end = n * (k + 1) / num_shards;
    plan.shards[static_cast<size_t>(k)].assign(order.begin() + begin, order.begin() + end);
  }
  return plan;
}

class RandomShards final : public ShardStrategy {
 public:
  std::string type() const override { return "random"; }
  core::Result<ShardPlan> plan(const Dataset& dataset, int num_shards,
                               uint64_t seed) const override {
    GOSSIP_RETURN_IF_ERROR(check_count(dataset, num_shards));
    std::vector<int64_t> order(static_cast<size_t>(dataset.size()));
    std::iota(order.begin(), order.end(), int64_t{0});
    Rng rng(derive_seed(seed, 0x5A4D));
    shuffle(std::span<int64_t>(order), rng);
    ShardPlan plan = cut(order, num_shards);
    for (auto& s : plan.shards) std::sort(s.begin(), s.end());
    return plan;
  }
};

class BlockShards final : public ShardStrategy {
 public:
  std::string type() const override { return "block"; }
  core::Result<ShardPlan> plan(const Dataset& dataset, int num_shards,
                               uint64_t /*seed*/) const override {
    GOSSIP_RETURN_IF_ERROR(check_count(dataset, num_shards));
    std::vector<int64_t> order(static_cast<size_t>(dataset.size()));
    std::iota(order.begin(), order.end(), int64_t{0});
    return cut(order, num_shards);
  }
};

class LabelSkewShards final : public ShardStrategy {
 public:
  LabelSkewShards(double alpha, int64_t min_size) : alpha_(alpha), min_size_(min_size) {}
  std::string type() const override { return "label_skew"; }

  core::Result<ShardPlan> plan(const Dataset& dataset, int num_shards,
                               uint64_t seed) const override {
    GOSSIP_RETURN_IF_ERROR(check_count(dataset, num_shards));
    if (dataset.task() != Task::kClassification) {
      return core::invalid_argument("shard: label_skew needs a classification dataset; " +
                                    dataset.name() + " is a regression dataset");
    }
    if (min_size_ * num_shards > dataset.size()) {
      return core::invalid_argument("shard: " + std::to_string(num_shards) +
                                    " shards of at least " + std::to_string(min_size_) +
                                    " samples do not fit in " + std::to_string(dataset.size()) +
                                    " samples");
    }
    std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(dataset.classes()));
    const auto labels = dataset.labels();
    for (size_t i = 0; i < labels.size(); ++i) {
      by_class[static_cast<size_t>(labels[i])].push_back(static_cast<int64_t>(i));
    }
    const int64_t fair = dataset.size() / num_shards;
    for (int attempt = 0; attempt < kLabelSkewAttempts; ++attempt) {
      Rng rng(derive_seed(seed, 0x1AB5 + static_cast<uint64_t>(attempt)));
      ShardPlan plan;
      plan.shards.resize(static_cast<size_t>(num_shards));
      for (const auto& rows : by_class) {
        if (rows.empty()) continue;
        std::vector<int64_t> members = rows;
        shuffle(std::span<int64_t>(members), rng);
        std::vector<double> p = rng.dirichlet(alpha_, num_shards);
        double sum = 0.0;
        for (size_t k = 0; k < p.size(); ++k) {
          if (static_cast<int64_t>(plan.shards[k].size()) >= fair) p[k] = 0.0;
          sum += p[k];
        }
        if (sum <= 0.0) {  // every shard is full: spread the rest evenly
          std::fill(p.begin(), p.end(), 1.0);
          sum = static_cast<double>(p.size());
        }
        const auto n = static_cast<double>(members.size());
        double cum = 0.0;
        size_t begin = 0;
        for (size_t k = 0; k < p.size(); ++k) {
          cum += p[k] / sum;
          size_t end = k + 1 == p.size()
                           ? members.size()
                           : std::min(members.size(), static_cast<size_t>(std::llround(cum * n)));
          end = std::max(end, begin);
          plan.shards[k].insert(plan.shards[k].end(),
                                members.begin() + static_cast<std::ptrdiff_t>(begin),
                                members.begin() + static_cast<std::ptrdiff_t>(end));
          begin = end;
        }
      }
      bool ok = true;
      for (auto& s : plan.shards) {
        std::sort(s.begin(), s.end());
        ok = ok && static_cast<int64_t>(s.size()) >= min_size_;
      }
      if (ok) return plan;
    }
    return core::invalid_argument("shard: label_skew with alpha " + std::to_string(alpha_) +
                                  " could not give each of " + std::to_string(num_shards) +
                                  " shards at least " + std::to_string(min_size_) + " samples in " +
                                  std::to_string(kLabelSkewAttempts) +
                                  " draws; raise alpha, lower min_shard_size or use fewer shards");
  }

 private:
  double alpha_;
  int64_t min_size_;
};

}  // namespace

core::Result<std::unique_ptr<ShardStrategy>> make_shard_strategy(const ShardSpec& spec) {
  if (spec.type == "random" || spec.type == "iid") {
    return std::unique_ptr<ShardStrategy>(std::make_unique<RandomShards>());
  }
  if (spec.type == "block") return std::unique_ptr<ShardStrategy>(std::make_unique<BlockShards>());
  if (spec.type == "label_skew" || spec.type == "label-skew") {
    if (!(spec.alpha > 0.0) || !std::isfinite(spec.alpha)) {
      return core::invalid_argument("shard.alpha: must be a finite number > 0, got " +
                                    std::to_string(spec.alpha));
    }
    if (spec.min_shard_size < 0) {
      return core::invalid_argument("shard.min_shard_size: must be >= 0");
    }
    return std::unique_ptr<ShardStrategy>(
        std::make_unique<LabelSkewShards>(spec.alpha, spec.min_shard_size));
  }
  return core::invalid_argument("shard.type: unknown strategy '" + spec.type +
                                "' (expected random, block or label_skew)");
}

core::Result<std::vector<int64_t>> make_shard(const Dataset& dataset, const ShardSpec& spec,
                                              int num_shards, int shard_index, uint64_t seed) {
  if (shard_index < 0 || shard_index >= num_shards) {
    return core::invalid_argument("shard: shard index " + std::to_string(shard_index) +
                                  " is outside [0, " + std::to_string(num_shards) + ")");
  }
  auto strategy = make_shard_strategy(spec);
  if (!strategy) return strategy.status();
  auto plan = (*strategy)->plan(dataset, num_shards, seed);
  if (!plan) return plan.status();
  return std::move(plan->shards[static_cast<size_t>(shard_index)]);
}

std::vector<int64_t> class_histogram(const Dataset& dataset, std::span<const int64_t> indices) {
  std::vector<int64_t> counts(static_cast<size_t>(dataset.classes()), 0);
  const auto labels = dataset.labels();
  for (int64_t i : indices) ++counts[static_cast<size_t>(labels[static_cast<size_t>(i)])];
  return counts;
}

}  // namespace gossip::data
