// Averaging protocol v1: frame types 0x40-0x5f and their message bodies.
//
// Control bodies are UTF-8 JSON objects (at most 64 KiB). `xid` is an
// exchange / request id chosen by the initiator (a random integer < 2^53 so
// that any JSON tooling keeps it exact); `fingerprint` is the model
// architecture hash (train::ModelSpec::fingerprint()) as 16 lowercase hex
// digits; `format` is "fp32" | "bf16" | "fp16".
//
//   0x40 OFFER      {xid, step, weight, format, count, fingerprint
//                    [, mode, outer_steps]}
//                   Initiator -> responder: "average with me". `mode` is
//                   "params" (also when absent) or "outer" (gossip.mode),
//                   with the initiator's H in `outer_steps`. The responder
//                   answers at once with REPLY, BUSY or REFUSE.
//   0x41 REPLY      {xid, weight}
//                   Accepted. Both sides now stream their snapshot in
//                   `format` (full duplex): the initiator right away, the
//                   responder as soon as its trainer took its snapshot.
//   0x42 BUSY       {xid}
//                   The responder is already in an exchange (or leaving);
//                   nothing happened, retry another peer after backoff.
//   0x43 REFUSE     {xid, code, reason}
//                   Refused or aborted. `code` (RefuseCode below) says why
//                   for programs; `reason` says it for people (it names both
//                   fingerprints for a model mismatch). A REFUSE without
//                   `code` (an older peer) reads as 0, unspecified. Either
//                   side may send it at any time; both then apply nothing.
//   0x44 ACK        {xid}
//                   "Your whole snapshot arrived and passed validation."
//                   A side applies its delta only after it validated the
//                   peer's snapshot AND received the peer's ACK, so a failure
//                   before that point leaves both replicas untouched.
//   0x45 STATE_REQ  {xid, fingerprint, param_count, state_count
//                    [, mode, outer_count]}
//                   A joiner asks for the full training state.
//   0x46 STATE      {xid, step, optimizer_steps, param_count, state_count,
//                    fingerprint [, outer_count]}
//                   The donor's answer, followed by a STATE blob; or BUSY /
//                   REFUSE with the same xid.
//
// Blobs (net BLOB_BEGIN/CHUNK); the header is 9 bytes: one type byte (which
// the net::Router uses to route the blob to this module) and the xid as u64
// big-endian:
//   0x50 SNAPSHOT   `count` elements in `format` (little-endian): one side's
//                   wire snapshot of an exchange, in both directions.
//   0x51 STATE      param_count + state_count + outer_count float32 values:
//                   parameters, optimizer state, then (outer mode) phi and v.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gossip/averaging/codec.hpp"
#include "gossip/averaging/outer.hpp"
#include "gossip/core/status.hpp"

namespace gossip::averaging {

enum MessageType : uint8_t {
  kOffer = 0x40,
  kReply = 0x41,
  kBusy = 0x42,
  kRefuse = 0x43,
  kAck = 0x44,
  kStateReq = 0x45,
  kState = 0x46,
  kSnapshotBlob = 0x50,
  kStateBlob = 0x51,
};
inline constexpr uint8_t kFirstType = 0x40;
inline constexpr uint8_t kLastType = 0x5f;
inline constexpr size_t kBlobHeaderBytes = 9;

// "0123456789abcdef" for a 64-bit fingerprint.
std::string fingerprint_hex(uint64_t fingerprint);

struct Offer {
  uint64_t xid = 0;
  int64_t step = 0;
  double weight = 1.0;
  WireCodec codec;  // "format", and "block" / "fraction" where the codec has them
  uint64_t count = 0;
  std::string fingerprint;
  // Optional on the wire (absent from older peers: params, 0).
  GossipMode mode = GossipMode::kParams;
  int64_t outer_steps = 0;  // the initiator's H in outer mode, else 0
};
struct Reply {
  uint64_t xid = 0;
  double weight = 1.0;
};
// Why a REFUSE was sent: its `code` field. Receivers act on the code only;
// a code they do not know reads as kUnspecified. Values are wire protocol:
// never renumber, only add.
enum class RefuseCode : uint16_t {
  kUnspecified = 0,    // no code sent (older peer) or none of the below
  kModelMismatch = 1,  // model fingerprints differ: permanent, the two can never average
  kSizeMismatch = 2,   // element counts differ (parameters; + optimizer state for STATE_REQ)
  kBadSnapshot = 3,    // the sender rejected our blob: wrong size or a non-finite value
  kTimeout = 4,        // the exchange did not finish within the sender's exchange timeout
  kAborted = 5,        // the sender gave up: send or dial failure, or it is stopping
  kModeMismatch = 6,   // gossip.mode differs (params / outer): permanent, as kModelMismatch
  kBadOffer = 7,       // the OFFER did not parse: a codec or parameter this peer does not accept
};
inline constexpr uint16_t kMaxRefuseCode = 7;
// "model_mismatch", ... (logs and docs); "unspecified" for unknown values.
const char* refuse_code_name(RefuseCode code);

// BUSY and ACK carry only the xid; REFUSE a code and a reason too.
struct Refuse {
  uint64_t xid = 0;
  std::string reason;
  RefuseCode code = RefuseCode::kUnspecified;
};
// How a REFUSE reason starts when the peers' models differ (for people and
// logs; programs read RefuseCode::kModelMismatch).
inline constexpr std::string_view kModelMismatch = "model mismatch:";
// ... and when their gossip.mode differs (RefuseCode::kModeMismatch).
inline constexpr std::string_view kModeMismatch = "gossip mode mismatch:";
struct StateRequest {
  uint64_t xid = 0;
  std::string fingerprint;
  uint64_t param_count = 0;
  uint64_t state_count = 0;
  GossipMode mode = GossipMode::kParams;  // optional on the wire
  uint64_t outer_count = 0;  // outer-state floats expected (2 * param_count in outer mode)
};
struct StateInfo {
  uint64_t xid = 0;
  int64_t step = 0;
  int64_t optimizer_steps = 0;
  uint64_t param_count = 0;
  uint64_t state_count = 0;
  std::string fingerprint;
  uint64_t outer_count = 0;  // optional on the wire: phi then v follow the optimizer state
};

// Encoders return the JSON body. Any thread.
std::vector<uint8_t> encode(const Offer& m);
std::vector<uint8_t> encode(const Reply& m);
std::vector<uint8_t> encode(const Refuse& m);
std::vector<uint8_t> encode(const StateRequest& m);
std::vector<uint8_t> encode(const StateInfo& m);
std::vector<uint8_t> encode_xid(uint64_t xid);  // BUSY, ACK

// Parsers validate types and ranges (weight finite and > 0, known format,
// xid < 2^53, REFUSE code < 65536) and return kProtocol naming the bad field
// otherwise.
core::Result<Offer> parse_offer(std::span<const uint8_t> body);
core::Result<Reply> parse_reply(std::span<const uint8_t> body);
core::Result<Refuse> parse_refuse(std::span<const uint8_t> body);
core::Result<StateRequest> parse_state_request(std::span<const uint8_t> body);
core::Result<StateInfo> parse_state_info(std::span<const uint8_t> body);
core::Result<uint64_t> parse_xid(std::span<const uint8_t> body);

// The 9-byte blob header, and its parser (kProtocol if malformed).
std::array<uint8_t, kBlobHeaderBytes> blob_header(MessageType type, uint64_t xid);
struct BlobTag {
  uint8_t type = 0;
  uint64_t xid = 0;
};
core::Result<BlobTag> parse_blob_header(std::span<const uint8_t> header);

}  // namespace gossip::averaging
