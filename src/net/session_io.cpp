// The two data-path coroutines of a session. The reader pulls ciphertext into
// one large receive buffer and authenticates each complete Noise message:
// blob data is decrypted straight into the upper layer's destination (no
// copy), everything else in place and fed to the FrameDecoder. The writer
// fills a batch of Noise messages (control bytes first, then blob chunks),
// encrypting blob data straight from the caller's span, and hands the batch
// to one socket write; it fills the next batch while that write is in flight
// (two batches, double buffering), so encryption overlaps the kernel's work
// and the peer's decryption. When the Node's LinkFilter shapes the link to
// this peer, the writer holds each filled batch on a strand timer until the
// paced link lets it leave (see LinkShape); unshaped sessions pay one
// pointer check per write.
#include <algorithm>
#include <asio/bind_executor.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <cstring>
#include <utility>

#include "gossip/core/log.hpp"
#include "secure_session.hpp"

namespace gossip::net::detail {

using core::Status;

namespace {
constexpr size_t kMaxPlain = crypto::kMaxNoiseMessage - crypto::kTagBytes;  // 65519
constexpr size_t kWireMax = 2 + crypto::kMaxNoiseMessage;
// A blob chunk travels as two Noise messages: its 9-byte frame header alone,
// then only data, which is encrypted from (and decrypted into) the blob
// memory directly. Any split of the frame stream is valid on the wire.
constexpr size_t kHeaderWire = 2 + kChunkHeaderBytes + crypto::kTagBytes;
constexpr size_t kStepMax = kHeaderWire + kWireMax;  // most one fill step adds
// Receive buffer: small while only control frames come (a session per peer
// met, so this is paid many times over), grown to fit a longer message and to
// 1 MiB while a blob streams in, shrunk back once the blob is done.
constexpr size_t kRecvSmall = 4096;
constexpr size_t kRecvBlob = 1 << 20;
// Write batches: control-only batches stay this small; blob batches are
// max_batch_messages full chunks, and shrink back once the blobs are sent.
constexpr size_t kControlBatch = 8192;
constexpr size_t kMinStep = 2 + crypto::kTagBytes + 1;      // one sealed byte
constexpr auto kPaceSlack = std::chrono::milliseconds(10);  // see writer()
}  // namespace

asio::awaitable<void> SecureSession::reader() {
  auto self = shared_from_this();
  std::vector<uint8_t> buf(kRecvSmall);
  size_t begin = 0, end = 0;
  while (!closed_) {
    while (end - begin >= 2) {
      const size_t len = get_be16(buf.data() + begin);
      if (len < crypto::kTagBytes) {
        core_->refuse(core_->counters.bad_frame, "short-message",
                      "peer " + peer_id_.short_form() + " sent a " + std::to_string(len) +
                          "-byte Noise message (shorter than its tag)");
        close_on_strand(core::protocol_error("Noise message shorter than its tag"));
        co_return;
      }
      if (end - begin < 2 + len) break;
      const std::span<uint8_t> msg(buf.data() + begin + 2, len);
      // Blob data goes straight to its destination; libsodium checks the tag
      // before writing plaintext (on failure the window is zeroed, and the
      // blob is reported truncated when the session closes below).
      const std::span<uint8_t> direct = decoder_.blob_window(len - crypto::kTagBytes);
      auto plain = keys_.recv.decrypt({}, msg, direct.empty() ? msg : direct);
      if (!plain) {
        core_->refuse(core_->counters.decrypt_failed, "decrypt",
                      "transport message from " + peer_id_.short_form() +
                          " failed authentication (corrupted, replayed, reordered or dropped)");
        close_on_strand(core::auth_error("transport message failed authentication: " +
                                         plain.status().message()));
        co_return;
      }
      begin += 2 + len;
      last_rx_ = Clock::now();
      if (*plain > 0) last_use_ = last_rx_;  // not a keepalive
      if (!direct.empty()) {
        decoder_.blob_filled(*plain);
      } else if (Status s = decoder_.feed(msg.first(*plain)); !s) {
        core_->refuse(core_->counters.bad_frame, "bad-frame",
                      "peer " + peer_id_.short_form() + ": " + s.to_string());
        close_on_strand(s);
        co_return;
      }
      if (closed_) co_return;
    }
    if (begin == end) begin = end = 0;
    // The message in progress must fit, and a blob streams in large reads.
    const size_t need = end - begin >= 2 ? 2 + get_be16(buf.data() + begin) : 2;
    const size_t size = std::max(decoder_.blob_open() ? kRecvBlob : kRecvSmall, need);
    if (begin > 0 && (begin + need > size || buf.size() - end < std::min(kWireMax, size / 2))) {
      std::memmove(buf.data(), buf.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    if (buf.size() < size) {
      buf.resize(size);
    } else if (buf.size() > size && end <= size) {
      buf.resize(size);
      buf.shrink_to_fit();
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

bool SecureSession::seal(WireBatch& batch, std::span<const uint8_t> plain) {
  uint8_t* msg = batch.bytes.data() + batch.used;
  const std::span<uint8_t> out(msg + 2, plain.size() + crypto::kTagBytes);
  auto c = keys_.send.encrypt({}, plain, out);
  if (!c) {
    close_on_strand(c.status().with_context("encrypt"));
    return false;
  }
  put_be16(msg, static_cast<uint16_t>(*c));
  batch.used += 2 + *c;
  return true;
}

bool SecureSession::fill_batch(WireBatch& batch, size_t max_chunk, size_t budget) {
  batch.used = 0;
  budget = std::min(budget, batch.bytes.size());
  while (batch.used + kMinStep <= budget) {
    const size_t room = budget - batch.used;
    take_mail();
    if (!blob_q_.empty() && !blob_q_.front()->begun) {
      BlobJob& job = *blob_q_.front();
      job.begun = true;
      ctrl_queued_ += job.begin_frame.size();
      job.begin_mark = ctrl_queued_;
      ctrl_pending_.push_back(std::move(job.begin_frame));
    }
    uint8_t* plain = batch.bytes.data() + batch.used + 2;  // in place for small messages
    if (!ctrl_pending_.empty()) {
      // Frames may split across Noise messages: take what the room holds.
      const size_t max_plain = std::min(kMaxPlain, room - 2 - crypto::kTagBytes);
      if (!seal(batch, {plain, fill_control(plain, max_plain)})) return false;
      last_use_ = Clock::now();
    } else if (!blob_q_.empty() && blob_q_.front()->sent < blob_q_.front()->data.size()) {
      if (room < kStepMax) break;  // a full chunk, in the next batch
      BlobJob& job = *blob_q_.front();
      const size_t d =
          static_cast<size_t>(std::min<uint64_t>(job.data.size() - job.sent, max_chunk));
      write_chunk_header(plain, job.id, d);
      if (!seal(batch, {plain, kChunkHeaderBytes})) return false;
      if (!seal(batch, job.data.subspan(static_cast<size_t>(job.sent), d))) return false;
      job.sent += d;
      last_use_ = Clock::now();
    } else if (keepalive_due_) {
      keepalive_due_ = false;  // an empty transport message
      if (!seal(batch, {plain, 0})) return false;
    } else {
      break;
    }
    if (!blob_q_.empty()) {
      BlobJob* job = blob_q_.front();
      if (job->begun && job->sent == job->data.size() && ctrl_sent_ >= job->begin_mark) {
        // Its sender resumes once this batch is written: close the batch now.
        blob_q_.pop_front();
        batch.finishes = job;
        break;
      }
    }
  }
  return true;
}

void SecureSession::start_write(WireBatch& batch) {
  write_busy_ = true;
  auto self = std::static_pointer_cast<SecureSession>(shared_from_this());
  auto done = [self, &batch](const asio::error_code& ec, size_t n) {
    self->on_written(batch, ec, n);
  };
  asio::async_write(socket_, asio::buffer(batch.bytes.data(), batch.used),
                    asio::bind_executor(strand_, std::move(done)));
}

void SecureSession::on_written(WireBatch& batch, const asio::error_code& ec, size_t n) {
  write_busy_ = false;
  writer_cv_.cancel();
  if (closed_) return;  // close_on_strand settled batch.finishes
  if (ec) {
    close_on_strand(Status(core::Code::kClosed, "connection error: " + ec.message()));
    return;
  }
  core_->counters.bytes_sent += n;
  last_tx_ = Clock::now();
  if (BlobJob* job = std::exchange(batch.finishes, nullptr)) {
    job->status = Status::ok();
    job->done = true;
    blob_cv_.cancel();
  }
}

void SecureSession::refresh_shape() {
  if (!link_filter_) return;
  const uint64_t gen = link_filter_->shape_generation();
  if (gen == shape_gen_) return;
  shape_gen_ = gen;
  shape_ = link_filter_->shape_of(peer_id_.hex());
  if (!shape_) return;
  shape_->latency = std::max(shape_->latency, std::chrono::milliseconds(0));
  if (!(shape_->bytes_per_s > 0)) shape_->bytes_per_s = 0;  // NaN or negative: no cap
  if (shape_->latency.count() == 0 && shape_->bytes_per_s == 0) shape_.reset();
}

Clock::time_point SecureSession::shaped_release() {
  // Data picked up after the link went idle pays the latency; data that
  // streams behind earlier writes leaves when the paced link is free.
  Clock::time_point release = std::max(Clock::now(), link_free_);
  if (link_idle_) release += shape_->latency;
  return release;
}

asio::awaitable<void> SecureSession::writer() {
  auto self = shared_from_this();
  const size_t steps = std::max<size_t>(1, core_->config.max_batch_messages);
  const size_t max_chunk = std::min(kMaxPlain, core_->config.frames.max_chunk_data);
  link_filter_ = core_->link_filter();
  size_t next = 0;
  while (!closed_) {
    WireBatch& batch = batches_[next];  // never the one in flight
    refresh_shape();                    // one atomic load unless the filter's shaping changed
    const size_t want = blob_q_.empty() ? kControlBatch : steps * kStepMax;
    if (batch.bytes.size() < want) {
      batch.bytes.resize(want);
    } else if (batch.bytes.size() > want) {  // the blobs are sent: give the memory back
      batch.bytes.resize(want);
      batch.bytes.shrink_to_fit();
    }
    size_t budget = SIZE_MAX;
    if (shape_ && shape_->bytes_per_s > 0) {
      // A paced write carries at most ~10 ms of data (one message at least).
      const double per_10ms = shape_->bytes_per_s / 100.0;
      budget = std::max<size_t>(1, static_cast<size_t>(per_10ms / kStepMax)) * kStepMax;
    }
    if (!fill_batch(batch, max_chunk, budget)) co_return;
    if (batch.used == 0) {
      link_idle_ = true;
      co_await writer_cv_.async_wait(use_nothrow);  // mail, a blob, a keepalive or a write done
      continue;
    }
    std::optional<Clock::time_point> release;
    if (shape_) release = shaped_release();
    link_idle_ = false;
    while (write_busy_ && !closed_) co_await writer_cv_.async_wait(use_nothrow);
    while (release && !closed_ && Clock::now() < *release) {
      shape_timer_.expires_at(*release);
      co_await shape_timer_.async_wait(use_nothrow);  // cancelled only by close
    }
    if (closed_) co_return;
    if (shape_ && shape_->bytes_per_s > 0) {
      // The virtual link runs from the scheduled time, so late timer wake-ups
      // do not add up over a stream; a write held up longer (socket busy)
      // earns back at most kPaceSlack of burst.
      const auto start = std::max(*release, Clock::now() - kPaceSlack);
      const std::chrono::duration<double> on_wire(static_cast<double>(batch.used) /
                                                  shape_->bytes_per_s);
      link_free_ = start + std::chrono::duration_cast<Clock::duration>(on_wire);
    } else if (release) {
      link_free_ = std::max(link_free_, *release);
    }
    start_write(batch);
    next ^= 1;
  }
}

}  // namespace gossip::net::detail
