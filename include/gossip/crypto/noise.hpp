// Noise_XXpsk3_25519_ChaChaPoly_SHA256 (and plain Noise_XX for the test
// vectors), built from libsodium primitives; Noise's AESGCM cipher instead of
// ChaChaPoly on request (net.cipher). Spec: noiseprotocol.org/noise.html
// rev 34, sections 5 (processing rules), 9 (PSK modifiers) and 4.3 (HKDF).
//
// Pattern XXpsk3:   -> e
//                   <- e, ee, s, es
//                   -> s, se, psk
// The initiator learns the responder's static key after message 2; the
// responder learns the initiator's after message 3. A party without the
// swarm key (PSK) fails to decrypt message 3, so nothing after it is accepted.
//
// Not thread-safe: one HandshakeState / CipherState per session, used on that
// session's strand.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "gossip/core/status.hpp"
#include "gossip/crypto/keys.hpp"

namespace gossip::crypto {

inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kMaxNoiseMessage = 65535;  // bytes on the wire, tag included
inline constexpr std::string_view kPrologue = "gossip-train/1";

// The AEAD of the Noise protocol. ChaChaPoly is wire protocol v1 as
// docs/design.md fixes it and the default. AESGCM (AES-256-GCM) is about 1.4x
// faster on CPUs with AES-NI and PCLMUL, and only available there. Every
// peer of a swarm must use the same one: the name is part of the Noise
// protocol name, so a mismatch fails the handshake at message 1 (the
// responder cannot authenticate its tag; a wrong swarm key fails at 3).
enum class Cipher { kChaChaPoly, kAesGcm };

// The one name table of the ciphers, in Cipher order: the spelling of a
// config's net.cipher and the cipher part of the Noise protocol name.
struct CipherName {
  Cipher cipher;
  std::string_view config;  // "chachapoly" | "aesgcm"
  std::string_view noise;   // "ChaChaPoly" | "AESGCM"
};
inline constexpr CipherName kCipherNames[] = {{Cipher::kChaChaPoly, "chachapoly", "ChaChaPoly"},
                                              {Cipher::kAesGcm, "aesgcm", "AESGCM"}};

// The Noise name: "ChaChaPoly" or "AESGCM".
std::string_view cipher_name(Cipher cipher);
// The config spelling: "chachapoly" or "aesgcm".
std::string_view cipher_config_name(Cipher cipher);
// The cipher a config spelling names; nullopt for any other text.
std::optional<Cipher> parse_cipher(std::string_view config_name);
// OK, or kUnavailable naming what this CPU lacks (AESGCM without AES-NI or
// PCLMUL). Check before creating states that use the cipher.
core::Status check_cipher_available(Cipher cipher);

// A Noise CipherState: a 32-byte key and a 64-bit counter nonce in the last
// 8 bytes of the 12-byte nonce, first 4 bytes zero (ChaChaPoly: counter
// little-endian; AESGCM: big-endian). The nonce never wraps: at 2^64-1
// every call fails.
class CipherState {
 public:
  CipherState() = default;
  explicit CipherState(const SymmetricKey& key, Cipher cipher = Cipher::kChaChaPoly)
      : key_(key), cipher_(cipher), has_key_(true) {}

  Cipher cipher() const { return cipher_; }

  bool has_key() const { return has_key_; }
  uint64_t nonce() const { return nonce_; }
  // Noise SetNonce(): for tests and for resuming a counter; never rewind a
  // live session's nonce (that reuses keystream).
  void set_nonce(uint64_t nonce) { nonce_ = nonce; }

  // Encrypts `plaintext` into `out` (size >= plaintext.size() + kTagBytes);
  // in-place is allowed (out.data() == plaintext.data(); other partial
  // overlaps are not). The tag follows the ciphertext. Returns the bytes
  // written. Without a key it copies the plaintext (Noise rule).
  core::Result<size_t> encrypt(std::span<const uint8_t> ad, std::span<const uint8_t> plaintext,
                               std::span<uint8_t> out);
  // Decrypts and authenticates `ciphertext` into `out` (size >=
  // ciphertext.size() - kTagBytes); in-place allowed. An auth failure leaves
  // the nonce unchanged and returns kAuth (libsodium then zeroes `out`, so
  // in place the ciphertext is gone). kResourceLimit once the nonce is
  // exhausted. Call ensure_sodium() first (HandshakeState does) so libsodium
  // picks its fast implementations.
  core::Result<size_t> decrypt(std::span<const uint8_t> ad, std::span<const uint8_t> ciphertext,
                               std::span<uint8_t> out);

 private:
  SymmetricKey key_;
  uint64_t nonce_ = 0;
  Cipher cipher_ = Cipher::kChaChaPoly;
  bool has_key_ = false;
};

enum class Role { kInitiator, kResponder };
enum class Pattern { kXX, kXXpsk3 };

struct HandshakeConfig {
  Pattern pattern = Pattern::kXXpsk3;
  Role role = Role::kInitiator;
  // Keys and prologue are copied by the HandshakeState constructor (the
  // copies zero themselves), so they need not outlive it.
  const StaticKeypair* local_static = nullptr;  // required
  const SwarmKey* psk = nullptr;                // required for kXXpsk3
  std::span<const uint8_t> prologue;            // usually kPrologue's bytes
  // Tests only (known-answer vectors): a fixed ephemeral key pair.
  const StaticKeypair* fixed_ephemeral = nullptr;
  // Picks the protocol name Noise_<pattern>_25519_<cipher>_SHA256 and the
  // AEAD of the handshake and of the transport keys.
  Cipher cipher = Cipher::kChaChaPoly;
};

// The two transport ciphers after the handshake, from this side's view.
struct TransportKeys {
  CipherState send;
  CipherState recv;
};

class HandshakeState {
 public:
  // Throws std::invalid_argument (programmer error) without local_static,
  // without psk for kXXpsk3, or with a cipher this CPU lacks
  // (check_cipher_available first).
  explicit HandshakeState(const HandshakeConfig& config);
  ~HandshakeState();
  HandshakeState(const HandshakeState&) = delete;
  HandshakeState& operator=(const HandshakeState&) = delete;
  HandshakeState(HandshakeState&&) noexcept;
  HandshakeState& operator=(HandshakeState&&) noexcept;

  // Whose turn: true when this side must call write_message next.
  bool is_my_turn() const;
  bool is_complete() const;

  // Writes the next handshake message, carrying `payload`, and returns it.
  // Fails (kInvalidArgument) out of turn or when it would exceed 65535 bytes
  // (the state stays usable); kAuth if a DH result is zero (state dead);
  // kClosed once the state is dead.
  // Message sizes for XXpsk3: 1: 48 + payload, 2: 96 + payload,
  // 3: 64 + payload bytes.
  core::Result<std::vector<uint8_t>> write_message(std::span<const uint8_t> payload);
  // Reads the peer's next handshake message and returns its payload. Any
  // failure is final, the state is dead: kAuth for a bad tag (in XXpsk3 a
  // wrong swarm key fails here, on the responder, at message 3) or a
  // low-order / zero public key; kProtocol for a message too short or over
  // 65535 bytes; kClosed once dead; kInvalidArgument out of turn (not fatal).
  core::Result<std::vector<uint8_t>> read_message(std::span<const uint8_t> message);

  // Valid once the peer's static key has been received (initiator: after
  // message 2; responder: after message 3).
  std::optional<PublicKey> remote_static() const;
  // h after the handshake, for channel binding.
  std::array<uint8_t, 32> handshake_hash() const;
  // Requires is_complete() (else throws std::logic_error); the state is
  // spent afterwards. Initiator: send = c1, recv = c2; responder: swapped.
  TransportKeys split();

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace gossip::crypto
