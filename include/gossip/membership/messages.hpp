// Membership messages and their wire codec (MessagePack via nlohmann/json).
//
// Each message travels as one application frame whose type byte is the
// MessageType below and whose body is a MessagePack map (encode/decode work
// on the body; the frame header is the net module's). Frame types:
//
//   0x10 PING      probe; `target` must be the receiver's id, which answers ACK
//   0x11 ACK       answer to PING/PING_REQ: `seq` of the probe, `target` = the
//                  probed member (a helper relays the target's ACK this way)
//   0x12 PING_REQ  "probe `target` at `target_address` for me" (indirect probe)
//   0x13 JOIN      sent by a joiner to a seed address; the sender fields are
//                  its own entry
//   0x14 JOIN_ACK  the seed's full member list (one or more slices)
//   0x15 SYNC_REQ  periodic push-pull repair: the sender's full list (slices)
//   0x16 SYNC      the receiver's answer: its own full list (slices)
//   0x17 LEAVE     the sender leaves gracefully (pushed to every member)
//   0x18 NACK      a helper's "the target did not answer me" (Lifeguard), so
//                  the prober knows its own network is fine
//
// Every message carries the sender's id, address and incarnation (the
// receiver checks the id against the authenticated session) and may carry
// piggybacked updates. Body keys (short, to stay compact):
//   "f" bin(32) sender id        "a" str sender address   "n" uint incarnation
//   "s" uint probe sequence (PING, ACK, PING_REQ, NACK) or slice index (lists, 0 first)
//   "t" bin(32) target id        "ta" str target address
//   "p" uint sender's flags (kMemberPrivate | kMemberMapped; only when not 0)
//   "m" [[id, addr, inc, state, flags?]...]    member list slice
//   "u" [[id, addr, inc, state, accuser?]...]  piggybacked updates; with flags
//       [id, addr, inc, state, accuser-or-nil, flags]
// Flags are written only when set, so a swarm without private or mapped
// members sends exactly what older peers read.
// Peer ids travel as 32 raw bytes (hex in memory), states as 0..3.
// decode() accepts exactly the keys each type uses, with the right types,
// and checks ids, addresses, incarnations, list sizes and duplicates; the
// body is at most kMaxBodyBytes (64 KiB): a list of 1000 members with IPv4
// addresses fits one message, longer lists go in several slices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/membership/member.hpp"

namespace gossip::membership {

enum class MessageType : uint8_t {
  kPing = 0x10,
  kAck = 0x11,
  kPingReq = 0x12,
  kJoin = 0x13,
  kJoinAck = 0x14,
  kSyncReq = 0x15,
  kSync = 0x16,
  kLeave = 0x17,
  kNack = 0x18,
};

inline constexpr uint8_t kFirstMessageType = 0x10;
inline constexpr uint8_t kLastMessageType = 0x18;
inline constexpr size_t kMaxBodyBytes = 64 * 1024;
inline constexpr size_t kMaxListMembers = 2048;
inline constexpr size_t kMaxUpdates = 256;

// "PING", "ACK", ...; "UNKNOWN" for other values.
const char* message_type_name(MessageType type);
// Whether `type` is a membership frame type (0x10..0x18).
bool is_membership_type(uint8_t type);

// A piggybacked state change. `accuser` is set on suspect updates: the member
// whose probe failed (independent accusers shorten the suspicion timeout).
struct Update {
  Member member;
  std::string accuser;  // empty, or a peer id

  bool operator==(const Update&) const = default;
};

struct Message {
  MessageType type = MessageType::kPing;
  std::string from;          // sender id; must equal the session's peer id
  std::string from_address;  // sender's advertised address
  uint64_t from_incarnation = 0;
  uint8_t from_flags = 0;       // the sender's Member::flags ("p", only when set)
  uint64_t seq = 0;             // PING, ACK, PING_REQ, NACK
  std::string target;           // PING, ACK, PING_REQ, NACK
  std::string target_address;   // PING_REQ
  std::vector<Member> members;  // JOIN_ACK, SYNC_REQ, SYNC
  std::vector<Update> updates;  // any type

  bool operator==(const Message&) const = default;
};

// The MessagePack body of `m`. Requires a message that decode() would accept
// (valid ids and addresses); a programmer error otherwise.
std::vector<uint8_t> encode(const Message& m);

// Parses and validates a body received in a frame of type `type`. Errors are
// kProtocol and name the message type and the offending field. Never throws,
// never allocates more than a small multiple of the body size.
core::Result<Message> decode(uint8_t type, std::span<const uint8_t> body);

// Encoded size of one member list entry / one update (for byte budgets).
size_t member_wire_bytes(const Member& m);
size_t update_wire_bytes(const Update& u);
// Encoded size of `m` without its list and updates (upper bound).
size_t header_wire_bytes(const Message& m);

}  // namespace gossip::membership
