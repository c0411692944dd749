// CheckpointStore: the folder of checkpoints, written crash-safely, pruned to
// the newest `keep`, and searched newest-first for one that verifies. A lock
// file (flock, released by the kernel even on SIGKILL) keeps two processes
// out of one folder; temp files of an interrupted write are removed on open.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "gossip/core/log.hpp"
#include "gossip/peer/checkpoint.hpp"

namespace gossip::peer {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLockName = ".lock";
constexpr const char* kTempSuffix = ".tmp";
constexpr const char* kRejectedSuffix = ".rejected";

std::string sys_error(const std::string& what, const fs::path& file) {
  return file.string() + ": " + what + ": " + std::strerror(errno);
}

// write(2) until done, retrying on EINTR.
bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

core::Status fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return core::io_error(sys_error("cannot open folder to sync it", dir));
  const bool ok = ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return core::io_error(sys_error("fsync of folder failed", dir));
  return core::Status::ok();
}

bool is_temp_name(const std::string& name) {
  return name.starts_with("ckpt-") && name.ends_with(kTempSuffix);
}

}  // namespace

core::Status write_file_atomically(const fs::path& file, std::span<const uint8_t> bytes) {
  const fs::path temp = fs::path(file.string() + kTempSuffix);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return core::io_error(sys_error("cannot create", temp));
  const char* failed = nullptr;
  if (!write_all(fd, bytes.data(), bytes.size())) {
    failed = "write failed";
  } else if (::fsync(fd) != 0) {
    failed = "fsync failed";
  }
  const int saved = errno;
  if (::close(fd) != 0 && failed == nullptr) failed = "close failed";
  if (failed == nullptr && ::rename(temp.c_str(), file.c_str()) != 0) failed = "rename failed";
  if (failed != nullptr) {
    errno = saved != 0 ? saved : errno;
    const std::string msg = sys_error(failed, temp);
    ::unlink(temp.c_str());
    return core::io_error(msg);
  }
  return fsync_dir(file.has_parent_path() ? file.parent_path() : fs::path("."));
}

core::Result<CheckpointStore> CheckpointStore::open(const fs::path& dir, int keep,
                                                    CheckpointExpect expect) {
  if (keep < 1) return core::invalid_argument("checkpoint.keep: must be >= 1");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return core::io_error("checkpoint.dir " + dir.string() + ": cannot create: " + ec.message());
  }
  const fs::path lock = dir / kLockName;
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return core::io_error("checkpoint.dir " + sys_error("cannot create lock file", lock));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    ::close(fd);
    if (saved == EWOULDBLOCK) {
      return core::unavailable("checkpoint.dir " + dir.string() +
                               " is in use by another gossip-peer (lock " + lock.string() +
                               "); give each peer its own peer.data_dir or checkpoint.dir");
    }
    errno = saved;
    return core::io_error("checkpoint.dir " + sys_error("cannot lock", lock));
  }
  // Leftovers of a write that a crash interrupted: never complete, never used.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_temp_name(name)) {
      std::error_code rm;
      fs::remove(entry.path(), rm);
      core::log_info("checkpoint", "removed " + name + ", left by an interrupted write");
    }
  }
  return CheckpointStore(dir, keep, std::move(expect), fd);
}

CheckpointStore::CheckpointStore(fs::path dir, int keep, CheckpointExpect expect, int lock_fd)
    : dir_(std::move(dir)), keep_(keep), expect_(std::move(expect)), lock_fd_(lock_fd) {}

CheckpointStore::CheckpointStore(CheckpointStore&& o) noexcept
    : dir_(std::move(o.dir_)),
      keep_(o.keep_),
      expect_(std::move(o.expect_)),
      lock_fd_(std::exchange(o.lock_fd_, -1)),
      rejected_(std::move(o.rejected_)) {}

CheckpointStore& CheckpointStore::operator=(CheckpointStore&& o) noexcept {
  if (this != &o) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    dir_ = std::move(o.dir_);
    keep_ = o.keep_;
    expect_ = std::move(o.expect_);
    lock_fd_ = std::exchange(o.lock_fd_, -1);
    rejected_ = std::move(o.rejected_);
  }
  return *this;
}

CheckpointStore::~CheckpointStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing the last descriptor drops the flock
}

std::vector<fs::path> CheckpointStore::list() const {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const auto step = checkpoint_step_from_name(entry.path().filename().string());
    if (step && entry.is_regular_file(ec)) found.emplace_back(*step, entry.path());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;
  });
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<LoadedCheckpoint> CheckpointStore::load_newest() {
  rejected_.clear();
  const auto files = list();
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path& file = files[i];
    auto state = read_checkpoint_file(file, &expect_);
    if (state) {
      const auto named = checkpoint_step_from_name(file.filename().string());
      if (named && *named == state->step) {
        core::log_info("checkpoint", "resuming from " + file.string() + " (step " +
                                         std::to_string(state->step) + ", epoch " +
                                         std::to_string(state->data.epoch) + ")");
        return LoadedCheckpoint{std::move(*state), file};
      }
      state = core::corrupt(file.string() + ": its name says step " +
                            std::to_string(named.value_or(-1)) + " but it holds step " +
                            std::to_string(state->step));
    }
    // Set the file aside so it is not retried and pruning never prefers it
    // to a good checkpoint; it stays on disk for inspection.
    const fs::path aside = fs::path(file.string() + kRejectedSuffix);
    std::error_code ec;
    fs::rename(file, aside, ec);
    const std::string msg = "checkpoint unusable: " + state.status().message() +
                            (ec ? "" : "; kept as " + aside.filename().string()) +
                            (i + 1 < files.size() ? "; trying the previous one" : "");
    core::log_warn("checkpoint", msg);
    rejected_.push_back(msg);
  }
  if (rejected_.empty()) {
    core::log_info("checkpoint", "no checkpoint in " + dir_.string() + ": starting fresh");
  } else {
    core::log_warn("checkpoint", "no valid checkpoint in " + dir_.string() + " (" +
                                     std::to_string(rejected_.size()) +
                                     " rejected): starting fresh");
  }
  return std::nullopt;
}

core::Result<fs::path> CheckpointStore::save(const CheckpointState& state) {
  if (state.params.size() != expect_.param_count ||
      state.optimizer_state.size() != expect_.state_count) {
    return core::internal_error("checkpoint: state sizes do not match the model");
  }
  const fs::path file = dir_ / checkpoint_file_name(state.step);
  const auto bytes = encode_checkpoint(state);
  GOSSIP_RETURN_IF_ERROR(write_file_atomically(file, bytes));
  prune(file);
  return file;
}

void CheckpointStore::prune(const fs::path& keep_file) {
  int kept = 0;
  for (const fs::path& file : list()) {
    if (file == keep_file || kept < keep_) {
      ++kept;
      continue;
    }
    std::error_code ec;
    fs::remove(file, ec);
    if (ec)
      core::log_warn("checkpoint", "cannot delete old " + file.string() + ": " + ec.message());
  }
}

}  // namespace gossip::peer
