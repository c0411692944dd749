// The frame decoder: any split of the stream decodes the same, blobs land in
// the destination, and bad lengths (0, limit+1, 2^32-1) are refused before a
// single byte is allocated (a counting global operator new proves it).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "gossip/net/frames.hpp"

namespace {
std::atomic<size_t> g_allocs{0};
std::atomic<size_t> g_largest{0};
}  // namespace

void* operator new(size_t n) {
  g_allocs++;
  size_t prev = g_largest.load();
  while (n > prev && !g_largest.compare_exchange_weak(prev, n)) {
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

using namespace gossip;
using namespace gossip::net;

namespace {

struct Sink : FrameSink {
  std::vector<std::pair<uint8_t, std::string>> controls;
  std::vector<uint8_t> dest;
  bool accept = true;
  std::vector<uint32_t> completed;
  std::string last_header;
  core::Status on_control(uint8_t type, std::span<const uint8_t> body) override {
    controls.emplace_back(type, std::string(body.begin(), body.end()));
    return core::Status::ok();
  }
  core::Result<std::span<uint8_t>> on_blob_begin(const BlobBegin& b) override {
    last_header.assign(b.header.begin(), b.header.end());
    if (!accept) return core::invalid_argument("no");
    dest.assign(b.total_bytes, 0);
    return std::span<uint8_t>(dest);
  }
  void on_blob_complete(uint32_t id) override { completed.push_back(id); }
};

std::vector<uint8_t> header_only(uint32_t len, uint8_t type) {
  std::vector<uint8_t> h(5);
  put_be32(h.data(), len);
  h[4] = type;
  return h;
}

std::vector<uint8_t> chunk(uint32_t id, const uint8_t* data, size_t n) {
  std::vector<uint8_t> out(kChunkHeaderBytes + n);
  write_chunk_header(out.data(), id, n);
  std::memcpy(out.data() + kChunkHeaderBytes, data, n);
  return out;
}

std::vector<uint8_t> sample_stream(const std::vector<uint8_t>& blob) {
  std::vector<uint8_t> s;
  auto add = [&](const std::vector<uint8_t>& v) { s.insert(s.end(), v.begin(), v.end()); };
  const std::string json = R"({"op":"probe","seq":1})";
  add(encode_frame(0x10, {reinterpret_cast<const uint8_t*>(json.data()), json.size()}));
  add(encode_frame(kStatusReq, {}));
  const std::string hdr = "hdr";
  add(encode_blob_begin(9, blob.size(),
                        {reinterpret_cast<const uint8_t*>(hdr.data()), hdr.size()}));
  add(chunk(9, blob.data(), 1000));
  add(encode_frame(0x11, {}));  // control between chunks
  add(chunk(9, blob.data() + 1000, blob.size() - 1000));
  add(encode_frame(0x12, {reinterpret_cast<const uint8_t*>("x"), 1}));
  return s;
}

}  // namespace

TEST_CASE("every split of the stream decodes to the same frames and blob") {
  std::vector<uint8_t> blob(5000);
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<uint8_t>(i * 7);
  const auto stream = sample_stream(blob);
  for (size_t step :
       {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}, size_t{4096}, stream.size()}) {
    Sink sink;
    FrameDecoder dec(FrameLimits{}, sink);
    for (size_t i = 0; i < stream.size(); i += step) {
      REQUIRE(dec.feed({stream.data() + i, std::min(step, stream.size() - i)}).is_ok());
    }
    REQUIRE(sink.controls.size() == 4);
    CHECK(sink.controls[0].second == R"({"op":"probe","seq":1})");
    CHECK(sink.controls[1].first == kStatusReq);
    CHECK(sink.controls[2].first == 0x11);
    CHECK(sink.controls[3].second == "x");
    CHECK(sink.last_header == "hdr");
    REQUIRE(sink.completed == std::vector<uint32_t>{9});
    CHECK(sink.dest == blob);
    CHECK_FALSE(dec.blob_open());
  }
}

TEST_CASE("a refused blob is drained without touching memory, then decoding goes on") {
  std::vector<uint8_t> blob(5000, 1);
  Sink sink;
  sink.accept = false;
  FrameDecoder dec(FrameLimits{}, sink);
  REQUIRE(dec.feed(sample_stream(blob)).is_ok());
  CHECK(sink.completed.empty());
  CHECK(sink.controls.size() == 4);
}

TEST_CASE("frame lengths 0, limit+1 and 2^32-1 are refused before any allocation") {
  FrameLimits limits;
  for (uint32_t len : {0u, static_cast<uint32_t>(limits.max_control_body + 2), 0xffffffffu}) {
    for (uint8_t type :
         {uint8_t{0x10}, uint8_t{kBlobBegin}, uint8_t{kBlobChunk}, uint8_t{kStatus}}) {
      Sink sink;
      FrameDecoder dec(limits, sink);
      auto h = header_only(len, type);
      h.resize(h.size() + 100, 0xab);  // some body bytes follow
      const size_t before = g_allocs.load();
      const size_t largest_before = g_largest.exchange(0);
      auto s = dec.feed({h.data(), 5});  // header alone: the decision is made here
      const size_t allocs = g_allocs.load() - before;
      const size_t largest = g_largest.exchange(largest_before);
      CAPTURE(len);
      CAPTURE(int(type));
      CHECK_FALSE(s.is_ok());
      // Only the error message may allocate: nothing near the announced size.
      CHECK(largest < 1024);
      CHECK(allocs < 10);
      CHECK(dec.largest_allocation() == 0);
      CHECK_FALSE(dec.feed({h.data() + 5, 10}).is_ok());  // stays dead
      CHECK(sink.controls.empty());
    }
  }
}

TEST_CASE("a control frame at the limit is buffered with exactly one bounded allocation") {
  FrameLimits limits;
  std::vector<uint8_t> body(limits.max_control_body, 0x5a);
  auto f = encode_frame(0x20, body);
  Sink sink;
  FrameDecoder dec(limits, sink);
  REQUIRE(dec.feed({f.data(), 100}).is_ok());
  REQUIRE(dec.feed({f.data() + 100, f.size() - 100}).is_ok());
  REQUIRE(sink.controls.size() == 1);
  CHECK(sink.controls[0].second.size() == limits.max_control_body);
  CHECK(dec.largest_allocation() == limits.max_control_body);
}

TEST_CASE("blob protocol errors close the stream") {
  std::vector<uint8_t> data(100, 3);
  SUBCASE("chunk without an open blob") {
    Sink sink;
    FrameDecoder dec(FrameLimits{}, sink);
    CHECK(dec.feed(chunk(1, data.data(), 10)).code() == core::Code::kProtocol);
  }
  SUBCASE("more data than announced") {
    Sink sink;
    FrameDecoder dec(FrameLimits{}, sink);
    REQUIRE(dec.feed(encode_blob_begin(1, 50, {})).is_ok());
    CHECK(dec.feed(chunk(1, data.data(), 51)).code() == core::Code::kProtocol);
  }
  SUBCASE("chunk for another stream") {
    Sink sink;
    FrameDecoder dec(FrameLimits{}, sink);
    REQUIRE(dec.feed(encode_blob_begin(1, 50, {})).is_ok());
    CHECK(dec.feed(chunk(2, data.data(), 10)).code() == core::Code::kProtocol);
    CHECK(sink.completed.empty());
  }
  SUBCASE("second BLOB_BEGIN while one is open") {
    Sink sink;
    FrameDecoder dec(FrameLimits{}, sink);
    REQUIRE(dec.feed(encode_blob_begin(1, 50, {})).is_ok());
    CHECK_FALSE(dec.feed(encode_blob_begin(2, 50, {})).is_ok());
  }
  SUBCASE("announced size above the blob limit") {
    Sink sink;
    FrameLimits limits;
    limits.max_blob_bytes = 1000;
    FrameDecoder dec(limits, sink);
    CHECK(dec.feed(encode_blob_begin(1, 1001, {})).code() == core::Code::kResourceLimit);
    CHECK(sink.dest.empty());
  }
  SUBCASE("zero-length blob completes at once") {
    Sink sink;
    FrameDecoder dec(FrameLimits{}, sink);
    REQUIRE(dec.feed(encode_blob_begin(4, 0, {})).is_ok());
    CHECK(sink.completed == std::vector<uint32_t>{4});
  }
}

TEST_CASE("blob data written through blob_window lands like fed data and completes the blob") {
  std::vector<uint8_t> blob(3000);
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<uint8_t>(i * 13);
  Sink sink;
  FrameDecoder dec(FrameLimits{}, sink);
  CHECK(dec.blob_window(10).empty());  // no blob open
  REQUIRE(dec.feed(encode_blob_begin(3, blob.size(), {})).is_ok());
  CHECK(dec.blob_window(10).empty());  // a chunk header comes first
  // Chunk 1 (2000 bytes): header fed, 500 bytes fed, 1500 through the window.
  std::vector<uint8_t> hdr(kChunkHeaderBytes);
  write_chunk_header(hdr.data(), 3, 2000);
  REQUIRE(dec.feed(hdr).is_ok());
  CHECK(dec.blob_window(0).empty());
  CHECK(dec.blob_window(2001).empty());  // would run past the chunk
  REQUIRE(dec.feed({blob.data(), 500}).is_ok());
  CHECK(dec.blob_window(1501).empty());
  auto w = dec.blob_window(1500);
  REQUIRE(w.size() == 1500);
  CHECK(w.data() == sink.dest.data() + 500);
  std::memcpy(w.data(), blob.data() + 500, 1500);
  dec.blob_filled(1500);
  CHECK(dec.blob_received() == 2000);
  CHECK(dec.blob_window(1).empty());  // the chunk ended: a frame header is next
  // A control frame between chunks, then chunk 2 entirely through the window.
  REQUIRE(dec.feed(encode_frame(0x11, {})).is_ok());
  write_chunk_header(hdr.data(), 3, 1000);
  REQUIRE(dec.feed(hdr).is_ok());
  w = dec.blob_window(1000);
  REQUIRE(w.size() == 1000);
  std::memcpy(w.data(), blob.data() + 2000, 1000);
  CHECK(sink.completed.empty());
  dec.blob_filled(1000);
  CHECK(sink.completed == std::vector<uint32_t>{3});
  CHECK(sink.dest == blob);
  CHECK_FALSE(dec.blob_open());
  CHECK(sink.controls.size() == 1);
  // Decoding goes on after the blob.
  REQUIRE(dec.feed(encode_frame(0x12, {})).is_ok());
  CHECK(sink.controls.size() == 2);
}

TEST_CASE("a refused blob never offers a window: its data must be fed and dropped") {
  Sink sink;
  sink.accept = false;
  FrameDecoder dec(FrameLimits{}, sink);
  REQUIRE(dec.feed(encode_blob_begin(5, 100, {})).is_ok());
  std::vector<uint8_t> hdr(kChunkHeaderBytes);
  write_chunk_header(hdr.data(), 5, 100);
  REQUIRE(dec.feed(hdr).is_ok());
  CHECK(dec.blob_window(100).empty());
  std::vector<uint8_t> data(100, 9);
  REQUIRE(dec.feed(data).is_ok());
  CHECK(sink.completed.empty());
  CHECK_FALSE(dec.blob_open());
}
