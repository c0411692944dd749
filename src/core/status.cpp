// Status formatting.
#include "gossip/core/status.hpp"

namespace gossip::core {

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kNotFound:
      return "not found";
    case Code::kCorrupt:
      return "corrupt";
    case Code::kIo:
      return "i/o error";
    case Code::kProtocol:
      return "protocol error";
    case Code::kAuth:
      return "authentication failed";
    case Code::kTimeout:
      return "timeout";
    case Code::kBusy:
      return "busy";
    case Code::kClosed:
      return "closed";
    case Code::kResourceLimit:
      return "resource limit";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kInternal:
      return "internal error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(code_name(code_)) + ": " + message_;
}

Status Status::with_context(const std::string& context) const {
  if (is_ok()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace gossip::core
