// Noise CipherState over ChaCha20-Poly1305 IETF or AES-256-GCM. The detached
// libsodium calls let callers encrypt and decrypt in place, so the transport
// path makes no copies: the only per-message work besides the AEAD is
// building the 12-byte nonce (4 zero bytes, then the 64-bit counter,
// little-endian for ChaChaPoly and big-endian for AESGCM, as Noise says).
#include <sodium.h>

#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "gossip/crypto/noise.hpp"

namespace gossip::crypto {
namespace {

constexpr uint64_t kNonceExhausted = std::numeric_limits<uint64_t>::max();

constexpr size_t kNonceBytes = 12;
static_assert(crypto_aead_chacha20poly1305_IETF_NPUBBYTES == kNonceBytes);
static_assert(crypto_aead_aes256gcm_NPUBBYTES == kNonceBytes);
static_assert(crypto_aead_chacha20poly1305_IETF_ABYTES == kTagBytes);
static_assert(crypto_aead_aes256gcm_ABYTES == kTagBytes);

void make_nonce(Cipher cipher, uint64_t n, uint8_t out[kNonceBytes]) {
  std::memset(out, 0, 4);
  for (int i = 0; i < 8; ++i) {
    const int shift = cipher == Cipher::kAesGcm ? 8 * (7 - i) : 8 * i;
    out[4 + i] = static_cast<uint8_t>(n >> shift);
  }
}

}  // namespace

static_assert(kCipherNames[static_cast<size_t>(Cipher::kChaChaPoly)].cipher ==
                      Cipher::kChaChaPoly &&
                  kCipherNames[static_cast<size_t>(Cipher::kAesGcm)].cipher == Cipher::kAesGcm,
              "kCipherNames is in Cipher order");

std::string_view cipher_name(Cipher cipher) {
  return kCipherNames[static_cast<size_t>(cipher)].noise;
}

std::string_view cipher_config_name(Cipher cipher) {
  return kCipherNames[static_cast<size_t>(cipher)].config;
}

std::optional<Cipher> parse_cipher(std::string_view config_name) {
  for (const CipherName& n : kCipherNames) {
    if (n.config == config_name) return n.cipher;
  }
  return std::nullopt;
}

core::Status check_cipher_available(Cipher cipher) {
  if (cipher == Cipher::kChaChaPoly) return core::Status::ok();
  ensure_sodium();
  if (crypto_aead_aes256gcm_is_available() == 0) {
    return core::unavailable("cipher " + std::string(cipher_name(cipher)) +
                             " needs a CPU with AES-NI and PCLMUL, which this one lacks; use " +
                             std::string(cipher_config_name(Cipher::kChaChaPoly)) +
                             " (on every peer of the swarm)");
  }
  return core::Status::ok();
}

core::Result<size_t> CipherState::encrypt(std::span<const uint8_t> ad,
                                          std::span<const uint8_t> plaintext,
                                          std::span<uint8_t> out) {
  if (!has_key_) {
    if (out.size() < plaintext.size()) {
      return core::invalid_argument("encrypt: output buffer too small");
    }
    if (!plaintext.empty()) std::memmove(out.data(), plaintext.data(), plaintext.size());
    return plaintext.size();
  }
  if (nonce_ == kNonceExhausted) {
    return core::resource_limit(
        "encrypt: nonce space exhausted; the session must be re-established");
  }
  if (out.size() < plaintext.size() + kTagBytes) {
    return core::invalid_argument("encrypt: output buffer too small for ciphertext and tag");
  }
  uint8_t npub[kNonceBytes];
  make_nonce(cipher_, nonce_, npub);
  if (cipher_ == Cipher::kAesGcm) {
    crypto_aead_aes256gcm_encrypt_detached(out.data(), out.data() + plaintext.size(), nullptr,
                                           plaintext.data(), plaintext.size(), ad.data(), ad.size(),
                                           nullptr, npub, key_.data());
  } else {
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        out.data(), out.data() + plaintext.size(), nullptr, plaintext.data(), plaintext.size(),
        ad.data(), ad.size(), nullptr, npub, key_.data());
  }
  ++nonce_;
  return plaintext.size() + kTagBytes;
}

core::Result<size_t> CipherState::decrypt(std::span<const uint8_t> ad,
                                          std::span<const uint8_t> ciphertext,
                                          std::span<uint8_t> out) {
  if (!has_key_) {
    if (out.size() < ciphertext.size()) {
      return core::invalid_argument("decrypt: output buffer too small");
    }
    if (!ciphertext.empty()) std::memmove(out.data(), ciphertext.data(), ciphertext.size());
    return ciphertext.size();
  }
  if (nonce_ == kNonceExhausted) {
    return core::resource_limit(
        "decrypt: nonce space exhausted; the session must be re-established");
  }
  if (ciphertext.size() < kTagBytes) {
    return core::auth_error("decrypt: message shorter than the authentication tag");
  }
  const size_t n = ciphertext.size() - kTagBytes;
  if (out.size() < n) return core::invalid_argument("decrypt: output buffer too small");
  uint8_t npub[kNonceBytes];
  make_nonce(cipher_, nonce_, npub);
  // libsodium verifies the tag before writing any plaintext (and zeroes `out`
  // on failure), so in-place decryption never releases unauthenticated bytes.
  const int rc = cipher_ == Cipher::kAesGcm
                     ? crypto_aead_aes256gcm_decrypt_detached(
                           out.data(), nullptr, ciphertext.data(), n, ciphertext.data() + n,
                           ad.data(), ad.size(), npub, key_.data())
                     : crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                           out.data(), nullptr, ciphertext.data(), n, ciphertext.data() + n,
                           ad.data(), ad.size(), npub, key_.data());
  if (rc != 0) {
    return core::auth_error(
        "decrypt: authentication failed (message forged, corrupted, "
        "replayed or out of order)");
  }
  ++nonce_;
  return n;
}

}  // namespace gossip::crypto
