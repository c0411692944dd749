// Application frames: the byte stream carried inside the Noise transport
// messages, and the incremental decoder that turns it back into frames.
//
// Wire protocol v1 (docs/protocol.md). Every Noise message (handshake and transport)
// travels as `u16 BE length | message` (length <= 65535, tag included). The
// decrypted transport payloads, concatenated, form one stream of frames:
//
//     u32 BE length of (type + body) | u8 type | body
//
// Frame types defined by the net module (all integers big-endian):
//
//   0x01 BLOB_BEGIN   u32 stream_id | u64 total_bytes | header (<= 4 KiB)
//                     Opens a blob of exactly total_bytes. The receiver's
//                     upper layer is handed the header and must supply a
//                     destination of exactly total_bytes, or refuse (the blob's
//                     chunks are then read and dropped). At most one blob is
//                     open per direction; it is complete when total_bytes have
//                     arrived in BLOB_CHUNKs.
//   0x02 BLOB_CHUNK   u32 stream_id | data (1 .. 64 KiB bytes)
//                     The next bytes of the open blob. More data than the blob
//                     announced, a chunk with no open blob or another stream id
//                     is a protocol error that closes the session.
//   0x30 STATUS_REQ   (empty body) Asks the peer for its STATUS.
//   0x31 STATUS       JSON object: {"peer_id": hex, "step": n, "members": n,
//                     "model": fingerprint, ...extra keys from the owner}.
//
//   Every other type is a control frame delivered to the upper layer with its
//   body (at most 64 KiB). Ranges: 0x10-0x2f membership, 0x40-0x5f averaging;
//   0x00 is never valid. A length of 0 or above a limit closes the session
//   before anything is allocated. An empty Noise transport message (tag only)
//   is a keepalive and carries no frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "gossip/core/status.hpp"

namespace gossip::net {

enum FrameType : uint8_t {
  kBlobBegin = 0x01,
  kBlobChunk = 0x02,
  kStatusReq = 0x30,
  kStatus = 0x31,
};

inline constexpr size_t kFrameHeaderBytes = 5;      // u32 length + u8 type
inline constexpr size_t kBlobBeginFixedBytes = 12;  // stream id + total
inline constexpr size_t kBlobChunkPrefixBytes = 4;  // stream id

// Limits the decoder enforces before it allocates or copies anything.
struct FrameLimits {
  size_t max_control_body = 64 * 1024;           // control frame bodies (JSON etc.)
  size_t max_blob_header = 4 * 1024;             // BLOB_BEGIN header part
  size_t max_chunk_data = 64 * 1024;             // data bytes per BLOB_CHUNK
  uint64_t max_blob_bytes = uint64_t{16} << 30;  // announced blob size
};

// What a BLOB_BEGIN announced.
struct BlobBegin {
  uint32_t stream_id = 0;
  uint64_t total_bytes = 0;
  std::span<const uint8_t> header;  // valid only during the callback
};

// Receives decoded frames. Called synchronously from FrameDecoder::feed.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A complete control frame (any type except the blob types); `body` is
  // valid only during the call. A non-ok Status stops the decoder.
  virtual core::Status on_control(uint8_t type, std::span<const uint8_t> body) = 0;
  // A blob opens. Return the destination (its size must equal total_bytes and
  // it must stay valid until on_blob_complete or the session's end), or a
  // non-ok Status to refuse: the blob's data is then dropped.
  virtual core::Result<std::span<uint8_t>> on_blob_begin(const BlobBegin& begin) = 0;
  // Every byte of the accepted blob `stream_id` has been copied in.
  virtual void on_blob_complete(uint32_t stream_id) = 0;
};

// Incremental decoder of the decrypted frame stream. Feed it any split of the
// stream; it validates each length against FrameLimits before buffering, and
// copies blob data straight into the destination the sink supplied. After the
// first error every further feed returns that error. Not thread-safe.
class FrameDecoder {
 public:
  FrameDecoder(const FrameLimits& limits, FrameSink& sink);

  // Consumes all of `bytes`. Returns ok, or the first protocol error.
  core::Status feed(std::span<const uint8_t> bytes);

  // An accepted blob is open (some of its data may still be missing).
  bool blob_open() const { return blob_open_ && !blob_refused_; }
  uint32_t blob_stream_id() const { return blob_id_; }
  uint64_t blob_received() const { return blob_received_; }
  uint64_t blob_total() const { return blob_total_; }
  // Largest buffer the decoder ever reserved, in bytes (tests prove limits).
  size_t largest_allocation() const { return largest_allocation_; }

  // Zero-copy path for blob data. When the next `n` bytes of the stream are
  // all data of the accepted open blob (inside one BLOB_CHUNK), returns the
  // part of the destination they belong in, so the caller can write them
  // there directly (e.g. decrypt into it) and then call blob_filled(n).
  // Otherwise (n == 0, another state, a refused blob, a chunk ending before
  // n bytes) returns an empty span: feed() the bytes instead.
  std::span<uint8_t> blob_window(size_t n) const;
  // The next `n` stream bytes were written into blob_window(n): advances as
  // feed() of those bytes would, completing the blob (on_blob_complete) when
  // they were its last bytes. Requires a non-empty blob_window(n) just before.
  void blob_filled(size_t n);

 private:
  enum class State { kHeader, kBody, kChunkPrefix, kChunkData, kDead };
  core::Status fail(core::Status s);
  core::Status on_header();
  core::Status on_body(std::span<const uint8_t> body);
  core::Status on_chunk_prefix();
  void chunk_data(std::span<const uint8_t> data);
  void end_chunk();

  FrameLimits limits_;
  FrameSink& sink_;
  State state_ = State::kHeader;
  core::Status error_;
  uint8_t header_[kFrameHeaderBytes] = {};
  size_t header_have_ = 0;
  uint8_t type_ = 0;
  size_t body_len_ = 0;   // bytes of body in the current frame
  size_t body_have_ = 0;  // of which already consumed
  std::vector<uint8_t> body_buf_;
  size_t largest_allocation_ = 0;
  // The open blob.
  bool blob_open_ = false;
  bool blob_refused_ = false;
  uint32_t blob_id_ = 0;
  uint64_t blob_total_ = 0;
  uint64_t blob_received_ = 0;
  std::span<uint8_t> blob_dest_;
};

// Encodes `u32 length | type | body` (for control frames and tests).
std::vector<uint8_t> encode_frame(uint8_t type, std::span<const uint8_t> body);
// Encodes a BLOB_BEGIN frame.
std::vector<uint8_t> encode_blob_begin(uint32_t stream_id, uint64_t total_bytes,
                                       std::span<const uint8_t> header);
// Writes the 9-byte BLOB_CHUNK frame header for `data_bytes` of data to `out`.
void write_chunk_header(uint8_t* out, uint32_t stream_id, size_t data_bytes);
inline constexpr size_t kChunkHeaderBytes = kFrameHeaderBytes + kBlobChunkPrefixBytes;

// Big-endian helpers shared with the session code.
inline void put_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put_be32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
inline void put_be64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
inline uint16_t get_be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t get_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t get_be64(const uint8_t* p) {
  return (uint64_t{get_be32(p)} << 32) | get_be32(p + 4);
}

}  // namespace gossip::net
