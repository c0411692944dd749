// Shard strategies: disjoint and covering, balanced sizes, determinism, and
// the label_skew metric (share of a shard held by its two largest classes).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "gossip/data/shard.hpp"

using namespace gossip;
using namespace gossip::data;

namespace {

// Balanced classification set laid out in class blocks (labels 0..0, 1..1,
// ...), as some datasets are sorted; one float feature per row.
Dataset blocks_of_classes(int classes, int per_class) {
  const int64_t n = int64_t{classes} * per_class;
  std::vector<float> x(static_cast<size_t>(n));
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] = static_cast<float>(i);
    labels[static_cast<size_t>(i)] = static_cast<int32_t>(i / per_class);
  }
  return std::move(
             Dataset::classification_f32("blocks", n, 1, std::move(x), std::move(labels), classes))
      .value();
}

ShardPlan plan_of(const Dataset& d, const ShardSpec& spec, int shards, uint64_t seed) {
  auto strategy = make_shard_strategy(spec);
  REQUIRE_MESSAGE(strategy.is_ok(), strategy.status().to_string());
  auto plan = (*strategy)->plan(d, shards, seed);
  REQUIRE_MESSAGE(plan.is_ok(), plan.status().to_string());
  return std::move(plan).value();
}

void check_partition(const Dataset& d, const ShardPlan& plan) {
  std::vector<int64_t> all;
  for (const auto& s : plan.shards) {
    CHECK_FALSE(s.empty());
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expect(static_cast<size_t>(d.size()));
  std::iota(expect.begin(), expect.end(), int64_t{0});
  CHECK(all == expect);  // disjoint (no duplicates) and covering
}

// Share of the shard's rows that belong to its two most frequent classes.
double top2_share(const Dataset& d, const std::vector<int64_t>& shard) {
  auto h = class_histogram(d, shard);
  std::sort(h.rbegin(), h.rend());
  return static_cast<double>(h[0] + h[1]) / static_cast<double>(shard.size());
}

// Total-variation distance between the shard's class distribution and the dataset's.
double tv_from_global(const Dataset& d, const std::vector<int64_t>& shard) {
  const auto h = class_histogram(d, shard);
  double tv = 0.0;
  for (int64_t c : h) {
    tv += std::abs(static_cast<double>(c) / static_cast<double>(shard.size()) - 1.0 / d.classes());
  }
  return tv / 2;
}

}  // namespace

TEST_CASE("every strategy gives disjoint shards covering the dataset, deterministically") {
  const Dataset d = blocks_of_classes(10, 1000);
  for (const char* type : {"random", "block", "label_skew"}) {
    for (int shards : {1, 7, 10}) {
      CAPTURE(type);
      CAPTURE(shards);
      ShardSpec spec;
      spec.type = type;
      spec.alpha = 0.5;
      const ShardPlan plan = plan_of(d, spec, shards, 42);
      REQUIRE(plan.shards.size() == static_cast<size_t>(shards));
      check_partition(d, plan);
      CHECK(plan_of(d, spec, shards, 42).shards == plan.shards);
      auto one = make_shard(d, spec, shards, shards - 1, 42);
      REQUIRE(one.is_ok());
      CHECK(*one == plan.shards.back());
    }
  }
}

TEST_CASE("random and block shards have sizes within one of each other") {
  const Dataset d = blocks_of_classes(10, 1000);
  ShardSpec random;
  ShardSpec block;
  block.type = "block";
  const ShardPlan r = plan_of(d, random, 7, 1);
  const ShardPlan b = plan_of(d, block, 7, 1);
  for (const auto* plan : {&r, &b}) {
    size_t lo = SIZE_MAX;
    size_t hi = 0;
    for (const auto& s : plan->shards) {
      lo = std::min(lo, s.size());
      hi = std::max(hi, s.size());
    }
    CHECK(hi - lo <= 1);
  }
  // block: contiguous ranges in dataset order.
  for (const auto& s : b.shards) CHECK(s.back() - s.front() + 1 == static_cast<int64_t>(s.size()));
  CHECK(b.shards[0].front() == 0);
  // random: iid, so even a class-sorted dataset gives every shard every class.
  for (const auto& s : r.shards) CHECK(tv_from_global(d, s) < 0.05);
  CHECK(plan_of(d, random, 7, 2).shards != r.shards);
}

TEST_CASE("label_skew: huge alpha is close to iid, tiny alpha gives one or two classes per shard") {
  const Dataset d = blocks_of_classes(10, 6000);  // Fashion-MNIST's class sizes
  ShardSpec spec;
  spec.type = "label_skew";
  for (uint64_t seed : {1, 2, 3}) {
    CAPTURE(seed);
    spec.alpha = 1e4;
    const ShardPlan iid = plan_of(d, spec, 10, seed);
    double worst_tv = 0.0;
    for (const auto& s : iid.shards) {
      worst_tv = std::max(worst_tv, tv_from_global(d, s));
      CHECK(std::abs(static_cast<double>(s.size()) - 6000.0) < 300.0);
      CHECK(top2_share(d, s) < 0.25);  // iid: 0.2
    }
    CHECK(worst_tv < 0.03);

    spec.alpha = 0.05;
    const ShardPlan skew = plan_of(d, spec, 10, seed);
    check_partition(d, skew);
    int dominated = 0;
    double mean_top2 = 0.0;
    for (const auto& s : skew.shards) {
      const double share = top2_share(d, s);
      mean_top2 += share / 10.0;
      if (share >= 0.8) ++dominated;
    }
    // Metric: a shard is dominated when >= 80% of its rows come from its two
    // largest classes (iid: 20%). Over 500 seeds of this setup the fewest
    // dominated shards seen was 6/10 and the lowest mean share 0.856.
    MESSAGE("seed " << seed << ": mean top-2 share " << mean_top2 << ", " << dominated
                    << "/10 shards >= 80% from two classes");
    CHECK(dominated >= 6);
    CHECK(mean_top2 > 0.8);
  }
}

TEST_CASE("label_skew with many shards and small alpha keeps every shard non-empty") {
  const Dataset d = blocks_of_classes(10, 2000);
  ShardSpec spec;
  spec.type = "label-skew";
  spec.alpha = 0.1;
  spec.min_shard_size = 20;
  const ShardPlan plan = plan_of(d, spec, 50, 9);
  check_partition(d, plan);
  for (const auto& s : plan.shards) CHECK(s.size() >= 20);
}

TEST_CASE("shard factory and plans reject bad requests with clear messages") {
  const Dataset d = blocks_of_classes(2, 5);
  ShardSpec spec;
  spec.type = "stripes";
  auto bad = make_shard_strategy(spec);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message() ==
        "shard.type: unknown strategy 'stripes' (expected random, block or label_skew)");
  spec.type = "label_skew";
  spec.alpha = 0.0;
  CHECK(make_shard_strategy(spec).status().code() == core::Code::kInvalidArgument);

  ShardSpec random;
  auto too_many = make_shard(d, random, 11, 0, 1);
  REQUIRE_FALSE(too_many.is_ok());
  CHECK(too_many.status().message() == "shard: 11 shards but blocks has only 10 samples");
  CHECK(make_shard(d, random, 2, 2, 1).status().message() ==
        "shard: shard index 2 is outside [0, 2)");

  auto reg = Dataset::regression_f32("reg", 4, 1, {1, 2, 3, 4}, {1, 2, 3, 4}, 1);
  REQUIRE(reg.is_ok());
  spec.alpha = 1.0;
  auto skew_reg = make_shard(*reg, spec, 2, 0, 1);
  REQUIRE_FALSE(skew_reg.is_ok());
  CHECK(skew_reg.status().message() ==
        "shard: label_skew needs a classification dataset; reg is a regression dataset");
}
