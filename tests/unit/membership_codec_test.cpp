// Membership wire codec: round trips of every message type, the strict
// validation decode() applies to hostile or broken bodies, and the size
// budget (a 1000-member list fits one 64 KiB body; longer lists are sliced).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gossip/membership/messages.hpp"
#include "gossip/membership/swim.hpp"

using namespace gossip::membership;
using nlohmann::json;

namespace {

std::string make_id(int n) {
  static const char* kHex = "0123456789abcdef";
  std::string id(64, '0');
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(n + 1);
  for (size_t i = 0; i < 64; ++i) {
    id[i] = kHex[(x >> ((i % 16) * 4)) & 0xf];
    if (i % 16 == 15) x = x * 6364136223846793005ull + 1442695040888963407ull;
  }
  return id;
}

Message sample(MessageType type) {
  Message m;
  m.type = type;
  m.from = make_id(1);
  m.from_address = "10.0.0.1:7400";
  m.from_incarnation = 1'700'000'000'123;
  if (type == MessageType::kPing || type == MessageType::kAck || type == MessageType::kPingReq ||
      type == MessageType::kNack) {
    m.seq = 42;
    m.target = make_id(2);
  }
  if (type == MessageType::kPingReq) m.target_address = "[::1]:7401";
  if (type == MessageType::kJoinAck || type == MessageType::kSyncReq ||
      type == MessageType::kSync) {
    m.seq = 1;
    m.members = {Member{make_id(3), "node-3.example:7400", 7, MemberState::kAlive},
                 Member{make_id(4), "10.0.0.4:7400", 0, MemberState::kLeft}};
  }
  m.updates = {Update{Member{make_id(5), "10.0.0.5:7400", 9, MemberState::kSuspect}, make_id(6)},
               Update{Member{make_id(7), "10.0.0.7:7400", 3, MemberState::kDead}, ""}};
  return m;
}

// Encodes `j` (a hand-made body) and decodes it as `type`.
gossip::core::Result<Message> decode_json(MessageType type, const json& j) {
  auto body = json::to_msgpack(j);
  return decode(static_cast<uint8_t>(type), body);
}

json valid_ping_json() {
  return json::from_msgpack(encode(sample(MessageType::kPing)));
}

void check_rejected(const gossip::core::Result<Message>& r, const std::string& needle) {
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == gossip::core::Code::kProtocol);
  INFO(r.status().message());
  CHECK(r.status().message().find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("every message type round-trips") {
  for (uint8_t t = kFirstMessageType; t <= kLastMessageType; ++t) {
    const Message m = sample(static_cast<MessageType>(t));
    auto body = encode(m);
    CHECK(body.size() < 600);
    auto d = decode(t, body);
    REQUIRE_MESSAGE(d.is_ok(), d.status().to_string());
    CHECK(*d == m);
  }
}

TEST_CASE("addresses and peer ids are validated strictly") {
  for (const char* good : {"10.0.0.1:7400", "[::1]:7400", "node-3.example:1", "h:65535"}) {
    CHECK_MESSAGE(validate_address(good).is_ok(), good);
  }
  for (const char* bad : {"", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "h:65536", "h:007", "h:+1",
                          "a b:1", ":7400", "[zz]:1", "[::1:1", "h:1x", "héllo:1"}) {
    auto st = validate_address(bad);
    CHECK_MESSAGE(st.code() == gossip::core::Code::kProtocol, bad);
  }
  CHECK(is_valid_peer_id(make_id(1)));
  CHECK_FALSE(is_valid_peer_id(make_id(1).substr(1)));
  CHECK_FALSE(is_valid_peer_id(std::string(64, 'A')));
}

TEST_CASE("decode rejects malformed bodies with a message naming the field") {
  json j = valid_ping_json();
  check_rejected(decode(0x30, encode(sample(MessageType::kPing))), "not a membership message");
  check_rejected(decode(0x10, std::vector<uint8_t>{0x01, 0x02}), "trailing");
  check_rejected(decode(0x10, std::vector<uint8_t>{}), "truncated");
  check_rejected(decode(0x10, std::vector<uint8_t>{0xc1}), "type byte");
  check_rejected(decode(0x10, std::vector<uint8_t>{0xd4, 0x01, 0x02}), "type byte");  // ext
  check_rejected(decode_json(MessageType::kPing, json::array({1, 2})), "not a MessagePack map");

  json k = j;
  k.erase("t");
  check_rejected(decode_json(MessageType::kPing, k), "\"t\": missing");
  k = j;
  k["zz"] = 1;
  check_rejected(decode_json(MessageType::kPing, k), "\"zz\": not allowed");
  k = j;
  k["m"] = json::array();
  check_rejected(decode_json(MessageType::kPing, k), "\"m\": not allowed");
  k = j;
  k["f"] = make_id(1);  // hex text instead of 32 raw bytes
  check_rejected(decode_json(MessageType::kPing, k), "\"f\": expected a peer id");
  k = j;
  k["t"] = json::binary(std::vector<uint8_t>(31, 1));
  check_rejected(decode_json(MessageType::kPing, k), "\"t\": expected a peer id");
  k = j;
  k["a"] = "10.0.0.1:99999";
  check_rejected(decode_json(MessageType::kPing, k), "\"a\": address");
  k = j;
  k["n"] = kMaxIncarnation + 1;
  check_rejected(decode_json(MessageType::kPing, k), "\"n\": expected an unsigned integer");
  k = j;
  k["n"] = -1;
  check_rejected(decode_json(MessageType::kPing, k), "\"n\"");
  k = j;
  k["n"] = 1.5;
  check_rejected(decode_json(MessageType::kPing, k), "\"n\"");
  k = j;
  k["u"][0][3] = 4;
  check_rejected(decode_json(MessageType::kPing, k), "\"u\"");
  k = j;
  k["u"][1].push_back(json::binary(std::vector<uint8_t>(32, 1)));  // accuser on a dead update
  check_rejected(decode_json(MessageType::kPing, k), "accuser on a non-suspect");
  k = j;
  k["u"][1] = k["u"][0];
  check_rejected(decode_json(MessageType::kPing, k), "listed twice");
  k = j;
  k["u"] = json::array();
  for (int i = 0; i < static_cast<int>(kMaxUpdates) + 1; ++i) {
    k["u"].push_back(json::array(
        {json::binary(std::vector<uint8_t>(32, static_cast<uint8_t>(i))), "h:1", i, 0}));
    k["u"].back()[0].get_binary()[1] = static_cast<uint8_t>(i >> 8);
  }
  check_rejected(decode_json(MessageType::kPing, k), "more than 256");

  json req = json::from_msgpack(encode(sample(MessageType::kPingReq)));
  req["t"] = req["f"];
  check_rejected(decode_json(MessageType::kPingReq, req), "probe itself");
}

TEST_CASE("hostile structure: deep nesting, huge announced lengths, oversized bodies") {
  std::vector<uint8_t> deep(60000, 0x91);  // [[[[...]]]]
  deep.push_back(0x01);
  check_rejected(decode(0x10, deep), "nesting");
  check_rejected(decode(0x10, std::vector<uint8_t>{0xdd, 0xff, 0xff, 0xff, 0xff}), "truncated");
  check_rejected(decode(0x10, std::vector<uint8_t>{0xdb, 0xff, 0xff, 0xff, 0xff, 0x41}),
                 "truncated");
  check_rejected(decode(0x10, std::vector<uint8_t>(kMaxBodyBytes + 1, 0xc0)), "exceeds");
  auto body = encode(sample(MessageType::kSync));
  for (size_t cut = 0; cut < body.size(); ++cut) {
    auto r = decode(0x16, std::span(body).first(cut));
    CHECK_FALSE(r.is_ok());
  }
}

TEST_CASE("a list of 1000 members with IPv4 addresses fits one 64 KiB body") {
  Message m = sample(MessageType::kSync);
  m.members.clear();
  for (int i = 0; i < 1000; ++i) {
    m.members.push_back(
        Member{make_id(100 + i),
               "10." + std::to_string(i / 250) + ".255." + std::to_string(i % 250) + ":65535",
               1'700'000'000'000ull + static_cast<uint64_t>(i), MemberState::kAlive});
  }
  size_t estimate = 0;
  for (const auto& mm : m.members) estimate += member_wire_bytes(mm);
  auto body = encode(m);
  MESSAGE("1000-member SYNC body: " << body.size() << " bytes");
  CHECK(body.size() <= kMaxBodyBytes);
  CHECK(estimate <= body.size());
  CHECK(body.size() - estimate < header_wire_bytes(m) + update_wire_bytes(m.updates[0]) * 2 + 64);
  auto d = decode(0x16, body);
  REQUIRE(d.is_ok());
  CHECK(d->members.size() == 1000);
}

TEST_CASE("longer lists are sent as slices that each fit the body limit") {
  const TimePoint t0{};
  auto a = Membership::create(Options{}, make_id(0), "10.0.0.1:7400", 5, 1, t0);
  REQUIRE(a.is_ok());
  // 1500 members with 60-character host names: about 150 KB of list.
  std::vector<Member> all;
  for (int i = 0; i < 1500; ++i) {
    all.push_back(Member{make_id(10 + i),
                         "peer-" + std::to_string(i) + std::string(50, 'x') + ".example:7400",
                         1'700'000'000'000ull, MemberState::kAlive});
  }
  const std::string sender = make_id(9);
  Message req;
  req.type = MessageType::kSyncReq;
  req.from = sender;
  req.from_address = "10.0.0.9:7400";
  req.from_incarnation = 3;
  for (size_t start = 0, slice = 0; start < all.size(); start += 500, ++slice) {
    req.seq = slice;
    req.members.assign(all.begin() + static_cast<long>(start),
                       all.begin() + static_cast<long>(start + 500));
    REQUIRE(a->on_message(sender, req, t0).is_ok());
  }
  CHECK(a->live_count() == 1501);
  (void)a->take_outbox();
  Message join;
  join.type = MessageType::kJoin;
  join.from = make_id(8);
  join.from_address = "10.0.0.8:7400";
  REQUIRE(a->on_message(join.from, join, t0).is_ok());
  size_t listed = 0, slices = 0;
  for (auto& out : a->take_outbox()) {
    REQUIRE(out.message.type == MessageType::kJoinAck);
    CHECK(out.peer_id == join.from);
    auto body = encode(out.message);
    CHECK(body.size() <= kMaxBodyBytes);
    CHECK(decode(0x14, body).is_ok());
    listed += out.message.members.size();
    ++slices;
  }
  CHECK(slices >= 3);
  CHECK(listed == 1503);  // everyone, ourselves and the joiner included, exactly once
}

TEST_CASE("member flags (private, mapped) round-trip and are sent only when set") {
  Message m = sample(MessageType::kSync);
  const auto plain = json::from_msgpack(encode(m));
  CHECK_FALSE(plain.contains("p"));
  CHECK(plain["m"][0].size() == 4);  // what older peers read
  CHECK(plain["u"][1].size() == 4);

  m.from_flags = kMemberPrivate;
  m.members[0].flags = kMemberMapped;
  m.updates[0].member.flags = kMemberPrivate;                  // with an accuser
  m.updates[1].member.flags = kMemberPrivate | kMemberMapped;  // without: nil accuser
  const auto body = encode(m);
  const auto j = json::from_msgpack(body);
  CHECK(j["p"] == kMemberPrivate);
  CHECK(j["m"][0].size() == 5);
  CHECK(j["m"][1].size() == 4);
  CHECK(j["u"][1][4].is_null());
  auto d = decode(static_cast<uint8_t>(MessageType::kSync), body);
  REQUIRE_MESSAGE(d.is_ok(), d.status().to_string());
  CHECK(*d == m);
  CHECK(member_wire_bytes(m.members[0]) >= 1 + 34);

  json bad = j;
  bad["p"] = 4;  // an unknown bit
  check_rejected(decode_json(MessageType::kSync, bad), "\"p\"");
  bad = j;
  bad["u"][1] = json::array({bad["u"][1][0], bad["u"][1][1], 3, 2, nullptr});  // nil, no flags
  check_rejected(decode_json(MessageType::kSync, bad), "nil accuser");
  bad = j;
  bad["m"][0][4] = 9;
  check_rejected(decode_json(MessageType::kSync, bad), "\"m\"");
}
