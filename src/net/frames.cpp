// Frame encoding and the incremental frame decoder. The decoder is the first
// code that sees bytes a remote peer chose (after decryption), so every length
// is checked against FrameLimits before a byte is buffered or copied, and the
// only allocation it makes is a control-frame body that spans several feeds.
#include "gossip/net/frames.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace gossip::net {

using core::Status;

FrameDecoder::FrameDecoder(const FrameLimits& limits, FrameSink& sink)
    : limits_(limits), sink_(sink) {}

Status FrameDecoder::fail(Status s) {
  state_ = State::kDead;
  error_ = s;
  return s;
}

Status FrameDecoder::feed(std::span<const uint8_t> bytes) {
  if (state_ == State::kDead) return error_;
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    const size_t avail = n - i;
    switch (state_) {
      case State::kHeader: {
        const size_t take = std::min(avail, kFrameHeaderBytes - header_have_);
        std::memcpy(header_ + header_have_, bytes.data() + i, take);
        header_have_ += take;
        i += take;
        if (header_have_ == kFrameHeaderBytes) {
          header_have_ = 0;
          if (Status s = on_header(); !s) return fail(s);
        }
        break;
      }
      case State::kBody: {
        if (body_have_ == 0 && avail >= body_len_) {
          // Whole body present: hand it over without copying.
          const auto body = bytes.subspan(i, body_len_);
          i += body_len_;
          state_ = State::kHeader;
          if (Status s = on_body(body); !s) return fail(s);
          break;
        }
        if (body_have_ == 0) {
          body_buf_.clear();
          if (body_buf_.capacity() < body_len_) {
            body_buf_.reserve(body_len_);  // body_len_ was checked in on_header
            largest_allocation_ = std::max(largest_allocation_, body_buf_.capacity());
          }
        }
        const size_t take = std::min(avail, body_len_ - body_have_);
        body_buf_.insert(body_buf_.end(), bytes.data() + i, bytes.data() + i + take);
        body_have_ += take;
        i += take;
        if (body_have_ == body_len_) {
          body_have_ = 0;
          state_ = State::kHeader;
          if (Status s = on_body(body_buf_); !s) return fail(s);
        }
        break;
      }
      case State::kChunkPrefix: {
        const size_t take = std::min(avail, kBlobChunkPrefixBytes - header_have_);
        std::memcpy(header_ + header_have_, bytes.data() + i, take);
        header_have_ += take;
        i += take;
        if (header_have_ == kBlobChunkPrefixBytes) {
          header_have_ = 0;
          if (Status s = on_chunk_prefix(); !s) return fail(s);
        }
        break;
      }
      case State::kChunkData: {
        const size_t take = std::min(avail, body_len_ - body_have_);
        chunk_data(bytes.subspan(i, take));
        body_have_ += take;
        i += take;
        if (body_have_ == body_len_) end_chunk();
        break;
      }
      case State::kDead:
        return error_;
    }
  }
  return Status::ok();
}

Status FrameDecoder::on_header() {
  const uint32_t len = get_be32(header_);
  type_ = header_[4];
  if (len == 0) return core::protocol_error("frame length 0 (must include the type byte)");
  body_len_ = len - 1;
  body_have_ = 0;
  if (type_ == 0) return core::protocol_error("frame type 0 is invalid");
  if (type_ == kBlobChunk) {
    if (body_len_ <= kBlobChunkPrefixBytes) return core::protocol_error("empty BLOB_CHUNK");
    const size_t data = body_len_ - kBlobChunkPrefixBytes;
    if (data > limits_.max_chunk_data) {
      return core::resource_limit("BLOB_CHUNK of " + std::to_string(data) +
                                  " data bytes exceeds the limit of " +
                                  std::to_string(limits_.max_chunk_data));
    }
    if (!blob_open_) return core::protocol_error("BLOB_CHUNK without an open blob");
    if (data > blob_total_ - blob_received_) {
      return core::protocol_error("blob " + std::to_string(blob_id_) + " overrun: announced " +
                                  std::to_string(blob_total_) + " bytes, got more");
    }
    state_ = State::kChunkPrefix;
    return Status::ok();
  }
  if (type_ == kBlobBegin) {
    if (body_len_ < kBlobBeginFixedBytes ||
        body_len_ - kBlobBeginFixedBytes > limits_.max_blob_header) {
      return core::resource_limit("BLOB_BEGIN body of " + std::to_string(body_len_) +
                                  " bytes outside [12, 12 + " +
                                  std::to_string(limits_.max_blob_header) + "]");
    }
    if (blob_open_) return core::protocol_error("BLOB_BEGIN while another blob is open");
  } else if (body_len_ > limits_.max_control_body) {
    char what[64];
    std::snprintf(what, sizeof what, "frame type 0x%02x of %u bytes", type_, len);
    return core::resource_limit(std::string(what) + " exceeds the control frame limit of " +
                                std::to_string(limits_.max_control_body) + " bytes");
  }
  state_ = State::kBody;
  if (body_len_ == 0) {
    state_ = State::kHeader;
    return on_body({});
  }
  return Status::ok();
}

Status FrameDecoder::on_body(std::span<const uint8_t> body) {
  if (type_ != kBlobBegin) return sink_.on_control(type_, body);
  const uint32_t id = get_be32(body.data());
  const uint64_t total = get_be64(body.data() + 4);
  if (total > limits_.max_blob_bytes) {
    return core::resource_limit("blob of " + std::to_string(total) +
                                " bytes exceeds the limit of " +
                                std::to_string(limits_.max_blob_bytes));
  }
  blob_open_ = true;
  blob_refused_ = false;
  blob_id_ = id;
  blob_total_ = total;
  blob_received_ = 0;
  blob_dest_ = {};
  core::Result<std::span<uint8_t>> dest =
      sink_.on_blob_begin(BlobBegin{id, total, body.subspan(kBlobBeginFixedBytes)});
  if (!dest || dest->size() != total) {
    blob_refused_ = true;  // drained: the data is read and dropped
  } else {
    blob_dest_ = *dest;
  }
  if (total == 0) {
    blob_open_ = false;
    if (!blob_refused_) sink_.on_blob_complete(id);
  }
  return Status::ok();
}

Status FrameDecoder::on_chunk_prefix() {
  const uint32_t id = get_be32(header_);
  if (id != blob_id_) {
    return core::protocol_error("BLOB_CHUNK for stream " + std::to_string(id) + " while stream " +
                                std::to_string(blob_id_) + " is open");
  }
  body_len_ -= kBlobChunkPrefixBytes;
  body_have_ = 0;
  state_ = State::kChunkData;
  return Status::ok();
}

void FrameDecoder::chunk_data(std::span<const uint8_t> data) {
  if (!blob_refused_) std::memcpy(blob_dest_.data() + blob_received_, data.data(), data.size());
  blob_received_ += data.size();
}

void FrameDecoder::end_chunk() {
  body_have_ = 0;
  state_ = State::kHeader;
  if (blob_received_ == blob_total_) {
    blob_open_ = false;
    if (!blob_refused_) sink_.on_blob_complete(blob_id_);
  }
}

std::span<uint8_t> FrameDecoder::blob_window(size_t n) const {
  if (state_ != State::kChunkData || blob_refused_ || n == 0 || n > body_len_ - body_have_) {
    return {};
  }
  return blob_dest_.subspan(static_cast<size_t>(blob_received_), n);
}

void FrameDecoder::blob_filled(size_t n) {
  blob_received_ += n;
  body_have_ += n;
  if (body_have_ == body_len_) end_chunk();
}

std::vector<uint8_t> encode_frame(uint8_t type, std::span<const uint8_t> body) {
  std::vector<uint8_t> out(kFrameHeaderBytes + body.size());
  put_be32(out.data(), static_cast<uint32_t>(body.size() + 1));
  out[4] = type;
  if (!body.empty()) std::memcpy(out.data() + kFrameHeaderBytes, body.data(), body.size());
  return out;
}

std::vector<uint8_t> encode_blob_begin(uint32_t stream_id, uint64_t total_bytes,
                                       std::span<const uint8_t> header) {
  std::vector<uint8_t> body(kBlobBeginFixedBytes + header.size());
  put_be32(body.data(), stream_id);
  put_be64(body.data() + 4, total_bytes);
  if (!header.empty())
    std::memcpy(body.data() + kBlobBeginFixedBytes, header.data(), header.size());
  return encode_frame(kBlobBegin, body);
}

void write_chunk_header(uint8_t* out, uint32_t stream_id, size_t data_bytes) {
  put_be32(out, static_cast<uint32_t>(data_bytes + kBlobChunkPrefixBytes + 1));
  out[4] = kBlobChunk;
  put_be32(out + kFrameHeaderBytes, stream_id);
}

}  // namespace gossip::net
