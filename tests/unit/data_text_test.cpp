// The text corpus: files, folders and gzip read in the stated order, every
// bad input refused naming the path, the windows and the held-out tail.
#include <doctest/doctest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "gossip/data/batcher.hpp"
#include "gossip/data/text.hpp"
#include "temp_dir.hpp"

using namespace gossip::data;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

void write_gz(const fs::path& p, const std::string& text) {
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, text.data(), static_cast<unsigned>(text.size())) == int(text.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

}  // namespace

TEST_CASE("a corpus is its files in order, a folder's files sorted by name, gzip decompressed") {
  gossip::test::TempDir dir("gossip-text");
  write(dir.path() / "a.txt", "alpha ");
  write_gz(dir.path() / "b.txt.gz", "beta ");
  fs::create_directories(dir.path() / "folder" / "sub");
  write(dir.path() / "folder" / "2.txt", "two ");
  write(dir.path() / "folder" / "1.txt", "one ");
  write(dir.path() / "folder" / "sub" / "skipped.txt", "nested ");
  auto corpus = read_text_corpus({dir.file("b.txt.gz"), dir.file("folder"), dir.file("a.txt")});
  REQUIRE(corpus.is_ok());
  CHECK(std::string(corpus->begin(), corpus->end()) == "beta one two alpha ");
}

TEST_CASE("bad text inputs are refused naming the path") {
  gossip::test::TempDir dir("gossip-text");
  write(dir.path() / "empty.txt", "");
  fs::create_directories(dir.path() / "nothing");
  auto missing = read_text_corpus({dir.file("nope.txt")});
  CHECK(missing.status().code() == gossip::core::Code::kNotFound);
  CHECK(missing.status().message() == dir.file("nope.txt") + ": no such file or folder");
  CHECK(read_text_corpus({dir.file("empty.txt")}).status().message() ==
        dir.file("empty.txt") + ": empty file");
  CHECK(read_text_corpus({dir.file("nothing")}).status().message() ==
        dir.file("nothing") + ": folder holds no files");
  CHECK(read_text_corpus({}).status().message() == "text: no path given");
  write(dir.path() / "bad.gz", std::string("\x1f\x8b\x08\x00garbage", 12));
  auto bad_gz = read_text_corpus({dir.file("bad.gz")});
  CHECK_FALSE(bad_gz.is_ok());
  CHECK(bad_gz.status().message().find(dir.file("bad.gz")) == 0);
}

std::string row_text(const Dataset& d, int64_t r) {
  std::vector<int32_t> tokens(static_cast<size_t>(d.features()));
  const int64_t idx[1] = {r};
  d.gather_tokens(idx, tokens.data());
  return {tokens.begin(), tokens.end()};
}

TEST_CASE("windows of block + 1 bytes at stride block predict every byte once") {
  const std::string text = "abcdefghijklmnopqrstuvwxyz";    // 26 bytes
  auto w = Dataset::token_windows("t", bytes_of(text), 5);  // block 4
  REQUIRE(w.is_ok());
  CHECK(w->task() == Task::kLanguageModel);
  CHECK(w->features() == 5);
  CHECK(w->classes() == 256);
  CHECK(w->size() == 6);  // (26 - 1) / 4: the last byte 'z' is only a target of no window
  CHECK(row_text(*w, 0) == "abcde");
  CHECK(row_text(*w, 1) == "efghi");
  CHECK(row_text(*w, 5) == "uvwxy");
  std::vector<int32_t> tokens(10);
  const std::vector<int64_t> idx = {3, 0};
  w->gather_tokens(idx, tokens.data());
  CHECK(tokens == std::vector<int32_t>{'m', 'n', 'o', 'p', 'q', 'a', 'b', 'c', 'd', 'e'});
  // Targets (positions 1..4 of each window) cover bytes 1..24 exactly once.
  std::multiset<int64_t> predicted;
  for (int64_t r = 0; r < w->size(); ++r) {
    for (int j = 1; j < 5; ++j) predicted.insert(r * 4 + j);
  }
  CHECK(predicted.size() == 24);
  CHECK(std::set<int64_t>(predicted.begin(), predicted.end()).size() == 24);
  CHECK(*predicted.begin() == 1);
  CHECK(*predicted.rbegin() == 24);
  CHECK(Dataset::token_windows("short", bytes_of("abc"), 5).status().message() ==
        "short: 3 bytes, shorter than one window of 5 bytes (model.block + 1)");
  // A shard's rows keep their windows.
  const std::vector<int64_t> rows = {4, 1};
  const Dataset sub = w->subset(rows, "sub");
  CHECK(row_text(sub, 0) == "qrstu");
  CHECK(row_text(sub, 1) == "efghi");
}

TEST_CASE("the last val_fraction of the bytes is held out, windowed from its first byte") {
  std::string text;
  for (int i = 0; i < 100; ++i) text += static_cast<char>('A' + i % 26);
  auto split = split_text("corpus", bytes_of(text), 9, 0.2);
  REQUIRE(split.is_ok());
  CHECK(split->train.size() == 9);  // (80 - 1) / 8
  REQUIRE(split->validation.has_value());
  const auto& val = *split->validation;
  CHECK(row_text(val, 0) == text.substr(80, 9));
  CHECK(val.size() == 2);  // (20 - 1) / 8
  auto none = split_text("corpus", bytes_of(text), 9, 0.0);
  REQUIRE(none.is_ok());
  CHECK_FALSE(none->validation.has_value());
  CHECK(split_text("corpus", bytes_of(text), 9, 0.05).status().message() ==
        "corpus (held-out part, val_fraction 0.05): 5 bytes, shorter than one window of 9 bytes "
        "(model.block + 1)");
  CHECK(split_text("corpus", bytes_of(text), 9, 1.0).status().message() ==
        "corpus: val_fraction must be in [0, 1)");
}

TEST_CASE("the demo corpus: Debian's fortunes, installed by tools/bootstrap") {
  const std::string dir = "/usr/share/games/fortunes/";
  REQUIRE_MESSAGE(fs::exists(dir + "computers"),
                  "the fortunes package is missing: run tools/bootstrap (it installs it)");
  auto corpus = read_text_corpus({dir + "computers", dir + "literature", dir + "science"});
  REQUIRE(corpus.is_ok());
  CHECK(corpus->size() > 400000);
  auto split = split_text("fortunes", *corpus, 129, 0.1);
  REQUIRE(split.is_ok());
  CHECK(split->validation->size() > 300);
}

TEST_CASE("batches of a language-model dataset carry tokens, not features") {
  std::string text;
  for (int i = 0; i < 200; ++i) text += static_cast<char>('a' + i % 26);
  auto w = Dataset::token_windows("t", bytes_of(text), 9);
  REQUIRE(w.is_ok());
  std::vector<int64_t> shard(static_cast<size_t>(w->size()));
  for (size_t i = 0; i < shard.size(); ++i) shard[i] = static_cast<int64_t>(i);
  Batcher batcher(*w, shard, BatcherOptions{4, false, false, 1});
  const Batch b = batcher.next();
  CHECK(b.rows == 4);
  CHECK(b.cols == 9);
  CHECK(b.x == nullptr);
  CHECK(b.labels == nullptr);
  REQUIRE(b.tokens != nullptr);
  CHECK(std::string(b.tokens, b.tokens + 9) == text.substr(0, 9));
  CHECK(std::string(b.tokens + 27, b.tokens + 36) == text.substr(24, 9));
  EvalBatches eval(*w, 16);
  const auto first = eval.next();
  REQUIRE(first.has_value());
  CHECK(first->tokens != nullptr);
  CHECK(first->rows == 16);
}
