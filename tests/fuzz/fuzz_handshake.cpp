// libFuzzer target: hostile bytes against the Noise XXpsk3 responder (and
// the initiator's read of message 2, and the transport cipher after a valid
// handshake). Keys and ephemerals are fixed, so every run is deterministic
// and the valid messages are constants the seed corpus can hold.
//
// Input: byte 0 picks the mode (mod 6), the rest is the mode's data.
//   0  data is message 1 to a fresh responder (which then writes message 2)
//   1  valid message 1, then data is message 3 to the responder
//   2  initiator writes message 1, data is message 2 to the initiator
//   3  data is [u16 big-endian length | bytes]... : message 1 and message 3
//      to the responder, then transport messages to its receive cipher
//   4  valid handshake, then data is length-prefixed transport messages
//   5  valid handshake, but data is XORed into the valid message 3
// Invariants checked: no crash or sanitizer report; a handshake that
// completes agrees on both sides and its transport round-trips.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "gossip/crypto/noise.hpp"

using namespace gossip::crypto;

namespace {

struct Fixture {
  StaticKeypair init_static;
  StaticKeypair resp_static;
  StaticKeypair init_e;
  StaticKeypair resp_e;
  SwarmKey psk;

  Fixture() {
    uint8_t b[32];
    for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(i + 1);
    init_static = StaticKeypair::from_secret(b);
    for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(0x40 + i);
    resp_static = StaticKeypair::from_secret(b);
    for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(0x80 + i);
    init_e = StaticKeypair::from_secret(b);
    for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(0xc0 + i);
    resp_e = StaticKeypair::from_secret(b);
    for (int i = 0; i < 32; ++i) psk.key.data()[i] = static_cast<uint8_t>(0x21 * (i + 1));
  }

  HandshakeState make(Role role) const {
    const bool init = role == Role::kInitiator;
    return HandshakeState(
        HandshakeConfig{Pattern::kXXpsk3,
                        role,
                        init ? &init_static : &resp_static,
                        &psk,
                        {reinterpret_cast<const uint8_t*>(kPrologue.data()), kPrologue.size()},
                        init ? &init_e : &resp_e});
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

void check(bool ok) {
  if (!ok) std::abort();
}

// Splits [u16 BE length | bytes]...; a short tail becomes the last message.
std::vector<std::span<const uint8_t>> split_messages(std::span<const uint8_t> data) {
  std::vector<std::span<const uint8_t>> out;
  while (data.size() >= 2 && out.size() < 64) {
    size_t len = (size_t{data[0]} << 8) | data[1];
    data = data.subspan(2);
    len = std::min(len, data.size());
    out.push_back(data.first(len));
    data = data.subspan(len);
  }
  return out;
}

// After a complete handshake: both sides agree and transport round-trips.
void check_complete(HandshakeState& init, HandshakeState& resp) {
  check(init.is_complete() && resp.is_complete());
  check(init.handshake_hash() == resp.handshake_hash());
  check(*resp.remote_static() == fixture().init_static.public_key);
  TransportKeys ti = init.split();
  TransportKeys tr = resp.split();
  uint8_t buf[5 + kTagBytes] = {'p', 'i', 'n', 'g', '!'};
  check(ti.send.encrypt({}, std::span(buf, 5), buf).is_ok());
  auto n = tr.recv.decrypt({}, buf, buf);
  check(n.is_ok() && *n == 5 && buf[0] == 'p');
}

void feed_transport(CipherState& recv, std::span<const std::span<const uint8_t>> msgs) {
  std::vector<uint8_t> buf;
  for (auto m : msgs) {
    const uint64_t before = recv.nonce();
    buf.assign(m.begin(), m.end());
    auto r = recv.decrypt({}, buf, buf);  // in place, as the transport does
    check(r.is_ok() ? recv.nonce() == before + 1 : recv.nonce() == before);
  }
}

// Valid messages 1..3 of the fixed handshake; the states are advanced.
std::vector<uint8_t> valid_message(HandshakeState& writer, HandshakeState& reader) {
  auto m = writer.write_message({});
  check(m.is_ok());
  check(reader.read_message(*m).is_ok());
  return *m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 6;
  std::span<const uint8_t> rest(data + 1, size - 1);
  const Fixture& f = fixture();
  HandshakeState init = f.make(Role::kInitiator);
  HandshakeState resp = f.make(Role::kResponder);

  switch (mode) {
    case 0: {
      if (resp.read_message(rest).is_ok()) check(resp.write_message({}).is_ok());
      break;
    }
    case 1: {
      valid_message(init, resp);
      auto m2 = resp.write_message({});
      check(m2.is_ok());
      if (resp.read_message(rest).is_ok()) {
        check(resp.is_complete());
        check(resp.remote_static().has_value());
      }
      break;
    }
    case 2: {
      auto m1 = init.write_message({});
      check(m1.is_ok());
      if (init.read_message(rest).is_ok()) {
        check(init.remote_static().has_value());
        check(init.write_message({}).is_ok());
      }
      break;
    }
    case 3: {
      auto msgs = split_messages(rest);
      if (msgs.empty() || !resp.read_message(msgs[0]).is_ok()) break;
      if (!resp.write_message({}).is_ok()) break;
      if (msgs.size() < 2 || !resp.read_message(msgs[1]).is_ok()) break;
      check(resp.is_complete());
      TransportKeys tr = resp.split();
      feed_transport(tr.recv, std::span(msgs).subspan(2));
      break;
    }
    case 4: {
      valid_message(init, resp);
      valid_message(resp, init);
      valid_message(init, resp);
      TransportKeys tr = resp.split();
      auto msgs = split_messages(rest);
      feed_transport(tr.recv, msgs);
      break;
    }
    default: {
      valid_message(init, resp);
      valid_message(resp, init);
      auto m3 = init.write_message({});
      check(m3.is_ok());
      std::vector<uint8_t> msg = *m3;
      for (size_t i = 0; i < rest.size() && i < msg.size(); ++i) msg[i] ^= rest[i];
      if (rest.size() > msg.size()) msg.insert(msg.end(), rest.begin() + msg.size(), rest.end());
      if (resp.read_message(msg).is_ok()) check_complete(init, resp);
      break;
    }
  }
  return 0;
}
