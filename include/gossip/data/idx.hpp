// IDX files (the MNIST / Fashion-MNIST format), gzip'd or plain.
//
// A file is read whole, through zlib when it starts with the gzip magic
// (1f 8b) and as plain bytes otherwise, then checked strictly: the IDX magic
// (0x00000801 for labels, 0x00000803 for images, unsigned bytes), non-zero
// dimensions, and a payload of exactly the announced size. Every failure is a
// Status whose message names the file and what is wrong: kNotFound for a
// missing file, kIo for an unreadable one, kCorrupt for bad content.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/data/dataset.hpp"

namespace gossip::data {

inline constexpr uint32_t kIdxLabelMagic = 0x00000801;
inline constexpr uint32_t kIdxImageMagic = 0x00000803;

struct IdxImages {
  int64_t count = 0;
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> pixels;  // count x rows x cols, row-major
};

// Reads the whole file, decompressing if it is gzip'd. kNotFound / kIo /
// kCorrupt (damaged gzip stream) with the path in the message.
core::Result<std::vector<uint8_t>> read_file_maybe_gzip(const std::string& path);

// Reads an IDX3 ubyte image file.
core::Result<IdxImages> read_idx_images(const std::string& path);

// Reads an IDX1 ubyte label file.
core::Result<std::vector<uint8_t>> read_idx_labels(const std::string& path);

// Loads a classification dataset from an image file and a label file; their
// counts must agree. `classes` <= 0 means max label + 1 (at least 2).
// Features are rows * cols bytes per sample, scaled to [0,1] by gather().
core::Result<Dataset> load_idx_dataset(const std::string& images_path,
                                       const std::string& labels_path, int classes = 0);

}  // namespace gossip::data
