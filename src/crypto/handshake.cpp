// Noise HandshakeState for XX and XXpsk3 over 25519/ChaChaPoly|AESGCM/SHA256
// (spec rev 34, sections 5.3 and 9). The pattern is a table of tokens per
// message; write_message / read_message walk it. Any failure kills the state
// (Noise: an error aborts the handshake), and every DH output and ephemeral
// secret is zeroed as soon as it is used or the state dies.
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "gossip/crypto/noise.hpp"
#include "symmetric_state.hpp"

namespace gossip::crypto {
namespace {

enum class Token { kE, kS, kEE, kES, kSE, kPsk };

constexpr size_t kDhLen = 32;
constexpr int kMessages = 3;

// XX:      -> e   <- e, ee, s, es   -> s, se
// XXpsk3:  the same, with psk appended to message 3.
std::span<const Token> message_tokens(Pattern pattern, int index) {
  static constexpr Token m0[] = {Token::kE};
  static constexpr Token m1[] = {Token::kE, Token::kEE, Token::kS, Token::kES};
  static constexpr Token m2[] = {Token::kS, Token::kSE};
  static constexpr Token m2psk[] = {Token::kS, Token::kSE, Token::kPsk};
  switch (index) {
    case 0:
      return m0;
    case 1:
      return m1;
    default:
      return pattern == Pattern::kXXpsk3 ? std::span<const Token>(m2psk)
                                         : std::span<const Token>(m2);
  }
}

std::string protocol_name(Pattern pattern, Cipher cipher) {
  return std::string(pattern == Pattern::kXXpsk3 ? "Noise_XXpsk3" : "Noise_XX") + "_25519_" +
         std::string(cipher_name(cipher)) + "_SHA256";
}

// X25519 with libsodium; a non-zero return (all-zero output, i.e. a
// low-order or zero public key) is an authentication failure.
core::Status dh(const SecretBytes& secret, const PublicKey& pub, SecretBytes& out) {
  if (crypto_scalarmult(out.data(), secret.data(), pub.data()) != 0) {
    sodium_memzero(out.data(), out.size());
    return core::auth_error("handshake aborted: peer sent a low-order or zero public key");
  }
  return core::Status::ok();
}

// True for public keys whose DH with any clamped scalar is all zeros. Used
// where the spec would only notice one message later (message 1's "e").
bool is_low_order(const PublicKey& pub) {
  static const uint8_t kProbeScalar[32] = {0x4d, 0x1a, 0x97, 0x3c, 0x12, 0x55, 0xe0, 0x21,
                                           0x07, 0x3b, 0x9c, 0x6f, 0x44, 0x81, 0x2e, 0x5a,
                                           0x90, 0x11, 0xc3, 0x7d, 0x28, 0x64, 0xb5, 0x0e,
                                           0x3f, 0xa2, 0x59, 0x17, 0xdc, 0x86, 0x4b, 0x33};
  uint8_t out[32];
  const bool low = crypto_scalarmult(out, kProbeScalar, pub.data()) != 0;
  sodium_memzero(out, sizeof out);
  return low;
}

}  // namespace

struct HandshakeState::Impl {
  Pattern pattern;
  Role role;
  detail::SymmetricState ss;
  StaticKeypair s;
  StaticKeypair e;
  SymmetricKey psk;
  bool has_fixed_e = false;
  StaticKeypair fixed_e;
  PublicKey re{};
  PublicKey rs{};
  bool has_rs = false;
  int index = 0;  // next message, 0..2; kMessages when complete
  bool dead = false;
  bool spent = false;

  explicit Impl(const HandshakeConfig& c)
      : pattern(c.pattern), role(c.role), ss(protocol_name(c.pattern, c.cipher), c.cipher) {}

  bool initiator() const { return role == Role::kInitiator; }
  bool my_turn() const { return !dead && index < kMessages && (index % 2 == 0) == initiator(); }

  core::Status fail(core::Status status) {
    dead = true;
    ss.wipe();
    e = StaticKeypair();
    return status;
  }

  core::Status mix_dh(Token token) {
    SecretBytes out;
    core::Status st;
    switch (token) {
      case Token::kEE:
        st = dh(e.secret_key, re, out);
        break;
      case Token::kES:
        st = initiator() ? dh(e.secret_key, rs, out) : dh(s.secret_key, re, out);
        break;
      case Token::kSE:
        st = initiator() ? dh(s.secret_key, re, out) : dh(e.secret_key, rs, out);
        break;
      default:
        return core::internal_error("handshake: not a DH token");
    }
    if (!st) return st;
    ss.mix_key({out.data(), out.size()});
    return core::Status::ok();
  }

  // Size of the next message this side would write, for the 65535 check.
  size_t written_size(size_t payload) const {
    bool keyed = ss.has_key();
    size_t n = 0;
    for (Token t : message_tokens(pattern, index)) {
      if (t == Token::kE) {
        n += kDhLen;
        if (pattern == Pattern::kXXpsk3) keyed = true;
      } else if (t == Token::kS) {
        n += kDhLen + (keyed ? kTagBytes : 0);
      } else {
        keyed = true;  // every DH and psk token mixes a key
      }
    }
    return n + payload + (keyed ? kTagBytes : 0);
  }
};

HandshakeState::HandshakeState(const HandshakeConfig& config) : impl_(nullptr) {
  ensure_sodium();
  if (config.local_static == nullptr) {
    throw std::invalid_argument("HandshakeConfig: local_static is required");
  }
  if (config.pattern == Pattern::kXXpsk3 && config.psk == nullptr) {
    throw std::invalid_argument("HandshakeConfig: psk is required for XXpsk3");
  }
  if (auto st = check_cipher_available(config.cipher); !st) {
    throw std::invalid_argument("HandshakeConfig: " + st.message());
  }
  impl_ = new Impl(config);
  impl_->s = *config.local_static;
  if (config.psk != nullptr) impl_->psk = config.psk->key;
  if (config.fixed_ephemeral != nullptr) {
    impl_->has_fixed_e = true;
    impl_->fixed_e = *config.fixed_ephemeral;
  }
  impl_->ss.mix_hash(config.prologue);
}

HandshakeState::~HandshakeState() {
  delete impl_;
}

HandshakeState::HandshakeState(HandshakeState&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)) {}

HandshakeState& HandshakeState::operator=(HandshakeState&& other) noexcept {
  if (this != &other) {
    delete impl_;
    impl_ = std::exchange(other.impl_, nullptr);
  }
  return *this;
}

bool HandshakeState::is_my_turn() const {
  return impl_ != nullptr && impl_->my_turn();
}

bool HandshakeState::is_complete() const {
  return impl_ != nullptr && !impl_->dead && impl_->index == kMessages;
}

core::Result<std::vector<uint8_t>> HandshakeState::write_message(std::span<const uint8_t> payload) {
  if (impl_ == nullptr || impl_->dead) {
    return core::Status(core::Code::kClosed, "handshake: state is dead after an earlier failure");
  }
  Impl& st = *impl_;
  if (!st.my_turn()) return core::invalid_argument("handshake: write_message out of turn");
  const size_t size = st.written_size(payload.size());
  if (size > kMaxNoiseMessage) {
    return core::invalid_argument("handshake: message of " + std::to_string(size) +
                                  " bytes exceeds the Noise limit of 65535");
  }
  std::vector<uint8_t> msg;
  msg.reserve(size);
  for (Token t : message_tokens(st.pattern, st.index)) {
    switch (t) {
      case Token::kE: {
        st.e = st.has_fixed_e ? st.fixed_e : StaticKeypair::generate();
        msg.insert(msg.end(), st.e.public_key.begin(), st.e.public_key.end());
        st.ss.mix_hash(st.e.public_key);
        if (st.pattern == Pattern::kXXpsk3) st.ss.mix_key(st.e.public_key);
        break;
      }
      case Token::kS: {
        core::Status s = st.ss.encrypt_and_hash(st.s.public_key, msg);
        if (!s) return st.fail(s);
        break;
      }
      case Token::kPsk:
        st.ss.mix_key_and_hash({st.psk.data(), st.psk.size()});
        break;
      default: {
        core::Status s = st.mix_dh(t);
        if (!s) return st.fail(s);
      }
    }
  }
  core::Status s = st.ss.encrypt_and_hash(payload, msg);
  if (!s) return st.fail(s);
  ++st.index;
  if (st.index == kMessages) st.e = StaticKeypair();  // ephemeral no longer needed
  return msg;
}

core::Result<std::vector<uint8_t>> HandshakeState::read_message(std::span<const uint8_t> message) {
  if (impl_ == nullptr || impl_->dead) {
    return core::Status(core::Code::kClosed, "handshake: state is dead after an earlier failure");
  }
  Impl& st = *impl_;
  if (st.index >= kMessages || st.my_turn()) {
    return core::invalid_argument("handshake: read_message out of turn");
  }
  if (message.size() > kMaxNoiseMessage) {
    return st.fail(core::protocol_error("handshake: message longer than 65535 bytes"));
  }
  std::span<const uint8_t> rest = message;
  for (Token t : message_tokens(st.pattern, st.index)) {
    switch (t) {
      case Token::kE: {
        if (rest.size() < kDhLen) {
          return st.fail(core::protocol_error("handshake: message " + std::to_string(st.index + 1) +
                                              " too short for an ephemeral key"));
        }
        std::copy_n(rest.begin(), kDhLen, st.re.begin());
        rest = rest.subspan(kDhLen);
        if (st.index == 0 && is_low_order(st.re)) {
          return st.fail(
              core::auth_error("handshake aborted: peer sent a low-order or zero ephemeral key"));
        }
        st.ss.mix_hash(st.re);
        if (st.pattern == Pattern::kXXpsk3) st.ss.mix_key(st.re);
        break;
      }
      case Token::kS: {
        const size_t len = kDhLen + (st.ss.has_key() ? kTagBytes : 0);
        if (rest.size() < len) {
          return st.fail(core::protocol_error("handshake: message " + std::to_string(st.index + 1) +
                                              " too short for a static key"));
        }
        std::vector<uint8_t> plain;
        core::Status s = st.ss.decrypt_and_hash(rest.first(len), plain);
        if (!s) return st.fail(s.with_context("handshake: static key"));
        std::copy_n(plain.begin(), kDhLen, st.rs.begin());
        st.has_rs = true;
        rest = rest.subspan(len);
        break;
      }
      case Token::kPsk:
        st.ss.mix_key_and_hash({st.psk.data(), st.psk.size()});
        break;
      default: {
        core::Status s = st.mix_dh(t);
        if (!s) return st.fail(s);
      }
    }
  }
  std::vector<uint8_t> payload;
  core::Status s = st.ss.decrypt_and_hash(rest, payload);
  if (!s) {
    // In XXpsk3 a wrong swarm key shows up exactly here, in message 3.
    const bool psk_msg = st.pattern == Pattern::kXXpsk3 && st.index == 2;
    return st.fail(s.with_context(psk_msg ? "handshake: message 3 (wrong swarm key or forged)"
                                          : "handshake: message " + std::to_string(st.index + 1)));
  }
  ++st.index;
  if (st.index == kMessages) st.e = StaticKeypair();
  return payload;
}

std::optional<PublicKey> HandshakeState::remote_static() const {
  if (impl_ == nullptr || !impl_->has_rs || impl_->dead) return std::nullopt;
  return impl_->rs;
}

std::array<uint8_t, 32> HandshakeState::handshake_hash() const {
  if (impl_ == nullptr) return {};
  return impl_->ss.handshake_hash();
}

TransportKeys HandshakeState::split() {
  if (!is_complete() || impl_->spent) {
    throw std::logic_error("HandshakeState::split: handshake not complete or already split");
  }
  CipherState c1;
  CipherState c2;
  impl_->ss.split(c1, c2);
  impl_->ss.wipe();
  impl_->spent = true;
  TransportKeys keys;
  if (impl_->initiator()) {
    keys.send = std::move(c1);
    keys.recv = std::move(c2);
  } else {
    keys.send = std::move(c2);
    keys.recv = std::move(c1);
  }
  return keys;
}

}  // namespace gossip::crypto
