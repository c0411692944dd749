// A byte-level language-model corpus (dataset type "text"): any text or
// binary files read as one byte sequence, cut into training and validation
// windows for the GPT family.
//
// Files are concatenated in the order given; a folder contributes its regular
// files sorted by name (bytewise), not descending into subfolders; a file
// starting with the gzip magic is decompressed. The last val_fraction of the
// bytes is held out. Each part is cut into windows of `window` = block + 1
// bytes at stride block (consecutive windows share one byte), so a window's
// first block bytes are the inputs and its last block bytes the targets:
// every byte after the first of each part is predicted exactly once.
// Validation uses the same windows starting at the first held-out byte, so
// it is deterministic.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::data {

// Reads `paths` in order into one sequence. kNotFound naming a missing path,
// kInvalidArgument naming an empty file or an empty folder, kIo / kCorrupt
// from the reads (a damaged gzip stream), and kInvalidArgument for no paths.
core::Result<std::vector<uint8_t>> read_text_corpus(const std::vector<std::string>& paths);

// Windows of `window` bytes at stride window - 1 over one byte sequence.
// Immutable once made: every method is safe from any number of threads.
class TokenWindows {
 public:
  // Requires window >= 2 and bytes.size() >= window (kInvalidArgument naming
  // `name` and both sizes otherwise). A tail shorter than a stride is unused.
  static core::Result<TokenWindows> make(std::string name, std::vector<uint8_t> bytes, int window);

  const std::string& name() const { return name_; }
  int window() const { return window_; }
  int64_t size() const { return rows_; }  // windows
  int64_t bytes() const { return static_cast<int64_t>(bytes_.size()); }
  // Window `index` (in [0, size())).
  std::span<const uint8_t> row(int64_t index) const;
  // Copies windows `indices` into tokens (indices.size() x window values).
  void gather(std::span<const int64_t> indices, int32_t* tokens) const;

 private:
  TokenWindows(std::string name, std::vector<uint8_t> bytes, int window);
  std::string name_;
  std::vector<uint8_t> bytes_;
  int window_ = 0;
  int64_t rows_ = 0;
};

struct TextSplit {
  TokenWindows train;
  std::vector<TokenWindows> validation;  // empty or one; empty when val_fraction is 0
};

// Holds out the last val_fraction (in [0, 1)) of `bytes` and windows both
// parts. kInvalidArgument naming `name` when a part is shorter than one
// window (with the sizes, and what to change).
core::Result<TextSplit> split_text(const std::string& name, const std::vector<uint8_t>& bytes,
                                   int window, double val_fraction);

}  // namespace gossip::data
