// libFuzzer target: hostile bodies against the membership decoder, and every
// body it accepts against a live Membership state machine.
//
// Input: byte 0 picks the frame type (0x10 + byte % 9); byte 1 bit 0 says
// whether the message is attributed to the sender id it claims (otherwise
// to another authenticated id); the rest is the body.
// Invariants checked: decode never crashes; an accepted message re-encodes
// to a body that decodes to the same message and stays within 64 KiB; the
// state machine never crashes, keeps itself alive, and a rejected message
// leaves its view unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "gossip/membership/messages.hpp"
#include "gossip/membership/swim.hpp"

using namespace gossip::membership;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

const std::string kSelf(64, 'a');
const std::string kOther(64, 'b');

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const auto type = static_cast<uint8_t>(kFirstMessageType + data[0] % 9);
  const bool honest = (data[1] & 1) != 0;
  std::span<const uint8_t> body(data + 2, size - 2);
  auto msg = decode(type, body);
  if (!msg) return 0;

  auto again = encode(*msg);
  check(again.size() <= kMaxBodyBytes + 1024);
  auto round = decode(type, again);
  check(round.is_ok() && *round == *msg);

  const TimePoint t0{};
  auto m = Membership::create(Options{}, kSelf, "10.0.0.1:7400", 100, 7, t0);
  check(m.is_ok());
  Message known;
  known.type = MessageType::kJoin;
  known.from = kOther;
  known.from_address = "10.0.0.2:7400";
  known.from_incarnation = 5;
  check(m->on_message(kOther, known, t0).is_ok());
  const auto before = m->members();
  const std::string from = honest ? msg->from : kOther;
  auto st = m->on_message(from, *msg, t0 + Millis(10));
  if (!st.is_ok()) check(m->members() == before);
  for (int i = 1; i <= 40; ++i) m->tick(t0 + Millis(500 * i));
  check(m->self().state == MemberState::kAlive);
  check(m->self().incarnation <= kMaxIncarnation);
  for (const auto& out : m->take_outbox()) check(encode(out.message).size() <= kMaxBodyBytes);
  return 0;
}
