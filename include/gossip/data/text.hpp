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
#include <optional>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/data/dataset.hpp"

namespace gossip::data {

// Reads `paths` in order into one sequence. kNotFound naming a missing path,
// kInvalidArgument naming an empty file or an empty folder, kIo / kCorrupt
// from the reads (a damaged gzip stream), and kInvalidArgument for no paths.
core::Result<std::vector<uint8_t>> read_text_corpus(const std::vector<std::string>& paths);

struct TextSplit {
  Dataset train;                      // Task::kLanguageModel, Dataset::token_windows
  std::optional<Dataset> validation;  // none when val_fraction is 0
};

// Holds out the last val_fraction (in [0, 1)) of `bytes` and windows both
// parts. kInvalidArgument naming `name` when a part is shorter than one
// window (with the sizes, and what to change).
core::Result<TextSplit> split_text(const std::string& name, const std::vector<uint8_t>& bytes,
                                   int window, double val_fraction);

}  // namespace gossip::data
