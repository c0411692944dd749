// safetensors: the tensor file format of Hugging Face's safetensors library,
// which PyTorch, JAX and most model tools read. gossip-export writes models in
// it; the parity tests read their PyTorch fixture from it.
//
// Layout: an 8-byte little-endian header length n, n bytes of JSON
// ({"__metadata__": {string: string}, NAME: {"dtype", "shape",
// "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of
// 8), then the tensors' little-endian bytes, offsets relative to the end of
// the header, contiguous and without holes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::train {

struct SafeTensor {
  std::string name;
  std::string dtype;  // "F32", "F64" or "I32" (what this project reads and writes)
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // little-endian values, product(shape) x the dtype's size

  size_t count() const;  // product of shape
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<SafeTensor> tensors;  // in file order

  // The tensor called `name`, or null.
  const SafeTensor* find(const std::string& name) const;
  // Adds a tensor from values (F32 / I32 / F64 by the element type).
  void add(std::string name, std::vector<int64_t> shape, std::span<const float> values);
  void add(std::string name, std::vector<int64_t> shape, std::span<const int32_t> values);
  void add(std::string name, std::vector<int64_t> shape, std::span<const double> values);
};

// The values of a tensor as doubles (any supported dtype).
std::vector<double> values_of(const SafeTensor& tensor);

// The file's bytes (write them with peer::write_file_atomically).
std::vector<uint8_t> encode_safetensors(const SafetensorsFile& contents);

// Parses and validates a whole file's bytes. kCorrupt naming `name` and what
// is wrong: too short, a header length past the end, bad JSON, an unknown
// dtype, a shape that does not match the offsets, tensors that overlap or
// leave holes, a duplicate name.
core::Result<SafetensorsFile> decode_safetensors(std::span<const uint8_t> bytes,
                                                 const std::string& name);

// Reads `file` and decodes it. kNotFound for a missing file, kIo when it
// cannot be read.
core::Result<SafetensorsFile> read_safetensors(const std::filesystem::path& file);

}  // namespace gossip::train
