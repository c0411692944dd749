// safetensors encoding and validated decoding (format in
// include/gossip/train/safetensors.hpp). Only F32, F64 and I32 tensors, the
// types this project writes and reads; the host is little-endian (x86-64 and
// aarch64), as the format is.
#include "gossip/train/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace gossip::train {

namespace {

// Larger headers are refused before parsing: a damaged length must not make
// the reader allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

size_t dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F64") return 8;
  return 0;
}

template <typename T>
SafeTensor make_tensor(std::string name, const char* dtype, std::vector<int64_t> shape,
                       std::span<const T> values) {
  SafeTensor t{std::move(name), dtype, std::move(shape), {}};
  t.data.resize(values.size_bytes());
  std::memcpy(t.data.data(), values.data(), values.size_bytes());
  return t;
}

}  // namespace

size_t SafeTensor::count() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

const SafeTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void SafetensorsFile::add(std::string name, std::vector<int64_t> shape,
                          std::span<const float> values) {
  tensors.push_back(make_tensor(std::move(name), "F32", std::move(shape), values));
}
void SafetensorsFile::add(std::string name, std::vector<int64_t> shape,
                          std::span<const int32_t> values) {
  tensors.push_back(make_tensor(std::move(name), "I32", std::move(shape), values));
}
void SafetensorsFile::add(std::string name, std::vector<int64_t> shape,
                          std::span<const double> values) {
  tensors.push_back(make_tensor(std::move(name), "F64", std::move(shape), values));
}

std::vector<double> values_of(const SafeTensor& t) {
  std::vector<double> out(t.count());
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = t.data.data() + i * dtype_size(t.dtype);
    if (t.dtype == "F32") {
      float v;
      std::memcpy(&v, p, 4);
      out[i] = v;
    } else if (t.dtype == "I32") {
      int32_t v;
      std::memcpy(&v, p, 4);
      out[i] = v;
    } else {
      std::memcpy(&out[i], p, 8);
    }
  }
  return out;
}

std::vector<uint8_t> encode_safetensors(const SafetensorsFile& contents) {
  nlohmann::json header = nlohmann::json::object();
  if (!contents.metadata.empty()) header["__metadata__"] = contents.metadata;
  size_t offset = 0;
  for (const auto& t : contents.tensors) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + text.size() + offset);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* data = out.data() + 8 + text.size();
  for (const auto& t : contents.tensors) {
    std::memcpy(data, t.data.data(), t.data.size());
    data += t.data.size();
  }
  return out;
}

core::Result<SafetensorsFile> decode_safetensors(std::span<const uint8_t> bytes,
                                                 const std::string& name) {
  auto bad = [&](const std::string& why) { return core::corrupt(name + ": " + why); };
  if (bytes.size() < 8)
    return bad("too short for a safetensors file (" + std::to_string(bytes.size()) + " bytes)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
  if (n > kMaxHeaderBytes || n > bytes.size() - 8) {
    return bad("header length " + std::to_string(n) + " runs past the end of the file (" +
               std::to_string(bytes.size()) + " bytes)");
  }
  const auto header =
      nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n), nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return bad("the header is not a JSON object");
  const std::span<const uint8_t> data = bytes.subspan(8 + n);
  SafetensorsFile file;
  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) return bad("__metadata__." + k + " is not a string");
        file.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor " + key + ": ";
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets") || !value["dtype"].is_string() ||
        !value["shape"].is_array() || !value["data_offsets"].is_array() ||
        value["data_offsets"].size() != 2) {
      return bad(where + "needs dtype, shape and data_offsets [begin, end]");
    }
    SafeTensor t;
    t.name = key;
    t.dtype = value["dtype"].get<std::string>();
    const size_t size = dtype_size(t.dtype);
    if (size == 0) return bad(where + "dtype " + t.dtype + " is not one of F32, F64, I32");
    for (const auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) return bad(where + "shape holds " + d.dump());
      t.shape.push_back(d.get<int64_t>());
    }
    const auto& o = value["data_offsets"];
    if (!o[0].is_number_unsigned() || !o[1].is_number_unsigned()) {
      return bad(where + "data_offsets are not whole numbers");
    }
    const uint64_t begin = o[0].get<uint64_t>(), end = o[1].get<uint64_t>();
    if (begin > end || end > data.size()) {
      return bad(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] lie outside the " + std::to_string(data.size()) + " data bytes");
    }
    if (end - begin != t.count() * size) {
      return bad(where + "shape needs " + std::to_string(t.count() * size) +
                 " bytes, offsets give " + std::to_string(end - begin));
    }
    t.data.assign(data.begin() + static_cast<long>(begin), data.begin() + static_cast<long>(end));
    ranges.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(t));
  }
  // Tensors must tile the data section exactly; file order is offset order.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  uint64_t at = 0;
  std::vector<SafeTensor> ordered;
  for (const Range& r : ranges) {
    if (r.begin != at) {
      return bad("tensor " + file.tensors[r.index].name +
                 (r.begin < at ? " overlaps the one before it" : " leaves a hole before it"));
    }
    at = r.end;
    ordered.push_back(std::move(file.tensors[r.index]));
  }
  if (at != data.size())
    return bad(std::to_string(data.size() - at) + " bytes after the last tensor");
  file.tensors = std::move(ordered);
  return file;
}

core::Result<SafetensorsFile> read_safetensors(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return core::not_found(file.string() + ": no such file");
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  if (!in.good() && !in.eof()) return core::io_error(file.string() + ": cannot read");
  return decode_safetensors(bytes, file.string());
}

}  // namespace gossip::train
