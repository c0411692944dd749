// Status and Result<T>: how expected failures travel through gossip-train.
//
// A peer must survive bad configs, corrupt files, wrong keys and vanished
// neighbours, so those failures are values that carry a message a user can act
// on, never exceptions. Exceptions are kept for programmer errors and fatal
// start-up problems.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace gossip::core {

// Broad failure classes; the message says the rest.
enum class Code {
  kOk = 0,
  kInvalidArgument,  // bad config value, bad command-line flag
  kNotFound,         // missing file, unknown peer
  kCorrupt,          // damaged file or blob (checksum, magic, sizes)
  kIo,               // OS-level read/write failure
  kProtocol,         // malformed or unexpected frame from the network
  kAuth,             // handshake or decryption failure
  kTimeout,
  kBusy,           // peer already in an exchange
  kClosed,         // connection or component shut down
  kResourceLimit,  // a cap was hit (sessions, frame size)
  kUnavailable,    // no device, no reachable member
  kInternal,
};

// Human-readable name of a code ("corrupt", "timeout", ...).
const char* code_name(Code code);

// The result of an operation that can fail in an expected way.
// Thread-safe to copy; cheap when ok (no allocation).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "corrupt: train-images.gz: truncated after 1024 bytes"
  std::string to_string() const;

  // Returns a copy with `context + ": "` prepended to the message.
  Status with_context(const std::string& context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Shorthands used across modules: return invalid_argument("batch: must be > 0").
inline Status invalid_argument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status corrupt(std::string m) {
  return {Code::kCorrupt, std::move(m)};
}
inline Status io_error(std::string m) {
  return {Code::kIo, std::move(m)};
}
inline Status protocol_error(std::string m) {
  return {Code::kProtocol, std::move(m)};
}
inline Status auth_error(std::string m) {
  return {Code::kAuth, std::move(m)};
}
inline Status timeout_error(std::string m) {
  return {Code::kTimeout, std::move(m)};
}
inline Status unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}
inline Status resource_limit(std::string m) {
  return {Code::kResourceLimit, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {Code::kInternal, std::move(m)};
}

// Either a value or a non-ok Status. Accessing value() of an error is a
// programmer error (asserts).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).is_ok() && "Result built from an ok Status");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    assert(is_ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(is_ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(is_ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace gossip::core

// Propagate a non-ok Status from an expression returning Status.
#define GOSSIP_RETURN_IF_ERROR(expr)                    \
  do {                                                  \
    ::gossip::core::Status gossip_status_ = (expr);     \
    if (!gossip_status_.is_ok()) return gossip_status_; \
  } while (0)
