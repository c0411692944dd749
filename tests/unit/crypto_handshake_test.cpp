// Noise XXpsk3 between two in-memory HandshakeStates: success and transport
// both ways, wrong swarm key rejected at message 3, low-order keys aborting,
// every flipped byte of every handshake message rejected; transport ciphers
// rejecting tampering, replays and reordering without moving the nonce.
#include <doctest/doctest.h>
#include <sodium.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "gossip/crypto/noise.hpp"

using namespace gossip::crypto;
using gossip::core::Code;

namespace {

std::span<const uint8_t> prologue_bytes() {
  return {reinterpret_cast<const uint8_t*>(kPrologue.data()), kPrologue.size()};
}

std::vector<uint8_t> bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

struct Party {
  StaticKeypair keys = StaticKeypair::generate();
  SwarmKey psk;
};

HandshakeState make(Role role, const Party& p, Pattern pattern = Pattern::kXXpsk3,
                    const StaticKeypair* fixed_e = nullptr) {
  return HandshakeState(HandshakeConfig{pattern, role, &p.keys, &p.psk, prologue_bytes(), fixed_e});
}

// Runs the three messages; `tamper(i, msg)` may modify message i on the wire.
// Returns the index of the first failing step (0..2 reads, 10+i writes), or
// nullopt when both sides complete.
template <typename Tamper>
std::optional<int> exchange(HandshakeState& init, HandshakeState& resp, Tamper tamper,
                            Code* code = nullptr) {
  const std::vector<uint8_t> payloads[3] = {bytes("hello from the initiator"),
                                            bytes("hello from the responder"),
                                            bytes("last handshake payload")};
  std::optional<int> mismatch;
  for (int i = 0; i < 3; ++i) {
    HandshakeState& w = i % 2 == 0 ? init : resp;
    HandshakeState& r = i % 2 == 0 ? resp : init;
    auto msg = w.write_message(payloads[i]);
    if (!msg) {
      if (code) *code = msg.status().code();
      return 10 + i;
    }
    tamper(i, *msg);
    auto got = r.read_message(*msg);
    if (!got) {
      if (code) *code = got.status().code();
      return i;
    }
    // Plain XX delivers message 1's payload unauthenticated; the tampering
    // only shows when message 2 fails. Keep going and report it last.
    if (*got != payloads[i] && !mismatch) mismatch = 20 + i;
  }
  return mismatch;
}

auto no_tamper = [](int, std::vector<uint8_t>&) {};

StaticKeypair fake_keypair(const uint8_t pub[32]) {
  StaticKeypair kp = StaticKeypair::generate();
  std::copy(pub, pub + 32, kp.public_key.begin());
  return kp;
}

// Low-order / non-canonical points of Curve25519 (u-coordinates, little endian).
std::vector<PublicKey> low_order_points() {
  std::vector<PublicKey> pts;
  PublicKey p{};
  pts.push_back(p);  // 0
  p[0] = 1;
  pts.push_back(p);  // 1
  const char* hexes[] = {
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  // order 8
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",  // order 8
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p - 1
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p + 1
  };
  for (const char* h : hexes) {
    REQUIRE(sodium_hex2bin(p.data(), 32, h, 64, nullptr, nullptr, nullptr) == 0);
    pts.push_back(p);
  }
  return pts;
}

}  // namespace

TEST_CASE("XXpsk3 handshake with the same swarm key completes and transport works both ways") {
  Party a, b;
  b.psk = a.psk = SwarmKey::generate();
  auto init = make(Role::kInitiator, a);
  auto resp = make(Role::kResponder, b);
  CHECK(init.is_my_turn());
  CHECK_FALSE(resp.is_my_turn());
  CHECK_FALSE(init.remote_static().has_value());
  REQUIRE_FALSE(exchange(init, resp, no_tamper).has_value());
  REQUIRE(init.is_complete());
  REQUIRE(resp.is_complete());
  CHECK_FALSE(init.is_my_turn());
  CHECK(*init.remote_static() == b.keys.public_key);
  CHECK(*resp.remote_static() == a.keys.public_key);
  CHECK(init.handshake_hash() == resp.handshake_hash());

  TransportKeys ti = init.split();
  TransportKeys tr = resp.split();
  for (int round = 0; round < 5; ++round) {
    for (auto [tx, rx] : {std::pair{&ti.send, &tr.recv}, std::pair{&tr.send, &ti.recv}}) {
      std::vector<uint8_t> buf(1000 + round + kTagBytes);
      for (size_t i = 0; i < buf.size() - kTagBytes; ++i)
        buf[i] = static_cast<uint8_t>(i * 7 + round);
      const std::vector<uint8_t> plain(buf.begin(), buf.end() - kTagBytes);
      auto n = tx->encrypt({}, std::span(buf).first(plain.size()), buf);  // in place
      REQUIRE(n.is_ok());
      CHECK(*n == plain.size() + kTagBytes);
      CHECK(std::vector<uint8_t>(buf.begin(), buf.end() - kTagBytes) != plain);
      auto m = rx->decrypt({}, buf, buf);  // in place
      REQUIRE(m.is_ok());
      CHECK(std::vector<uint8_t>(buf.begin(), buf.begin() + *m) == plain);
    }
  }
  CHECK(ti.send.nonce() == 5);
  CHECK(tr.recv.nonce() == 5);
  CHECK(ti.recv.nonce() == 5);

  // The largest Noise message: 65535 bytes on the wire.
  std::vector<uint8_t> big(kMaxNoiseMessage);
  auto n = ti.send.encrypt({}, std::span(big).first(kMaxNoiseMessage - kTagBytes), big);
  REQUIRE(n.is_ok());
  CHECK(*n == kMaxNoiseMessage);
  CHECK(tr.recv.decrypt({}, big, big).is_ok());
}

TEST_CASE("a peer without the swarm key fails at message 3, on the responder") {
  Party a, b;
  a.psk = SwarmKey::generate();
  b.psk = SwarmKey::generate();
  auto init = make(Role::kInitiator, a);
  auto resp = make(Role::kResponder, b);
  Code code{};
  auto failed = exchange(init, resp, no_tamper, &code);
  REQUIRE(failed.has_value());
  CHECK(*failed == 2);  // responder's read of message 3
  CHECK(code == Code::kAuth);
  CHECK_FALSE(resp.is_complete());
  CHECK_FALSE(resp.remote_static().has_value());
  // The state is dead: nothing more is accepted.
  auto again = resp.read_message(std::vector<uint8_t>(64));
  CHECK(again.status().code() == Code::kClosed);
}

TEST_CASE("a different prologue fails the handshake") {
  Party a, b;
  b.psk = a.psk = SwarmKey::generate();
  auto init = make(Role::kInitiator, a);
  const std::string other = "gossip-train/2";
  HandshakeState resp(
      HandshakeConfig{Pattern::kXXpsk3,
                      Role::kResponder,
                      &b.keys,
                      &b.psk,
                      {reinterpret_cast<const uint8_t*>(other.data()), other.size()},
                      nullptr});
  auto failed = exchange(init, resp, no_tamper);
  REQUIRE(failed.has_value());
  CHECK(*failed == 0);  // psk mode authenticates message 1's payload with h
}

TEST_CASE("low-order or zero public keys abort the handshake with kAuth") {
  // Where the bad key sits, and which step must fail (0..2: that message's read).
  enum class Where { kE1, kE2, kS2, kS3, kE1PlainXX };
  const std::pair<Where, int> scenarios[] = {
      {Where::kE1, 0}, {Where::kE2, 1}, {Where::kS2, 1}, {Where::kS3, 2}, {Where::kE1PlainXX, 0}};
  int aborted = 0;
  for (const PublicKey& bad : low_order_points()) {
    for (const auto& scenario : scenarios) {
      const Where where = scenario.first;  // (clang 14: no structured bindings in CAPTURE)
      const int step = scenario.second;
      CAPTURE(peer_id(bad));
      CAPTURE(static_cast<int>(where));
      Party a, b;
      b.psk = a.psk = SwarmKey::generate();
      StaticKeypair fake = fake_keypair(bad.data());
      if (where == Where::kS2) b.keys = fake;
      if (where == Where::kS3) a.keys = fake;
      const Pattern pattern = where == Where::kE1PlainXX ? Pattern::kXX : Pattern::kXXpsk3;
      const bool e1 = where == Where::kE1 || where == Where::kE1PlainXX;
      auto init = make(Role::kInitiator, a, pattern, e1 ? &fake : nullptr);
      auto resp = make(Role::kResponder, b, pattern, where == Where::kE2 ? &fake : nullptr);
      Code code{};
      auto failed = exchange(init, resp, no_tamper, &code);
      REQUIRE(failed.has_value());
      CHECK(*failed == step);
      CHECK(code == Code::kAuth);
      if (where == Where::kS2) CHECK_FALSE(init.remote_static().has_value());
      ++aborted;
    }
  }
  CHECK(aborted == 35);
}

TEST_CASE("every flipped byte of every handshake message is rejected") {
  Party a, b;
  b.psk = a.psk = SwarmKey::generate();
  for (Pattern pattern : {Pattern::kXXpsk3, Pattern::kXX}) {
    for (int msg = 0; msg < 3; ++msg) {
      size_t len = 0;
      {
        auto init = make(Role::kInitiator, a, pattern);
        auto resp = make(Role::kResponder, b, pattern);
        REQUIRE_FALSE(exchange(init, resp, [&](int i, std::vector<uint8_t>& m) {
                        if (i == msg) len = m.size();
                      }).has_value());
      }
      REQUIRE(len > 32);
      int rejected = 0;
      for (size_t pos = 0; pos < len; ++pos) {
        auto init = make(Role::kInitiator, a, pattern);
        auto resp = make(Role::kResponder, b, pattern);
        auto failed = exchange(init, resp, [&](int i, std::vector<uint8_t>& m) {
          if (i == msg) m[pos] ^= 0x01;
        });
        CAPTURE(msg);
        CAPTURE(pos);
        REQUIRE(failed.has_value());
        // XXpsk3 authenticates every byte of every message where it arrives;
        // plain XX's first message is only authenticated by message 2.
        if (pattern == Pattern::kXXpsk3 || msg > 0) {
          CHECK(*failed == msg);
        } else {
          CHECK(*failed == 1);
        }
        ++rejected;
      }
      CHECK(rejected == static_cast<int>(len));
      // Truncated or extended messages fail too.
      for (int delta : {-1, +1}) {
        auto init = make(Role::kInitiator, a, pattern);
        auto resp = make(Role::kResponder, b, pattern);
        auto failed = exchange(init, resp, [&](int i, std::vector<uint8_t>& m) {
          if (i == msg) m.resize(m.size() + delta);
        });
        CHECK(failed.has_value());
      }
    }
  }
}

TEST_CASE("handshake API misuse is reported, not fatal") {
  Party a, b;
  b.psk = a.psk = SwarmKey::generate();
  auto init = make(Role::kInitiator, a);
  auto resp = make(Role::kResponder, b);
  CHECK(resp.write_message({}).status().code() == Code::kInvalidArgument);  // out of turn
  CHECK(init.read_message(std::vector<uint8_t>(48)).status().code() == Code::kInvalidArgument);
  // Too large: 32 (e) + payload + 16 (tag) > 65535. The state survives.
  std::vector<uint8_t> huge(kMaxNoiseMessage - 32 - kTagBytes + 1);
  CHECK(init.write_message(huge).status().code() == Code::kInvalidArgument);
  huge.pop_back();
  auto msg = init.write_message(huge);
  REQUIRE(msg.is_ok());
  CHECK(msg->size() == kMaxNoiseMessage);
  CHECK(resp.read_message(*msg).is_ok());
  // Too short for message 2 is a protocol error and kills the state.
  std::vector<uint8_t> short_msg(40);
  randombytes_buf(short_msg.data(), short_msg.size());
  CHECK(init.read_message(short_msg).status().code() == Code::kProtocol);
  CHECK(init.write_message({}).status().code() == Code::kClosed);
  // A moved-from state is inert.
  HandshakeState moved = std::move(resp);
  CHECK_FALSE(resp.is_my_turn());  // NOLINT(bugprone-use-after-move)
  CHECK(moved.is_my_turn());
}

TEST_CASE("transport: tampering, replay and reordering fail and leave the nonce unchanged") {
  SymmetricKey key;
  randombytes_buf(key.data(), key.size());
  CipherState tx(key), rx(key);
  const std::vector<uint8_t> ad = bytes("header");
  std::vector<std::vector<uint8_t>> msgs;
  for (int i = 0; i < 3; ++i) {
    auto plain = bytes("message number " + std::to_string(i));
    std::vector<uint8_t> ct(plain.size() + kTagBytes);
    REQUIRE(tx.encrypt(ad, plain, ct).is_ok());
    msgs.push_back(ct);
  }
  CHECK(tx.nonce() == 3);
  std::vector<uint8_t> out(64);

  for (size_t pos = 0; pos < msgs[0].size(); ++pos) {
    auto bad = msgs[0];
    bad[pos] ^= 0x80;
    auto r = rx.decrypt(ad, bad, out);
    CHECK(r.status().code() == Code::kAuth);
    CHECK(rx.nonce() == 0);
  }
  CHECK(rx.decrypt(bytes("other ad"), msgs[0], out).status().code() == Code::kAuth);
  CHECK(rx.decrypt(ad, std::span(msgs[0]).first(kTagBytes - 1), out).status().code() ==
        Code::kAuth);
  CHECK(rx.decrypt(ad, msgs[1], out).status().code() == Code::kAuth);  // out of order
  CHECK(rx.nonce() == 0);

  auto ok = rx.decrypt(ad, msgs[0], out);
  REQUIRE(ok.is_ok());
  CHECK(std::string(out.begin(), out.begin() + *ok) == "message number 0");
  CHECK(rx.nonce() == 1);
  CHECK(rx.decrypt(ad, msgs[0], out).status().code() == Code::kAuth);  // replay
  CHECK(rx.nonce() == 1);
  CHECK(rx.decrypt(ad, msgs[1], out).is_ok());

  // In place and out of place give the same ciphertext.
  CipherState c1(key), c2(key);
  std::vector<uint8_t> p = bytes("same bytes either way"), in_place = p;
  in_place.resize(p.size() + kTagBytes);
  std::vector<uint8_t> separate(p.size() + kTagBytes);
  REQUIRE(c1.encrypt(ad, p, separate).is_ok());
  REQUIRE(c2.encrypt(ad, std::span(in_place).first(p.size()), in_place).is_ok());
  CHECK(in_place == separate);
}

TEST_CASE("nonces never wrap: 2^64-1 is refused") {
  SymmetricKey key;
  randombytes_buf(key.data(), key.size());
  CipherState tx(key), rx(key);
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  tx.set_nonce(max - 1);
  rx.set_nonce(max - 1);
  std::vector<uint8_t> buf(10 + kTagBytes);
  REQUIRE(tx.encrypt({}, std::span(buf).first(10), buf).is_ok());
  REQUIRE(rx.decrypt({}, buf, buf).is_ok());
  CHECK(tx.nonce() == max);
  CHECK(tx.encrypt({}, std::span(buf).first(10), buf).status().code() == Code::kResourceLimit);
  CHECK(rx.decrypt({}, buf, buf).status().code() == Code::kResourceLimit);
  CHECK(tx.nonce() == max);

  // Without a key, Noise passes bytes through.
  CipherState plain;
  std::vector<uint8_t> o(3);
  auto n = plain.encrypt({}, bytes("abc"), o);
  REQUIRE(n.is_ok());
  CHECK(*n == 3);
  CHECK(o == bytes("abc"));
}
