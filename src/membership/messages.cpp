// Membership wire codec: Message <-> MessagePack body (nlohmann/json).
//
// Decoding is defensive: the body size is checked first, then a small
// iterative walk over the MessagePack structure bounds nesting depth (the
// nlohmann reader recurses, so hostile deep nesting must never reach it) and
// rejects extension types; only then is the body parsed, and every key, type,
// id, address, incarnation, list size and duplicate is checked against what
// the message type allows.
#include "gossip/membership/messages.hpp"

#include <cassert>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

namespace gossip::membership {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 3;  // body map -> list -> entry

// Walks the MessagePack value in `b` without recursion.
core::Status check_shape(std::span<const uint8_t> b) {
  std::vector<uint64_t> remaining{1};
  size_t pos = 0;
  auto need = [&](uint64_t n) { return n <= b.size() - pos; };
  auto be = [&](size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | b[pos + i];
    pos += n;
    return v;
  };
  while (!remaining.empty()) {
    if (remaining.back() == 0) {
      remaining.pop_back();
      continue;
    }
    --remaining.back();
    if (!need(1)) return core::protocol_error("truncated MessagePack body");
    const uint8_t t = b[pos++];
    uint64_t children = 0;
    bool container = false;
    uint64_t skip = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
      skip = 0;
    } else if ((t & 0xf0) == 0x80 || (t & 0xf0) == 0x90) {
      container = true;
      children = uint64_t{t & 0x0fu} * ((t & 0xf0) == 0x80 ? 2 : 1);
    } else if ((t & 0xe0) == 0xa0) {
      skip = t & 0x1f;
    } else {
      size_t len_bytes = 0;
      switch (t) {
        case 0xc4:
        case 0xd9:
          len_bytes = 1;
          break;
        case 0xc5:
        case 0xda:
          len_bytes = 2;
          break;
        case 0xc6:
        case 0xdb:
          len_bytes = 4;
          break;
        case 0xca:
          skip = 4;
          break;
        case 0xcb:
          skip = 8;
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xdc:
        case 0xde:
          len_bytes = 2;
          container = true;
          break;
        case 0xdd:
        case 0xdf:
          len_bytes = 4;
          container = true;
          break;
        default:
          return core::protocol_error("unsupported MessagePack type byte " + std::to_string(t));
      }
      if (len_bytes > 0) {
        if (!need(len_bytes)) return core::protocol_error("truncated MessagePack body");
        const uint64_t len = be(len_bytes);
        if (container) {
          children = len * (t == 0xde || t == 0xdf ? 2 : 1);
        } else {
          skip = len;
        }
      }
    }
    if (container) {
      if (remaining.size() > kMaxDepth) {
        return core::protocol_error("MessagePack nesting deeper than " + std::to_string(kMaxDepth));
      }
      if (children > b.size() - pos) return core::protocol_error("truncated MessagePack body");
      remaining.push_back(children);
    } else {
      if (!need(skip)) return core::protocol_error("truncated MessagePack body");
      pos += skip;
    }
  }
  if (pos != b.size()) return core::protocol_error("trailing bytes after the MessagePack body");
  return core::Status::ok();
}

json id_to_bin(const std::string& hex) {
  assert(is_valid_peer_id(hex));
  std::vector<uint8_t> out(32);
  auto nibble = [](char c) { return static_cast<uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10); };
  for (size_t i = 0; i < 32; ++i) {
    out[i] = static_cast<uint8_t>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
  }
  return json::binary(std::move(out));
}

json member_array(const Member& m) {
  return json::array({id_to_bin(m.id), m.address, m.incarnation, static_cast<int>(m.state)});
}

// Entries carry the flags as a last element only when they are set, so that
// lists without private or mapped members stay readable by older peers.
json list_entry(const Member& m) {
  json e = member_array(m);
  if (m.flags != 0) e.push_back(m.flags);
  return e;
}

json update_entry(const Update& u) {
  json e = member_array(u.member);
  if (!u.accuser.empty()) {
    e.push_back(id_to_bin(u.accuser));
  } else if (u.member.flags != 0) {
    e.push_back(nullptr);
  }
  if (u.member.flags != 0) e.push_back(u.member.flags);
  return e;
}

// Decoding context: names the message type in every error.
struct Reader {
  const char* type_name;

  core::Status fail(std::string_view field, std::string_view what) const {
    return core::protocol_error(std::string("membership ") + type_name + ": field \"" +
                                std::string(field) + "\": " + std::string(what));
  }

  core::Result<std::string> id(const json& v, std::string_view field) const {
    if (!v.is_binary() || v.get_binary().size() != 32) {
      return fail(field, "expected a peer id (32 bytes of binary)");
    }
    static const char* kHex = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (uint8_t byte : v.get_binary()) {
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0f];
    }
    return out;
  }

  core::Result<std::string> address(const json& v, std::string_view field) const {
    if (!v.is_string()) return fail(field, "expected an address string");
    const auto& s = v.get_ref<const std::string&>();
    if (auto st = validate_address(s); !st.is_ok()) return fail(field, st.message());
    return s;
  }

  core::Result<uint64_t> number(const json& v, std::string_view field, uint64_t max) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
      return fail(field, "expected an unsigned integer <= " + std::to_string(max));
    }
    return v.get<uint64_t>();
  }

  // List entries: [id, address, incarnation, state, flags?]; updates:
  // [id, address, incarnation, state, accuser?] or [..., accuser-or-nil, flags].
  core::Result<Update> entry(const json& v, std::string_view field, bool update) const {
    if (!v.is_array() || v.size() < 4 || v.size() > (update ? 6u : 5u)) {
      return fail(field, update ? "expected entries [id, address, incarnation, state, "
                                  "accuser?, flags?]"
                                : "expected entries [id, address, incarnation, state, flags?]");
    }
    Update u;
    auto id_r = id(v[0], field);
    if (!id_r) return id_r.status();
    auto addr = address(v[1], field);
    if (!addr) return addr.status();
    auto inc = number(v[2], field, kMaxIncarnation);
    if (!inc) return inc.status();
    auto state = number(v[3], field, 3);
    if (!state) return state.status();
    u.member = Member{std::move(*id_r), std::move(*addr), *inc, static_cast<MemberState>(*state)};
    const size_t flags_at = update ? 5 : 4;
    if (update && v.size() >= 5 && !v[4].is_null()) {
      if (u.member.state != MemberState::kSuspect)
        return fail(field, "accuser on a non-suspect update");
      auto acc = id(v[4], field);
      if (!acc) return acc.status();
      u.accuser = std::move(*acc);
    } else if (update && v.size() == 5) {
      return fail(field, "a nil accuser must be followed by flags");
    }
    if (v.size() > flags_at) {
      auto flags = number(v[flags_at], field, kMemberFlagsMask);
      if (!flags) return flags.status();
      u.member.flags = static_cast<uint8_t>(*flags);
    }
    return u;
  }

  core::Status list(const json& v, std::string_view field, size_t cap, bool update,
                    std::vector<Update>& out) const {
    if (!v.is_array()) return fail(field, "expected an array");
    if (v.size() > cap) return fail(field, "more than " + std::to_string(cap) + " entries");
    std::set<std::string> seen;
    for (const auto& e : v) {
      auto r = entry(e, field, update);
      if (!r) return r.status();
      if (!seen.insert(r->member.id).second) return fail(field, "peer id listed twice");
      out.push_back(std::move(*r));
    }
    return core::Status::ok();
  }
};

size_t uint_bytes(uint64_t v) {
  return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= 0xffffffffu ? 5 : 9;
}
size_t str_bytes(size_t n) {
  return n + (n < 32 ? 1 : n < 256 ? 2 : 3);
}

}  // namespace

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::kPing:
      return "PING";
    case MessageType::kAck:
      return "ACK";
    case MessageType::kPingReq:
      return "PING_REQ";
    case MessageType::kJoin:
      return "JOIN";
    case MessageType::kJoinAck:
      return "JOIN_ACK";
    case MessageType::kSyncReq:
      return "SYNC_REQ";
    case MessageType::kSync:
      return "SYNC";
    case MessageType::kLeave:
      return "LEAVE";
    case MessageType::kNack:
      return "NACK";
  }
  return "UNKNOWN";
}

bool is_membership_type(uint8_t type) {
  return type >= kFirstMessageType && type <= kLastMessageType;
}

namespace {

bool has_probe_fields(MessageType t) {
  return t == MessageType::kPing || t == MessageType::kAck || t == MessageType::kPingReq ||
         t == MessageType::kNack;
}
bool has_list(MessageType t) {
  return t == MessageType::kJoinAck || t == MessageType::kSyncReq || t == MessageType::kSync;
}

}  // namespace

std::vector<uint8_t> encode(const Message& m) {
  json j = json::object();
  j["f"] = id_to_bin(m.from);
  j["a"] = m.from_address;
  j["n"] = m.from_incarnation;
  if (m.from_flags != 0) j["p"] = m.from_flags;
  if (has_probe_fields(m.type) || has_list(m.type)) j["s"] = m.seq;
  if (has_probe_fields(m.type)) j["t"] = id_to_bin(m.target);
  if (m.type == MessageType::kPingReq) j["ta"] = m.target_address;
  if (has_list(m.type)) {
    json list = json::array();
    for (const auto& member : m.members) list.push_back(list_entry(member));
    j["m"] = std::move(list);
  }
  if (!m.updates.empty()) {
    json list = json::array();
    for (const auto& u : m.updates) list.push_back(update_entry(u));
    j["u"] = std::move(list);
  }
  return json::to_msgpack(j);
}

core::Result<Message> decode(uint8_t type_byte, std::span<const uint8_t> body) {
  if (!is_membership_type(type_byte)) {
    return core::protocol_error("membership: frame type " + std::to_string(type_byte) +
                                " is not a membership message (0x10..0x18)");
  }
  Message m;
  m.type = static_cast<MessageType>(type_byte);
  const Reader r{message_type_name(m.type)};
  if (body.size() > kMaxBodyBytes) {
    return core::protocol_error(std::string("membership ") + r.type_name + ": body of " +
                                std::to_string(body.size()) + " bytes exceeds " +
                                std::to_string(kMaxBodyBytes));
  }
  if (auto st = check_shape(body); !st.is_ok()) {
    return st.with_context(std::string("membership ") + r.type_name);
  }
  const json j = json::from_msgpack(body.begin(), body.end(), true, false);
  if (j.is_discarded() || !j.is_object()) {
    return core::protocol_error(std::string("membership ") + r.type_name +
                                ": body is not a MessagePack map");
  }
  const bool probe = has_probe_fields(m.type);
  const bool list = has_list(m.type);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const bool allowed = key == "f" || key == "a" || key == "n" || key == "u" || key == "p" ||
                         (key == "s" && (probe || list)) || (key == "t" && probe) ||
                         (key == "ta" && m.type == MessageType::kPingReq) || (key == "m" && list);
    if (!allowed) return r.fail(key, "not allowed in this message type");
  }
  auto require = [&](const char* key) -> const json* {
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  };
  std::vector<std::string> missing;
  for (const char* key : {"f", "a", "n"}) {
    if (!require(key)) missing.push_back(key);
  }
  if ((probe || list) && !require("s")) missing.push_back("s");
  if (probe && !require("t")) missing.push_back("t");
  if (m.type == MessageType::kPingReq && !require("ta")) missing.push_back("ta");
  if (list && !require("m")) missing.push_back("m");
  if (!missing.empty()) return r.fail(missing.front(), "missing");

  auto from = r.id(j.at("f"), "f");
  if (!from) return from.status();
  m.from = std::move(*from);
  auto addr = r.address(j.at("a"), "a");
  if (!addr) return addr.status();
  m.from_address = std::move(*addr);
  auto inc = r.number(j.at("n"), "n", kMaxIncarnation);
  if (!inc) return inc.status();
  m.from_incarnation = *inc;
  if (auto it = j.find("p"); it != j.end()) {
    auto flags = r.number(*it, "p", kMemberFlagsMask);
    if (!flags) return flags.status();
    m.from_flags = static_cast<uint8_t>(*flags);
  }
  if (probe || list) {
    auto seq = r.number(j.at("s"), "s", UINT64_MAX);
    if (!seq) return seq.status();
    m.seq = *seq;
  }
  if (probe) {
    auto target = r.id(j.at("t"), "t");
    if (!target) return target.status();
    m.target = std::move(*target);
  }
  if (m.type == MessageType::kPingReq) {
    auto ta = r.address(j.at("ta"), "ta");
    if (!ta) return ta.status();
    m.target_address = std::move(*ta);
    if (m.target == m.from) return r.fail("t", "a member cannot ask to probe itself");
  }
  if (list) {
    std::vector<Update> entries;
    GOSSIP_RETURN_IF_ERROR(r.list(j.at("m"), "m", kMaxListMembers, false, entries));
    for (auto& e : entries) m.members.push_back(std::move(e.member));
  }
  if (auto it = j.find("u"); it != j.end()) {
    GOSSIP_RETURN_IF_ERROR(r.list(*it, "u", kMaxUpdates, true, m.updates));
  }
  return m;
}

size_t member_wire_bytes(const Member& m) {
  return 1 + 34 + str_bytes(m.address.size()) + uint_bytes(m.incarnation) + 1 +
         (m.flags != 0 ? 1 : 0);
}

size_t update_wire_bytes(const Update& u) {
  return member_wire_bytes(u.member) + (u.accuser.empty() ? (u.member.flags != 0 ? 1 : 0) : 34);
}

size_t header_wire_bytes(const Message& m) {
  return 1 + (2 + 34) + (2 + str_bytes(m.from_address.size())) + (2 + 9) + (2 + 9) + (2 + 34) +
         (3 + str_bytes(m.target_address.size())) + (2 + 5) + (2 + 5) + (2 + 1);
}

}  // namespace gossip::membership
