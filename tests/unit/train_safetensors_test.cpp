// safetensors: a round trip, and every kind of damaged file refused with a
// message naming the file and the fault.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "gossip/train/safetensors.hpp"

using namespace gossip::train;

namespace {

SafetensorsFile sample() {
  SafetensorsFile f;
  f.metadata["vocab"] = "256";
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 1e-3f};
  const std::vector<int32_t> b = {3, 1, 4};
  const std::vector<double> c = {2.718281828459045};
  f.add("w", {2, 3}, a);
  f.add("tokens", {3}, b);
  f.add("loss", {1}, c);
  return f;
}

std::vector<uint8_t> with_header(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  auto r = decode_safetensors(bytes, "m.safetensors");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == gossip::core::Code::kCorrupt);
  return r.status().message();
}

}  // namespace

TEST_CASE("safetensors round trip: metadata, dtypes, shapes, values") {
  const auto bytes = encode_safetensors(sample());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);  // the header is padded to 8 bytes
  CHECK(bytes.size() == 8 + n + 6 * 4 + 3 * 4 + 8);
  auto back = decode_safetensors(bytes, "m.safetensors");
  REQUIRE(back.is_ok());
  CHECK(back->metadata.at("vocab") == "256");
  REQUIRE(back->tensors.size() == 3);
  CHECK(back->tensors[0].name == "w");
  CHECK(back->tensors[0].shape == std::vector<int64_t>{2, 3});
  CHECK(values_of(*back->find("w")) ==
        std::vector<double>{1.5, -2.0, 3.25, 0.0, 7.0, double(1e-3f)});
  CHECK(values_of(*back->find("tokens")) == std::vector<double>{3, 1, 4});
  CHECK(values_of(*back->find("loss")).at(0) == 2.718281828459045);
  CHECK(back->find("nope") == nullptr);
}

TEST_CASE("a damaged safetensors file is refused, naming the fault") {
  auto good = encode_safetensors(sample());
  CHECK(error_of({1, 2, 3}) == "m.safetensors: too short for a safetensors file (3 bytes)");
  auto long_header = good;
  long_header[0] = 0xff, long_header[1] = 0xff;
  CHECK(error_of(long_header).find("header length 65535 runs past the end") != std::string::npos);
  CHECK(error_of(with_header("[1, 2]  ", 0)) == "m.safetensors: the header is not a JSON object");
  CHECK(error_of(with_header(R"({"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", 2))
            .find("tensor a: dtype BF16 is not one of F32, F64, I32") != std::string::npos);
  CHECK(error_of(with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
            .find("tensor a: shape needs 12 bytes, offsets give 8") != std::string::npos);
  CHECK(error_of(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4))
            .find("lie outside the 4 data bytes") != std::string::npos);
  CHECK(error_of(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8))
            .find("tensor a leaves a hole before it") != std::string::npos);
  CHECK(error_of(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             8))
            .find("overlaps the one before it") != std::string::npos);
  CHECK(error_of(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8))
            .find("4 bytes after the last tensor") != std::string::npos);
  CHECK(error_of(with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4))
            .find("tensor a: shape holds -1") != std::string::npos);
  CHECK(read_safetensors("/nonexistent/m.safetensors").status().code() ==
        gossip::core::Code::kNotFound);
}
