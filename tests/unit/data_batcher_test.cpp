// Batcher and EvalBatches: each row once per epoch, a new order per epoch,
// determinism from the seed, exact restore of the data-order position.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "gossip/data/batcher.hpp"

using namespace gossip;
using namespace gossip::data;

namespace {

// Row i has feature 0 == i and label i % 3, so a batch tells which rows it holds.
Dataset numbered(int64_t n) {
  std::vector<float> x(static_cast<size_t>(n) * 2);
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    x[static_cast<size_t>(2 * i)] = static_cast<float>(i);
    x[static_cast<size_t>(2 * i + 1)] = 0.5f;
    labels[static_cast<size_t>(i)] = static_cast<int32_t>(i % 3);
  }
  return std::move(
             Dataset::classification_f32("numbered", n, 2, std::move(x), std::move(labels), 3))
      .value();
}

std::vector<int64_t> rows_of(const Batch& b) {
  std::vector<int64_t> rows;
  for (int r = 0; r < b.rows; ++r) {
    const auto id = static_cast<int64_t>(b.x[2 * r]);
    rows.push_back(id);
    CHECK(b.labels[r] == id % 3);
    CHECK(b.x[2 * r + 1] == 0.5f);
  }
  return rows;
}

// The shard: every other row of 206, i.e. 103 rows.
std::vector<int64_t> shard() {
  std::vector<int64_t> s;
  for (int64_t i = 0; i < 206; i += 2) s.push_back(i);
  return s;
}

// Rows served in one epoch, batch by batch.
std::vector<std::vector<int64_t>> one_epoch(Batcher& b) {
  std::vector<std::vector<int64_t>> out;
  out.push_back(rows_of(b.next()));  // rolls over when the last epoch is done
  const int64_t e = b.epoch();
  while (!b.at_epoch_end()) {
    out.push_back(rows_of(b.next()));
    REQUIRE(b.epoch() == e);
  }
  return out;
}

std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

}  // namespace

TEST_CASE("every shard row exactly once per epoch, new order each epoch, partial last batch kept") {
  const Dataset d = numbered(206);
  Batcher b(d, shard(), {.batch_size = 10, .seed = 5});
  CHECK(b.batches_per_epoch() == 11);
  std::vector<int64_t> previous;
  for (int epoch = 0; epoch < 3; ++epoch) {
    const auto batches = one_epoch(b);
    CHECK(b.epoch() == epoch);
    CHECK(b.position() == DataPosition{epoch, 103});
    REQUIRE(batches.size() == 11);
    CHECK(batches.back().size() == 3);
    auto rows = flat(batches);
    CHECK(rows != previous);
    previous = rows;
    std::sort(rows.begin(), rows.end());
    CHECK(rows == shard());
  }
  b.next();
  CHECK(b.position() == DataPosition{3, 10});
}

TEST_CASE("drop_last skips the partial batch; a shard smaller than a batch still yields one") {
  const Dataset d = numbered(206);
  Batcher b(d, shard(), {.batch_size = 10, .drop_last = true, .seed = 5});
  CHECK(b.batches_per_epoch() == 10);
  const auto batches = one_epoch(b);
  REQUIRE(batches.size() == 10);
  auto rows = flat(batches);
  std::sort(rows.begin(), rows.end());
  CHECK(std::unique(rows.begin(), rows.end()) == rows.end());
  CHECK(rows.size() == 100);
  b.next();
  CHECK(b.epoch() == 1);

  Batcher tiny(d, {1, 2, 3}, {.batch_size = 64, .drop_last = true});
  CHECK(tiny.next().rows == 3);
  CHECK(tiny.next().rows == 3);
  CHECK(tiny.epoch() == 1);
}

TEST_CASE("the order is a function of the seed alone") {
  const Dataset d = numbered(206);
  Batcher a(d, shard(), {.batch_size = 16, .seed = 99});
  Batcher same(d, shard(), {.batch_size = 16, .seed = 99});
  Batcher other(d, shard(), {.batch_size = 16, .seed = 100});
  const auto ea = flat(one_epoch(a));
  CHECK(ea == flat(one_epoch(same)));
  CHECK(ea != flat(one_epoch(other)));
  Batcher plain(d, shard(), {.batch_size = 16, .shuffle = false});
  CHECK(flat(one_epoch(plain)) == shard());
}

TEST_CASE("restore reinstates a saved position exactly, also between batch boundaries") {
  const Dataset d = numbered(206);
  const BatcherOptions opts{.batch_size = 8, .seed = 7};
  Batcher a(d, shard(), opts);
  for (int i = 0; i < 30; ++i) a.next();  // into epoch 2
  const DataPosition saved = a.position();
  CHECK(saved.epoch == 2);
  std::vector<std::vector<int64_t>> expect;
  for (int i = 0; i < 20; ++i) expect.push_back(rows_of(a.next()));  // crosses into epoch 3

  Batcher b(d, shard(), opts);
  REQUIRE(b.restore(saved).is_ok());
  CHECK(b.position() == saved);
  for (int i = 0; i < 20; ++i) CHECK(rows_of(b.next()) == expect[static_cast<size_t>(i)]);
  CHECK(b.position() == a.position());

  // Odd position: the rest of that epoch's order from there.
  Batcher c(d, shard(), opts);
  REQUIRE(c.restore({1, 5}).is_ok());
  Batcher ref(d, shard(), opts);
  REQUIRE(ref.restore({1, 0}).is_ok());
  CHECK(rows_of(c.next()) ==
        std::vector<int64_t>(ref.epoch_order().begin() + 5, ref.epoch_order().begin() + 13));

  CHECK(c.restore({0, 104}).code() == core::Code::kInvalidArgument);
  CHECK(c.restore({-1, 0}).message() ==
        "data position: epoch -1, position 0 does not fit a shard of 103 samples");
}

TEST_CASE("Batcher rejects programmer errors") {
  const Dataset d = numbered(10);
  CHECK_THROWS_AS(Batcher(d, {}, {}), std::invalid_argument);
  CHECK_THROWS_AS(Batcher(d, {1, 10}, {}), std::invalid_argument);
  CHECK_THROWS_AS(Batcher(d, {1}, {.batch_size = 0}), std::invalid_argument);
}

TEST_CASE("EvalBatches walks the whole dataset in order, or its first rows") {
  const Dataset d = numbered(25);
  EvalBatches eval(d, 8);
  std::vector<int64_t> rows;
  std::vector<int> sizes;
  while (auto b = eval.next()) {
    sizes.push_back(b->rows);
    const auto r = rows_of(*b);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  CHECK(sizes == std::vector<int>{8, 8, 8, 1});
  std::vector<int64_t> expect(25);
  std::iota(expect.begin(), expect.end(), int64_t{0});
  CHECK(rows == expect);
  eval.reset();
  CHECK(eval.next()->rows == 8);

  EvalBatches limited(d, 8, 10);
  CHECK(limited.rows() == 10);
  CHECK(limited.next()->rows == 8);
  CHECK(limited.next()->rows == 2);
  CHECK_FALSE(limited.next().has_value());
}

TEST_CASE("regression batches carry targets and no labels") {
  auto d = Dataset::regression_f32("reg", 4, 1, {0, 1, 2, 3}, {10, 20, 11, 21, 12, 22, 13, 23}, 2);
  REQUIRE(d.is_ok());
  Batcher b(*d, {3, 1}, {.batch_size = 2, .shuffle = false});
  const Batch batch = b.next();
  CHECK(batch.labels == nullptr);
  REQUIRE(batch.targets != nullptr);
  CHECK(batch.target_cols == 2);
  CHECK(batch.x[0] == 3);
  CHECK(batch.targets[0] == 13);
  CHECK(batch.targets[1] == 23);
  CHECK(batch.targets[2] == 11);
}
