// Noise SymmetricState (spec rev 34, section 5.2) for SHA-256: the chaining
// key ck, the handshake hash h and the CipherState they key, plus HKDF
// (section 4.3) over libsodium's HMAC-SHA256. Internal to src/crypto; the
// handshake drives it token by token. Every temporary key is zeroed.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/crypto/noise.hpp"

namespace gossip::crypto::detail {

inline constexpr size_t kHashLen = 32;
using Hash = std::array<uint8_t, kHashLen>;

// HKDF(chaining_key, ikm) with 2 or 3 outputs (out3 may be null).
void hkdf(const uint8_t chaining_key[kHashLen], std::span<const uint8_t> ikm,
          uint8_t out1[kHashLen], uint8_t out2[kHashLen], uint8_t out3[kHashLen]);

class SymmetricState {
 public:
  // InitializeSymmetric(protocol_name); `cipher` is the AEAD the name says.
  SymmetricState(std::string_view protocol_name, Cipher cipher);

  void mix_key(std::span<const uint8_t> ikm);
  void mix_hash(std::span<const uint8_t> data);
  void mix_key_and_hash(std::span<const uint8_t> ikm);
  bool has_key() const { return cipher_.has_key(); }

  // Appends EncryptAndHash(plaintext) to `out`.
  core::Status encrypt_and_hash(std::span<const uint8_t> plaintext, std::vector<uint8_t>& out);
  // Appends DecryptAndHash(ciphertext) to `out`.
  core::Status decrypt_and_hash(std::span<const uint8_t> ciphertext, std::vector<uint8_t>& out);

  // Split(): c1 (initiator to responder), c2 (responder to initiator).
  void split(CipherState& c1, CipherState& c2);

  const Hash& handshake_hash() const { return h_; }
  // Zeroes the chaining key (after split, or when the handshake dies).
  void wipe();

 private:
  SecretBytes ck_;
  Hash h_{};
  Cipher kind_;
  CipherState cipher_;
};

}  // namespace gossip::crypto::detail
