// Keys: X25519 identities, the 32-byte swarm key, and their files on disk.
//
// Secrets live in SecretBytes, which zeroes itself (sodium_memzero) on
// destruction and is never printed. Key files are text: a header line naming
// the kind, then the body in lowercase hex, e.g.
//   gossip-train identity v1
//   public 7c3b...  (64 hex chars)
//   secret 19af...  (64 hex chars)
// and
//   gossip-train swarm-key v1
//   key 5d0e...     (64 hex chars)
// Files are created 0600; a secret file readable by group or others is refused.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "gossip/core/status.hpp"

namespace gossip::crypto {

// Calls sodium_init() once per process; safe from any thread. Fatal (throws
// std::runtime_error) if libsodium cannot initialise.
void ensure_sodium();

// 32 secret bytes that zero themselves on destruction and on move-from.
class SecretBytes {
 public:
  SecretBytes();
  ~SecretBytes();
  SecretBytes(const SecretBytes& other);
  SecretBytes& operator=(const SecretBytes& other);
  // Moves copy the bytes and zero the source.
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  // Constant-time comparison (sodium_memcmp).
  bool equals(const SecretBytes& other) const;
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  static constexpr size_t size() { return 32; }

 private:
  std::array<uint8_t, 32> bytes_{};
};

using SymmetricKey = SecretBytes;
using PublicKey = std::array<uint8_t, 32>;

struct StaticKeypair {
  PublicKey public_key{};
  SecretBytes secret_key;
  // Fresh random key pair (crypto_box_keypair / crypto_scalarmult_base).
  static StaticKeypair generate();
  // Key pair from a given secret (tests): public = X25519(secret, base).
  static StaticKeypair from_secret(const uint8_t secret[32]);
};

struct SwarmKey {
  SecretBytes key;
  static SwarmKey generate();
};

// Fills `out` with bytes from the system's cryptographic random source
// (libsodium's randombytes_buf): tokens that must not be guessed. Any thread.
void random_bytes(std::span<uint8_t> out);

// Lowercase hex of a public key: the peer id.
std::string peer_id(const PublicKey& key);
core::Result<PublicKey> parse_peer_id(const std::string& hex);

// Write a key file (0600, refuses to overwrite an existing file).
core::Status write_identity_file(const std::filesystem::path& path, const StaticKeypair& keys);
core::Status write_swarm_key_file(const std::filesystem::path& path, const SwarmKey& key);
// Load a key file; errors name the file and the problem (permissions, wrong
// kind, damaged body, public key not matching the secret).
core::Result<StaticKeypair> load_identity_file(const std::filesystem::path& path);
core::Result<SwarmKey> load_swarm_key_file(const std::filesystem::path& path);

}  // namespace gossip::crypto
