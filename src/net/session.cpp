// SecureSession life cycle: construction, the watchdog (handshake deadline,
// idle timeout, keepalive), closing, the upper-layer send API (which hops onto
// the strand) and the FrameSink that routes decoded frames to the handler.
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <nlohmann/json.hpp>

#include "gossip/core/log.hpp"
#include "secure_session.hpp"

namespace gossip::net::detail {

using core::Status;

SecureSession::SecureSession(std::shared_ptr<NodeCore> core, asio::ip::tcp::socket socket,
                             Strand strand, crypto::Role role, std::string address)
    : core_(std::move(core)),
      socket_(std::move(socket)),
      strand_(std::move(strand)),
      role_(role),
      address_(std::move(address)),
      decoder_(core_->config.frames, *this),
      deadline_(Clock::now() + core_->config.handshake_timeout),
      watchdog_timer_(strand_),
      writer_cv_(strand_, Clock::time_point::max()),
      space_cv_(strand_, Clock::time_point::max()),
      blob_cv_(strand_, Clock::time_point::max()),
      shape_timer_(strand_) {}

SecureSession::~SecureSession() = default;

void SecureSession::setup_socket() {
  asio::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (const int b = core_->config.socket_buffer_bytes; b > 0) {
    socket_.set_option(asio::socket_base::send_buffer_size(b), ec);
    socket_.set_option(asio::socket_base::receive_buffer_size(b), ec);
  }
}

std::string SecureSession::remote_address_string() const {
  return remote_.address().to_string() + ":" + std::to_string(remote_.port());
}

asio::awaitable<void> SecureSession::watchdog() {
  auto self = shared_from_this();
  const NetConfig& cfg = core_->config;
  while (!closed_) {
    const auto now = Clock::now();
    Clock::time_point next;
    if (!established_) {
      if (now >= deadline_) {
        core_->refuse(core_->counters.handshake_timeout, "handshake-timeout",
                      "handshake with " + remote_address_string() + " not finished within " +
                          std::to_string(cfg.handshake_timeout.count()) + " ms");
        close_on_strand(core::timeout_error(
            "handshake not finished within " + std::to_string(cfg.handshake_timeout.count()) +
            " ms (the other end accepted TCP but did not answer as a gossip-train peer: another "
            "service at that port, or an overloaded peer)"));
        co_return;
      }
      next = deadline_;
    } else {
      if (now - last_rx_ >= cfg.idle_timeout) {
        core_->counters.idle_closed++;
        close_on_strand(core::timeout_error("idle: nothing received for " +
                                            std::to_string(cfg.idle_timeout.count()) + " ms"));
        co_return;
      }
      next = last_rx_ + cfg.idle_timeout;
      if (cfg.unused_timeout.count() > 0) {
        // Nothing in flight either way: closing loses no frame of ours.
        const bool busy = !blob_q_.empty() || !ctrl_pending_.empty() || decoder_.blob_open();
        if (busy) last_use_ = now;
        if (now - last_use_ >= cfg.unused_timeout) {
          core_->counters.unused_closed++;
          close_on_strand(
              Status(core::Code::kClosed, "unused: no frame either way for " +
                                              std::to_string(cfg.unused_timeout.count()) + " ms"));
          co_return;
        }
        next = std::min(next, last_use_ + cfg.unused_timeout);
      }
      if (cfg.keepalive_interval.count() > 0) {
        if (now - last_tx_ >= cfg.keepalive_interval && !keepalive_due_) {
          keepalive_due_ = true;
          writer_cv_.cancel();
        }
        next = std::min(
            next, std::max(last_tx_ + cfg.keepalive_interval, now + std::chrono::milliseconds(10)));
      }
    }
    watchdog_timer_.expires_at(next);
    co_await watchdog_timer_.async_wait(use_nothrow);
  }
}

void SecureSession::close(Status reason) {
  if (!open_.load()) return;
  auto self = std::static_pointer_cast<SecureSession>(shared_from_this());
  asio::post(strand_, [self, reason = std::move(reason)]() mutable {
    self->close_on_strand(std::move(reason));
  });
}

void SecureSession::close_on_strand(Status reason) {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  if (reason.is_ok()) reason = Status(core::Code::kClosed, "closed");
  close_reason_ = reason;
  asio::error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_both, ec);
  socket_.close(ec);
  watchdog_timer_.cancel();
  writer_cv_.cancel();
  space_cv_.cancel();
  blob_cv_.cancel();
  shape_timer_.cancel();
  for (StatusWaiter* w : status_waiters_) w->timer->cancel();
  for (BlobJob* job : blob_q_) {
    job->status = Status(core::Code::kClosed, "blob not fully sent: " + reason.to_string());
    job->done = true;
  }
  blob_q_.clear();
  for (WireBatch& b : batches_) {
    if (b.finishes == nullptr) continue;
    b.finishes->status = Status(core::Code::kClosed, "blob not fully sent: " + reason.to_string());
    b.finishes->done = true;
    b.finishes = nullptr;
  }
  {
    std::lock_guard lock(mail_mu_);
    mail_closed_ = true;
    mailbox_.clear();
  }
  if (!address_.empty()) {
    core_->release_pending(address_);
    address_.clear();
  }
  if (holds_slot_) {
    holds_slot_ = false;
    core_->release_session();
  }
  if (!established_) return;
  {
    std::lock_guard lock(core_->mu);
    --core_->established;
  }
  core_->sessions.closed(this);
  core_->counters.sessions_closed++;
  core::log_debug("net",
                  "session with " + peer_id_.short_form() + " closed: " + reason.to_string());
  if (decoder_.blob_open()) {
    core_->counters.blob_truncated++;
    const std::string what = "truncated: blob " + std::to_string(decoder_.blob_stream_id()) +
                             " ended after " + std::to_string(decoder_.blob_received()) + " of " +
                             std::to_string(decoder_.blob_total()) + " bytes (" +
                             reason.to_string() + "); discard it";
    end_blob(Status(core::Code::kClosed, what));
  }
  if (handler_) handler_->on_closed(*this, reason);
}

Status SecureSession::check_frame(uint8_t type, size_t body_bytes) const {
  if (type == 0 || type == kBlobBegin || type == kBlobChunk) {
    return core::invalid_argument("frame type " + std::to_string(type) +
                                  " is reserved (use send_blob for blobs)");
  }
  if (body_bytes > core_->config.frames.max_control_body) {
    return core::invalid_argument("control frame body of " + std::to_string(body_bytes) +
                                  " bytes exceeds the limit of " +
                                  std::to_string(core_->config.frames.max_control_body));
  }
  return Status::ok();
}

bool SecureSession::push_mail(std::vector<uint8_t> frame) {
  {
    std::lock_guard lock(mail_mu_);
    if (mail_closed_ || mailbox_.size() >= core_->config.send_queue_frames) return false;
    mailbox_.push_back(std::move(frame));
  }
  notify_writer();
  return true;
}

void SecureSession::notify_writer() {
  if (wake_posted_.exchange(true)) return;
  auto self = std::static_pointer_cast<SecureSession>(shared_from_this());
  asio::post(strand_, [self] {
    self->wake_posted_ = false;
    self->writer_cv_.cancel();
  });
}

bool SecureSession::try_send_frame(uint8_t type, std::span<const uint8_t> body) {
  if (!check_frame(type, body.size())) return false;
  if (push_mail(encode_frame(type, body))) return true;
  if (open_) core_->counters.send_queue_full++;
  return false;
}

asio::awaitable<Status> SecureSession::enqueue(std::vector<uint8_t> frame) {
  auto self = shared_from_this();
  while (true) {
    {
      std::lock_guard lock(mail_mu_);
      if (mail_closed_)
        co_return Status(core::Code::kClosed, "session closed: " + close_reason_.to_string());
      if (mailbox_.size() < core_->config.send_queue_frames) {
        mailbox_.push_back(std::move(frame));
        break;
      }
    }
    co_await space_cv_.async_wait(use_nothrow);  // woken when the writer drains
  }
  writer_cv_.cancel();
  co_return Status::ok();
}

asio::awaitable<Status> SecureSession::send_frame(uint8_t type, std::span<const uint8_t> body) {
  if (Status s = check_frame(type, body.size()); !s) co_return s;
  auto self = shared_from_this();
  co_return co_await asio::co_spawn(strand_, enqueue(encode_frame(type, body)),
                                    asio::use_awaitable);
}

asio::awaitable<Status> SecureSession::run_blob(std::vector<uint8_t> header,
                                                std::span<const uint8_t> data) {
  auto self = shared_from_this();
  if (closed_)
    co_return Status(core::Code::kClosed, "session closed: " + close_reason_.to_string());
  BlobJob job;
  job.id = next_stream_id_++;
  job.data = data;
  job.begin_frame = encode_blob_begin(job.id, data.size(), header);
  blob_q_.push_back(&job);
  writer_cv_.cancel();
  while (!job.done) co_await blob_cv_.async_wait(use_nothrow);
  co_return job.status;
}

asio::awaitable<Status> SecureSession::send_blob(std::span<const uint8_t> header,
                                                 std::span<const uint8_t> data) {
  if (header.size() > core_->config.frames.max_blob_header) {
    co_return core::invalid_argument("blob header of " + std::to_string(header.size()) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(core_->config.frames.max_blob_header));
  }
  auto self = shared_from_this();
  std::vector<uint8_t> h(header.begin(), header.end());
  co_return co_await asio::co_spawn(strand_, run_blob(std::move(h), data), asio::use_awaitable);
}

asio::awaitable<std::pair<Status, std::string>> SecureSession::run_query(
    std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  if (Status s = co_await enqueue(encode_frame(kStatusReq, {})); !s)
    co_return std::make_pair(s, std::string());
  asio::steady_timer timer(strand_, timeout);
  StatusWaiter waiter{&timer, std::nullopt};
  status_waiters_.push_back(&waiter);
  co_await timer.async_wait(use_nothrow);
  status_waiters_.remove(&waiter);
  if (waiter.body) co_return std::make_pair(Status::ok(), std::move(*waiter.body));
  if (closed_) {
    co_return std::make_pair(
        Status(core::Code::kClosed, "session closed: " + close_reason_.to_string()), std::string());
  }
  co_return std::make_pair(
      core::timeout_error("no STATUS within " + std::to_string(timeout.count()) + " ms"),
      std::string());
}

asio::awaitable<core::Result<std::string>> SecureSession::query_status(
    std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto [s, body] = co_await asio::co_spawn(strand_, run_query(timeout), asio::use_awaitable);
  if (!s) co_return s;
  co_return std::move(body);
}

Status SecureSession::on_control(uint8_t type, std::span<const uint8_t> body) {
  if (type == kStatusReq) {
    const PeerStatus st = core_->status();
    nlohmann::json j = {{"peer_id", core_->peer_id.hex()},
                        {"step", st.step},
                        {"members", st.members},
                        {"model", st.model}};
    if (st.details && st.details->is_object()) {
      for (const auto& [key, value] : st.details->items()) {
        if (!j.contains(key)) j[key] = value;
      }
    }
    std::string text = j.dump();
    if (text.size() + 1 > core_->config.frames.max_control_body) {  // the details' fault
      core::log_rate_limited(core::LogLevel::kWarn, "net", "status-too-long",
                             "STATUS details dropped: " + std::to_string(text.size()) +
                                 " bytes exceed the control frame limit");
      text = nlohmann::json{{"peer_id", core_->peer_id.hex()},
                            {"step", st.step},
                            {"members", st.members},
                            {"model", st.model}}
                 .dump();
    }
    if (!push_mail(
            encode_frame(kStatus, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}))) {
      core_->refuse(core_->counters.send_queue_full, "status-reply-dropped",
                    "STATUS reply to " + peer_id_.short_form() + " dropped: send queue full");
    }
    return Status::ok();
  }
  if (type == kStatus && !status_waiters_.empty()) {
    for (StatusWaiter* w : status_waiters_) {
      w->body.emplace(reinterpret_cast<const char*>(body.data()), body.size());
      w->timer->cancel();
    }
    status_waiters_.clear();
  }
  if (handler_) handler_->on_frame(*this, type, body);
  return Status::ok();
}

core::Result<std::span<uint8_t>> SecureSession::on_blob_begin(const BlobBegin& begin) {
  core::Result<BlobReceiver> rx = handler_
                                      ? handler_->on_blob_begin(*this, begin)
                                      : core::Result<BlobReceiver>(core::unavailable("no handler"));
  if (!rx) {
    core_->refuse(core_->counters.blob_refused, "blob-refused",
                  "blob of " + std::to_string(begin.total_bytes) + " bytes from " +
                      peer_id_.short_form() + " refused: " + rx.status().to_string());
    return rx.status();
  }
  if (rx->dest.size() != begin.total_bytes) {
    core_->refuse(core_->counters.blob_refused, "blob-size",
                  "blob of " + std::to_string(begin.total_bytes) + " bytes from " +
                      peer_id_.short_form() + " refused: receiver offered " +
                      std::to_string(rx->dest.size()) + " bytes");
    // It accepted the blob: it still hears that the blob ended, unused.
    const Status st = core::invalid_argument("destination size differs from the announced size");
    blob_rx_ = std::move(*rx);
    end_blob(st);
    return st;
  }
  const std::span<uint8_t> dest = rx->dest;
  blob_rx_ = std::move(*rx);
  return dest;
}

void SecureSession::on_blob_complete(uint32_t /*stream_id*/) {
  end_blob(Status::ok());
}

void SecureSession::end_blob(const Status& status) {
  if (!blob_rx_) return;
  BlobReceiver rx = std::move(*blob_rx_);
  blob_rx_.reset();
  if (rx.on_end) rx.on_end(status);
}

}  // namespace gossip::net::detail
