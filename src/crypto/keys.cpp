// Key material: libsodium start-up, self-zeroing secrets, X25519 key pairs,
// swarm keys and peer ids. The on-disk format lives in key_files.cpp.
#include "gossip/crypto/keys.hpp"

#include <sodium.h>

#include <mutex>
#include <stdexcept>

namespace gossip::crypto {

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium: sodium_init() failed");
  });
}

SecretBytes::SecretBytes() = default;

SecretBytes::~SecretBytes() {
  sodium_memzero(bytes_.data(), bytes_.size());
}

SecretBytes::SecretBytes(const SecretBytes& other) : bytes_(other.bytes_) {}

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  bytes_ = other.bytes_;
  return *this;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(other.bytes_) {
  sodium_memzero(other.bytes_.data(), other.bytes_.size());
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    sodium_memzero(other.bytes_.data(), other.bytes_.size());
  }
  return *this;
}

bool SecretBytes::equals(const SecretBytes& other) const {
  return sodium_memcmp(bytes_.data(), other.bytes_.data(), bytes_.size()) == 0;
}

StaticKeypair StaticKeypair::generate() {
  ensure_sodium();
  StaticKeypair kp;
  if (crypto_box_keypair(kp.public_key.data(), kp.secret_key.data()) != 0) {
    throw std::runtime_error("libsodium: crypto_box_keypair failed");
  }
  return kp;
}

StaticKeypair StaticKeypair::from_secret(const uint8_t secret[32]) {
  ensure_sodium();
  StaticKeypair kp;
  std::copy(secret, secret + 32, kp.secret_key.data());
  // Fails only for an all-zero result, impossible from the base point with a
  // clamped scalar; keep the zero public key in that impossible case.
  (void)crypto_scalarmult_base(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

SwarmKey SwarmKey::generate() {
  ensure_sodium();
  SwarmKey k;
  randombytes_buf(k.key.data(), k.key.size());
  return k;
}

void random_bytes(std::span<uint8_t> out) {
  ensure_sodium();
  randombytes_buf(out.data(), out.size());
}

std::string peer_id(const PublicKey& key) {
  std::string hex(key.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), key.data(), key.size());
  hex.pop_back();
  return hex;
}

core::Result<PublicKey> parse_peer_id(const std::string& hex) {
  if (hex.size() != 64) {
    return core::invalid_argument("peer id: expected 64 hex characters, got " +
                                  std::to_string(hex.size()));
  }
  PublicKey key{};
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      len != key.size() || end != hex.data() + hex.size()) {
    return core::invalid_argument("peer id: not a hex string: '" + hex + "'");
  }
  return key;
}

}  // namespace gossip::crypto
