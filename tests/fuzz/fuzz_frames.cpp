// libFuzzer target for the application-frame decoder: arbitrary decrypted
// transport payload bytes, fed in pieces whose sizes the input also chooses,
// must never crash, overrun a blob destination or allocate beyond the limits.
// Input layout: byte 0 = split step (1..256), byte 1 bit 0 = accept blobs;
// the rest is the plaintext frame stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "gossip/net/frames.hpp"

namespace {

using namespace gossip;

struct Sink : net::FrameSink {
  bool accept = true;
  std::vector<uint8_t> dest;
  core::Status on_control(uint8_t, std::span<const uint8_t> body) override {
    if (body.size() > 64 * 1024) std::abort();
    return core::Status::ok();
  }
  core::Result<std::span<uint8_t>> on_blob_begin(const net::BlobBegin& b) override {
    if (!accept || b.total_bytes > (1u << 20)) return core::invalid_argument("refused");
    dest.assign(b.total_bytes, 0);
    return std::span<uint8_t>(dest);
  }
  void on_blob_complete(uint32_t) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t step = size_t{data[0]} + 1;
  Sink sink;
  sink.accept = (data[1] & 1) != 0;
  net::FrameLimits limits;
  net::FrameDecoder dec(limits, sink);
  for (size_t i = 2; i < size; i += step) {
    const size_t n = std::min(step, size - i);
    if (!dec.feed({data + i, n}).is_ok()) break;
  }
  if (dec.largest_allocation() > limits.max_control_body) std::abort();
  if (dec.blob_received() > dec.blob_total()) std::abort();
  return 0;
}
