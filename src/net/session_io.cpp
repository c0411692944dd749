// The two data-path coroutines of a session. The reader pulls ciphertext into
// one large receive buffer, decrypts each complete Noise message in place and
// feeds the plaintext to the FrameDecoder (which copies blob data once, into
// the upper layer's destination). The writer fills a batch of Noise messages,
// control bytes first and then at most one blob chunk per message, encrypting
// each in place in the send buffer, and hands the batch to one socket write.
#include <algorithm>
#include <cstring>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "gossip/core/log.hpp"
#include "secure_session.hpp"

namespace gossip::net::detail {

using core::Status;

namespace {
constexpr size_t kMaxPlain = crypto::kMaxNoiseMessage - crypto::kTagBytes;  // 65519
constexpr size_t kWireMax = 2 + crypto::kMaxNoiseMessage;
constexpr size_t kRecvBuffer = 1 << 20;
}  // namespace

asio::awaitable<void> SecureSession::reader() {
  auto self = shared_from_this();
  std::vector<uint8_t> buf(kRecvBuffer);
  size_t begin = 0, end = 0;
  while (!closed_) {
    while (end - begin >= 2) {
      const size_t len = get_be16(buf.data() + begin);
      if (len < crypto::kTagBytes) {
        core_->refuse(core_->counters.bad_frame, "short-message",
                      "peer " + peer_id_.substr(0, 12) + " sent a " + std::to_string(len) +
                          "-byte Noise message (shorter than its tag)");
        close_on_strand(core::protocol_error("Noise message shorter than its tag"));
        co_return;
      }
      if (end - begin < 2 + len) break;
      const std::span<uint8_t> msg(buf.data() + begin + 2, len);
      auto plain = keys_.recv.decrypt({}, msg, msg);
      if (!plain) {
        core_->refuse(core_->counters.decrypt_failed, "decrypt",
                      "transport message from " + peer_id_.substr(0, 12) +
                          " failed authentication (corrupted, replayed, reordered or dropped)");
        close_on_strand(core::auth_error("transport message failed authentication: " +
                                         plain.status().message()));
        co_return;
      }
      begin += 2 + len;
      last_rx_ = Clock::now();
      if (Status s = decoder_.feed(msg.first(*plain)); !s) {
        core_->refuse(core_->counters.bad_frame, "bad-frame",
                      "peer " + peer_id_.substr(0, 12) + ": " + s.to_string());
        close_on_strand(s);
        co_return;
      }
      if (closed_) co_return;
    }
    if (begin == end) {
      begin = end = 0;
    } else if (buf.size() - end < kWireMax) {
      std::memmove(buf.data(), buf.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    auto [ec, n] = co_await socket_.async_read_some(
        asio::buffer(buf.data() + end, buf.size() - end), use_nothrow);
    if (closed_) co_return;
    if (ec) {
      close_on_strand(Status(core::Code::kClosed, ec == asio::error::eof
                                                      ? std::string("connection closed by peer")
                                                      : "connection error: " + ec.message()));
      co_return;
    }
    core_->counters.bytes_received += n;
    end += n;
  }
}

void SecureSession::take_mail() {
  if (!ctrl_pending_.empty()) return;
  bool took = false;
  {
    std::lock_guard lock(mail_mu_);
    if (!mailbox_.empty()) {
      ctrl_pending_.swap(mailbox_);
      took = true;
    }
  }
  if (took) {
    for (const auto& f : ctrl_pending_) ctrl_queued_ += f.size();
    space_cv_.cancel();
  }
}

size_t SecureSession::fill_control(uint8_t* out, size_t max) {
  size_t used = 0;
  while (used < max && !ctrl_pending_.empty()) {
    const auto& f = ctrl_pending_.front();
    const size_t take = std::min(max - used, f.size() - ctrl_off_);
    std::memcpy(out + used, f.data() + ctrl_off_, take);
    used += take;
    ctrl_off_ += take;
    if (ctrl_off_ == f.size()) {
      ctrl_pending_.pop_front();
      ctrl_off_ = 0;
    }
  }
  ctrl_sent_ += used;
  return used;
}

void SecureSession::finish_blob_if_done() {
  if (blob_q_.empty()) return;
  BlobJob* job = blob_q_.front();
  if (!job->begun || job->sent != job->data.size() || ctrl_sent_ < job->begin_mark) return;
  blob_q_.pop_front();
  job->status = Status::ok();
  job->done = true;
  blob_cv_.cancel();
}

asio::awaitable<void> SecureSession::writer() {
  auto self = shared_from_this();
  const size_t batch = std::max<size_t>(1, core_->config.max_batch_messages);
  send_buf_.resize(batch * kWireMax);
  const size_t max_chunk =
      std::min(kMaxPlain - kChunkHeaderBytes, core_->config.frames.max_chunk_data);
  while (!closed_) {
    size_t used = 0;
    for (size_t m = 0; m < batch; ++m) {
      take_mail();
      if (!blob_q_.empty() && !blob_q_.front()->begun) {
        BlobJob& job = *blob_q_.front();
        job.begun = true;
        ctrl_queued_ += job.begin_frame.size();
        job.begin_mark = ctrl_queued_;
        ctrl_pending_.push_back(std::move(job.begin_frame));
      }
      uint8_t* msg = send_buf_.data() + used;
      uint8_t* plain = msg + 2;
      size_t n = 0;
      if (!ctrl_pending_.empty()) {
        n = fill_control(plain, kMaxPlain);
      } else if (!blob_q_.empty() && blob_q_.front()->sent < blob_q_.front()->data.size()) {
        BlobJob& job = *blob_q_.front();
        const size_t d = static_cast<size_t>(std::min<uint64_t>(job.data.size() - job.sent, max_chunk));
        write_chunk_header(plain, job.id, d);
        std::memcpy(plain + kChunkHeaderBytes, job.data.data() + job.sent, d);
        job.sent += d;
        n = kChunkHeaderBytes + d;
      } else if (keepalive_due_) {
        keepalive_due_ = false;  // an empty transport message
      } else {
        break;
      }
      auto c = keys_.send.encrypt({}, std::span<const uint8_t>(plain, n),
                                  std::span<uint8_t>(plain, n + crypto::kTagBytes));
      if (!c) {
        close_on_strand(c.status().with_context("encrypt"));
        co_return;
      }
      put_be16(msg, static_cast<uint16_t>(*c));
      used += 2 + *c;
      if (!blob_q_.empty() && blob_q_.front()->begun &&
          blob_q_.front()->sent == blob_q_.front()->data.size()) {
        break;  // let the blob's sender resume as soon as its last chunk is out
      }
    }
    if (used == 0) {
      co_await writer_cv_.async_wait(use_nothrow);
      continue;
    }
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(send_buf_.data(), used), use_nothrow);
    if (closed_) co_return;
    if (ec) {
      close_on_strand(Status(core::Code::kClosed, "connection error: " + ec.message()));
      co_return;
    }
    core_->counters.bytes_sent += n;
    last_tx_ = Clock::now();
    finish_blob_if_done();
  }
}

}  // namespace gossip::net::detail
