// Metrics lines (JSON, appended with one write per line) and the progress
// line on stderr.
#include "gossip/peer/metrics.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "gossip/core/log.hpp"

namespace gossip::peer {
namespace {

namespace fs = std::filesystem;

double unix_time_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Cuts a partial last line (no trailing newline) off an existing file.
core::Status repair_tail(int fd, const fs::path& file) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return core::io_error(file.string() + ": " + std::strerror(errno));
  off_t end = st.st_size;
  if (end == 0) return core::Status::ok();
  char c = 0;
  if (::pread(fd, &c, 1, end - 1) != 1) {
    return core::io_error(file.string() + ": read failed: " + std::strerror(errno));
  }
  if (c == '\n') return core::Status::ok();
  // Walk back to the previous newline in chunks.
  char buf[4096];
  off_t cut = 0;
  for (off_t hi = end; hi > 0 && cut == 0;) {
    const off_t lo = hi > static_cast<off_t>(sizeof buf) ? hi - static_cast<off_t>(sizeof buf) : 0;
    const ssize_t got = ::pread(fd, buf, static_cast<size_t>(hi - lo), lo);
    if (got != hi - lo) return core::io_error(file.string() + ": read failed");
    for (off_t i = hi - lo - 1; i >= 0; --i) {
      if (buf[i] == '\n') {
        cut = lo + i + 1;
        break;
      }
    }
    hi = lo;
  }
  if (::ftruncate(fd, cut) != 0) {
    return core::io_error(file.string() + ": cannot cut a partial line: " + std::strerror(errno));
  }
  core::log_warn("metrics", file.string() + ": dropped a partial last line (" +
                                std::to_string(end - cut) + " bytes) left by a crash");
  return core::Status::ok();
}

void put_network(nlohmann::json& j, const NetworkCounters& n) {
  j["exchanges_ok"] = n.exchanges_ok;
  j["exchanges_busy"] = n.exchanges_busy;
  j["exchanges_failed"] = n.exchanges_failed;
  j["bytes_in"] = n.bytes_in;
  j["bytes_out"] = n.bytes_out;
  j["members_alive"] = n.members_alive;
  if (n.last_delta_norm) j["last_delta_norm"] = *n.last_delta_norm;
}

std::string megabytes(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

}  // namespace

LossMeter::Reading LossMeter::take() {
  Reading r;
  r.steps = steps_;
  r.mean_loss = steps_ ? loss_sum_ / static_cast<double>(steps_) : 0.0;
  r.samples_per_s = seconds_ > 0 ? static_cast<double>(rows_) / seconds_ : 0.0;
  *this = LossMeter();
  return r;
}

nlohmann::json to_json(const TrainRecord& r) {
  nlohmann::json j = {{"type", "train"}, {"step", r.step}, {"epoch", r.epoch},
                      {"loss", r.loss},  {"lr", r.lr},     {"samples_per_s", r.samples_per_s}};
  if (r.network) put_network(j, *r.network);
  return j;
}

nlohmann::json to_json(const EvalRecord& r) {
  return {{"type", "eval"},
          {"step", r.step},
          {"epoch", r.epoch},
          {"test_loss", r.test_loss},
          {"test_accuracy", r.test_accuracy},
          {"rows", r.rows}};
}

core::Result<MetricsLog> MetricsLog::open(const fs::path& file) {
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  if (ec) return core::io_error("metrics.file " + file.string() + ": " + ec.message());
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return core::io_error("metrics.file " + file.string() +
                          ": cannot open: " + std::strerror(errno));
  }
  if (auto st = repair_tail(fd, file); !st) {
    ::close(fd);
    return st.with_context("metrics.file");
  }
  return MetricsLog(file, fd);
}

MetricsLog::MetricsLog(MetricsLog&& o) noexcept
    : file_(std::move(o.file_)), fd_(std::exchange(o.fd_, -1)) {}

MetricsLog& MetricsLog::operator=(MetricsLog&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    file_ = std::move(o.file_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

core::Status MetricsLog::write_json(nlohmann::json record) {
  nlohmann::json line = {{"type", record.value("type", "unknown")}, {"time", unix_time_s()}};
  line.update(record);
  // Non-finite numbers (a diverged loss) become null rather than invalid JSON.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string msg =
          "metrics.file " + file_.string() + ": write failed: " + std::strerror(errno);
      core::log_rate_limited(core::LogLevel::kWarn, "metrics", "write", msg,
                             std::chrono::seconds(60));
      return core::io_error(msg);
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return core::Status::ok();
}

core::Status MetricsLog::write_start(int64_t step, int64_t epoch,
                                     const std::optional<fs::path>& resumed_from) {
  nlohmann::json j = {{"type", "start"}, {"step", step}, {"epoch", epoch}};
  j["resumed_from"] = resumed_from ? nlohmann::json(resumed_from->string()) : nlohmann::json();
  return write_json(std::move(j));
}

core::Status MetricsLog::write(const TrainRecord& r) {
  return write_json(to_json(r));
}

core::Status MetricsLog::write(const EvalRecord& r) {
  return write_json(to_json(r));
}

std::string format_progress(const ProgressInfo& p) {
  char buf[128];
  std::string line;
  std::snprintf(buf, sizeof buf, "step %lld", static_cast<long long>(p.step));
  line += buf;
  if (p.total_steps > 0) {
    std::snprintf(buf, sizeof buf, "/%lld (%.0f%%)", static_cast<long long>(p.total_steps),
                  100.0 * static_cast<double>(p.step) / static_cast<double>(p.total_steps));
    line += buf;
  }
  std::snprintf(buf, sizeof buf, "  epoch %lld", static_cast<long long>(p.epoch));
  line += buf;
  if (p.total_epochs > 0) {
    std::snprintf(buf, sizeof buf, "/%lld", static_cast<long long>(p.total_epochs));
    line += buf;
  }
  std::snprintf(buf, sizeof buf, "  loss %.4f  lr %.4g  %.0f samples/s", p.loss, p.lr,
                p.samples_per_s);
  line += buf;
  if (p.test_accuracy) {
    std::snprintf(buf, sizeof buf, "  test acc %.2f%%", 100.0 * *p.test_accuracy);
    line += buf;
  } else if (p.test_loss) {
    std::snprintf(buf, sizeof buf, "  test loss %.4f", *p.test_loss);
    line += buf;
  }
  if (p.checkpoint_step >= 0) {
    std::snprintf(buf, sizeof buf, "  ckpt @%lld", static_cast<long long>(p.checkpoint_step));
    line += buf;
  }
  if (p.network) {
    const auto& n = *p.network;
    std::snprintf(buf, sizeof buf, "  members %lld  exchanges %lld ok / %lld busy / %lld failed",
                  static_cast<long long>(n.members_alive), static_cast<long long>(n.exchanges_ok),
                  static_cast<long long>(n.exchanges_busy),
                  static_cast<long long>(n.exchanges_failed));
    line += buf;
    line += "  in " + megabytes(n.bytes_in) + "  out " + megabytes(n.bytes_out);
  }
  return line;
}

ProgressLine::ProgressLine(double every_s) : every_s_(every_s), last_(Clock::now()) {}

bool ProgressLine::due() {
  if (every_s_ <= 0) return false;
  const auto now = Clock::now();
  if (std::chrono::duration<double>(now - last_).count() < every_s_) return false;
  last_ = now;
  return true;
}

void ProgressLine::print(const ProgressInfo& info) {
  core::log_info("peer", format_progress(info));
}

}  // namespace gossip::peer
