// IDX loading on real files written to a temp dir (plain and gzip), every
// failure mode the reader names, and the installed Fashion-MNIST when present.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "gossip/data/batcher.hpp"
#include "gossip/data/factory.hpp"
#include "gossip/data/idx.hpp"
#include "preconditions.hpp"
#include "unit/data_test_support.hpp"

using namespace gossip;
using namespace gossip::data;
using gossip::data::testing::gzip_bytes;
using gossip::data::testing::idx_images;
using gossip::data::testing::idx_labels;
using gossip::data::testing::TempDir;
using gossip::data::testing::write_bytes;

namespace {
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("IDX images and labels load the same from plain and gzip files") {
  TempDir dir;
  const auto images = idx_images(5, 3, 4);
  const auto labels = idx_labels(5, 3);
  write_bytes(dir.file("img"), images);
  write_bytes(dir.file("lbl"), labels);
  write_bytes(dir.file("img.gz"), gzip_bytes(images));
  write_bytes(dir.file("lbl.gz"), gzip_bytes(labels));

  for (const char* suffix : {"", ".gz"}) {
    auto img = read_idx_images(dir.file(std::string("img") + suffix));
    REQUIRE_MESSAGE(img.is_ok(), img.status().to_string());
    CHECK(img->count == 5);
    CHECK(img->rows == 3);
    CHECK(img->cols == 4);
    REQUIRE(img->pixels.size() == 60);
    CHECK(img->pixels[13] == (1 * 7 + 1) % 256);  // image 1, pixel 1

    auto ds = load_idx_dataset(dir.file(std::string("img") + suffix),
                               dir.file(std::string("lbl") + suffix));
    REQUIRE_MESSAGE(ds.is_ok(), ds.status().to_string());
    CHECK(ds->size() == 5);
    CHECK(ds->features() == 12);
    CHECK(ds->classes() == 3);
    CHECK(ds->labels()[4] == 1);
    const auto row = ds->row(2);
    CHECK(row[0] == doctest::Approx(14.0 / 255.0));
    CHECK(row[11] == doctest::Approx(25.0 / 255.0));
  }
}

TEST_CASE("IDX reader names the file and the problem") {
  TempDir dir;
  const auto images = idx_images(4, 2, 2);
  const auto labels = idx_labels(4, 2);

  SUBCASE("missing file is not_found") {
    auto r = read_idx_images(dir.file("nope.gz"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == core::Code::kNotFound);
    CHECK(contains(r.status().message(), dir.file("nope.gz")));
  }
  SUBCASE("empty plain and empty gzip files") {
    write_bytes(dir.file("empty"), {});
    write_bytes(dir.file("empty.gz"), gzip_bytes({}));
    for (const char* name : {"empty", "empty.gz"}) {
      auto r = read_idx_labels(dir.file(name));
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().code() == core::Code::kCorrupt);
      CHECK(contains(r.status().message(), dir.file(name) + ": empty file"));
    }
  }
  SUBCASE("truncated payload, plain and gzip'd") {
    std::vector<uint8_t> cut(images.begin(), images.end() - 3);
    write_bytes(dir.file("cut"), cut);
    write_bytes(dir.file("cut.gz"), gzip_bytes(cut));
    for (const char* name : {"cut", "cut.gz"}) {
      auto r = read_idx_images(dir.file(name));
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().code() == core::Code::kCorrupt);
      CHECK(contains(
          r.status().message(),
          "truncated: the header announces 4 images of 2x2 (16 bytes) but only 13 bytes follow"));
    }
  }
  SUBCASE("truncated header") {
    write_bytes(dir.file("short"), std::vector<uint8_t>(images.begin(), images.begin() + 10));
    auto r = read_idx_images(dir.file("short"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(contains(r.status().message(), "header needs 16"));
  }
  SUBCASE("truncated gzip stream") {
    auto gz = gzip_bytes(idx_images(200, 28, 28));
    gz.resize(gz.size() / 2);
    write_bytes(dir.file("half.gz"), gz);
    auto r = read_idx_images(dir.file("half.gz"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == core::Code::kCorrupt);
    CHECK(contains(r.status().message(), dir.file("half.gz") + ": truncated gzip stream"));
  }
  SUBCASE("damaged gzip data fails its check") {
    auto gz = gzip_bytes(images);
    gz[gz.size() - 6] ^= 0xFF;  // inside the CRC32 trailer
    write_bytes(dir.file("bad.gz"), gz);
    auto r = read_idx_images(dir.file("bad.gz"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == core::Code::kCorrupt);
    CHECK(contains(r.status().message(), "damaged gzip data"));
  }
  SUBCASE("wrong magic: a label file given as images, and garbage") {
    write_bytes(dir.file("lbl"), labels);
    auto r = read_idx_images(dir.file("lbl"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == core::Code::kCorrupt);
    CHECK(contains(r.status().message(),
                   "not an IDX image file: magic 0x00000801, expected 0x00000803 (this is an IDX "
                   "label file)"));
    write_bytes(dir.file("junk"), {'h', 'e', 'l', 'l', 'o', '!', '!', '!'});
    auto j = read_idx_labels(dir.file("junk"));
    REQUIRE_FALSE(j.is_ok());
    CHECK(contains(j.status().message(), "not an IDX label file: magic 0x68656c6c"));
  }
  SUBCASE("zero dimension and trailing bytes") {
    write_bytes(dir.file("zero"), idx_images(0, 2, 2));
    auto z = read_idx_images(dir.file("zero"));
    REQUIRE_FALSE(z.is_ok());
    CHECK(contains(z.status().message(), "dimension 0 is 0"));
    auto extra = labels;
    extra.push_back(1);
    extra.push_back(1);
    write_bytes(dir.file("extra"), extra);
    auto e = read_idx_labels(dir.file("extra"));
    REQUIRE_FALSE(e.is_ok());
    CHECK(contains(e.status().message(), "2 unexpected bytes after the 4 labels"));
  }
  SUBCASE("image and label counts must match") {
    write_bytes(dir.file("img"), images);
    write_bytes(dir.file("lbl3"), idx_labels(3, 2));
    auto r = load_idx_dataset(dir.file("img"), dir.file("lbl3"));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == core::Code::kCorrupt);
    CHECK(contains(r.status().message(), dir.file("img") + " holds 4 images but " +
                                             dir.file("lbl3") + " holds 3 labels"));
  }
  SUBCASE("label beyond the declared classes") {
    write_bytes(dir.file("img"), images);
    write_bytes(dir.file("lbl"), idx_labels(4, 4));
    auto r = load_idx_dataset(dir.file("img"), dir.file("lbl"), 2);
    REQUIRE_FALSE(r.is_ok());
    CHECK(contains(r.status().message(), "label 3 is outside the 2 expected classes"));
  }
}

TEST_CASE("idx dataset type through the factory, with the test set sharing train statistics") {
  TempDir dir;
  write_bytes(dir.file("a.gz"), gzip_bytes(idx_images(30, 4, 4)));
  write_bytes(dir.file("b.gz"), gzip_bytes(idx_labels(30, 5)));
  write_bytes(dir.file("c"), idx_images(10, 4, 4));
  write_bytes(dir.file("d"), idx_labels(10, 5));
  DatasetSpec spec;
  spec.type = "idx";
  spec.train_images = dir.file("a.gz");
  spec.train_labels = dir.file("b.gz");
  spec.test_images = dir.file("c");
  spec.test_labels = dir.file("d");
  spec.normalize = "global";
  auto pair = make_datasets(spec);
  REQUIRE_MESSAGE(pair.is_ok(), pair.status().to_string());
  CHECK(pair->train->classes() == 5);
  CHECK(pair->test->classes() == 5);
  REQUIRE(pair->train->normalization().mean.size() == 1);
  CHECK(pair->test->normalization().mean[0] == pair->train->normalization().mean[0]);

  spec.test_labels = dir.file("missing");
  auto bad = make_datasets(spec);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == core::Code::kNotFound);
}

TEST_CASE("Fashion-MNIST from the Debian package") {
  gossip::test::require_fashion_mnist();
  DatasetSpec spec;  // defaults: fashion_mnist at the Debian path
  spec.normalize = "global";
  const auto t0 = std::chrono::steady_clock::now();
  auto pair = make_datasets(spec);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE_MESSAGE(pair.is_ok(), pair.status().to_string());
  MESSAGE("Fashion-MNIST loaded in " << secs << " s");
  const Dataset& train = *pair->train;
  const Dataset& test = *pair->test;
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  CHECK(train.features() == 784);
  CHECK(train.classes() == 10);
  CHECK(train.stores_bytes());
  CHECK(train.memory_bytes() < 48'000'000);
  for (const Dataset* d : {&train, &test}) {
    std::vector<int64_t> per_class(10, 0);
    int64_t out_of_range = 0;
    for (int32_t l : d->labels()) {
      if (l < 0 || l >= 10)
        ++out_of_range;
      else
        ++per_class[static_cast<size_t>(l)];
    }
    CHECK(out_of_range == 0);
    for (int64_t c : per_class) CHECK(std::abs(c - d->size() / 10) <= d->size() / 100);
  }
  // The training hot path: shuffled batches of 64 rows -> standardized floats.
  std::vector<int64_t> all(60000);
  std::iota(all.begin(), all.end(), int64_t{0});
  Batcher batcher(train, all, {.batch_size = 64, .seed = 3});
  double checksum = 0.0;
  const auto g0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) checksum += batcher.next().x[100];
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - g0).count() /
      2000;
  MESSAGE("gather of a shuffled 64 x 784 batch: " << us << " us (checksum " << checksum << ")");
  CHECK(std::isfinite(checksum));
  // Known statistics of Fashion-MNIST pixels scaled to [0,1].
  CHECK(train.normalization().mean[0] == doctest::Approx(0.2860).epsilon(0.01));
  CHECK(train.normalization().stddev[0] == doctest::Approx(0.3530).epsilon(0.01));
}
