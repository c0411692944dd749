// Router: lets several protocols (membership, averaging, ...) share one Node.
//
// A Node hands every session to exactly one SessionHandler; the Router is that
// handler and forwards to the handlers registered per frame-type range:
//
//   - on_open / on_closed go to every registered handler, in registration order;
//   - a control frame goes to the handler whose range holds its type byte;
//   - a blob is routed by the FIRST BYTE OF ITS BLOB_BEGIN HEADER, which every
//     protocol sets to a frame type of its own range (averaging: 0x40..0x5f).
//     The handler's BlobReceiver goes back to the session, which reports the
//     blob's end to it directly. A blob with an empty header or an unclaimed
//     first byte is refused (counted by the Node as blob_refused).
//
// Frames of an unclaimed type are dropped and logged (rate-limited); the
// session stays open, so a newer peer speaking an extra protocol does not cut
// older ones off.
//
// Threads: add() before the Node starts (before listen()/dial()); afterwards
// the routing table is read-only. Callbacks run on session strands; only the
// unrouted counter is mutex-protected.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "gossip/net/session.hpp"

namespace gossip::net {

class Router final : public SessionHandler {
 public:
  // Routes frame types [first, last] (and blobs whose header starts with such
  // a byte) to `handler`. Ranges must not overlap and must not include the
  // net module's own types (0x00-0x02, 0x30-0x31): programmer errors, thrown
  // as std::invalid_argument. Call before the Node carries sessions.
  void add(uint8_t first, uint8_t last, std::shared_ptr<SessionHandler> handler);

  void on_open(Session& session) override;
  void on_frame(Session& session, uint8_t type, std::span<const uint8_t> body) override;
  core::Result<BlobReceiver> on_blob_begin(Session& session, const BlobBegin& begin) override;
  void on_closed(Session& session, const core::Status& reason) override;

  // Frames or blobs that found no handler (any thread).
  uint64_t unrouted() const;

 private:
  struct Route {
    uint8_t first, last;
    std::shared_ptr<SessionHandler> handler;
  };
  SessionHandler* find(uint8_t type) const;

  std::vector<Route> routes_;
  mutable std::mutex mu_;
  uint64_t unrouted_ = 0;
};

}  // namespace gossip::net
