// SymmetricState and HKDF for Noise over SHA-256 (see symmetric_state.hpp).
#include "symmetric_state.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace gossip::crypto::detail {
namespace {

// HMAC-SHA256(key[32], a || b) into out[32]; libsodium's HMAC takes keys of
// any length, and 32 bytes is the Noise HASHLEN.
void hmac(const uint8_t key[kHashLen], std::span<const uint8_t> a, std::span<const uint8_t> b,
          uint8_t out[kHashLen]) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, kHashLen);
  if (!a.empty()) crypto_auth_hmacsha256_update(&st, a.data(), a.size());
  if (!b.empty()) crypto_auth_hmacsha256_update(&st, b.data(), b.size());
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

}  // namespace

void hkdf(const uint8_t chaining_key[kHashLen], std::span<const uint8_t> ikm,
          uint8_t out1[kHashLen], uint8_t out2[kHashLen], uint8_t out3[kHashLen]) {
  // Outputs go to temporaries first: out1 may alias chaining_key.
  uint8_t temp_key[kHashLen];
  uint8_t o1[kHashLen];
  uint8_t o2[kHashLen];
  const uint8_t b1 = 0x01, b2 = 0x02, b3 = 0x03;
  hmac(chaining_key, ikm, {}, temp_key);
  hmac(temp_key, {&b1, 1}, {}, o1);
  hmac(temp_key, {o1, kHashLen}, {&b2, 1}, o2);
  if (out3 != nullptr) hmac(temp_key, {o2, kHashLen}, {&b3, 1}, out3);
  std::memcpy(out1, o1, kHashLen);
  std::memcpy(out2, o2, kHashLen);
  sodium_memzero(temp_key, sizeof temp_key);
  sodium_memzero(o1, sizeof o1);
  sodium_memzero(o2, sizeof o2);
}

SymmetricState::SymmetricState(std::string_view protocol_name, Cipher cipher) : kind_(cipher) {
  if (protocol_name.size() <= kHashLen) {
    std::copy(protocol_name.begin(), protocol_name.end(), h_.begin());
  } else {
    crypto_hash_sha256(h_.data(), reinterpret_cast<const uint8_t*>(protocol_name.data()),
                       protocol_name.size());
  }
  std::copy(h_.begin(), h_.end(), ck_.data());
}

void SymmetricState::mix_key(std::span<const uint8_t> ikm) {
  SymmetricKey temp_k;
  hkdf(ck_.data(), ikm, ck_.data(), temp_k.data(), nullptr);
  cipher_ = CipherState(temp_k, kind_);
}

void SymmetricState::mix_hash(std::span<const uint8_t> data) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, h_.data(), h_.size());
  if (!data.empty()) crypto_hash_sha256_update(&st, data.data(), data.size());
  crypto_hash_sha256_final(&st, h_.data());
  sodium_memzero(&st, sizeof st);
}

void SymmetricState::mix_key_and_hash(std::span<const uint8_t> ikm) {
  Hash temp_h;
  SymmetricKey temp_k;
  hkdf(ck_.data(), ikm, ck_.data(), temp_h.data(), temp_k.data());
  mix_hash(temp_h);
  sodium_memzero(temp_h.data(), temp_h.size());
  cipher_ = CipherState(temp_k, kind_);
}

core::Status SymmetricState::encrypt_and_hash(std::span<const uint8_t> plaintext,
                                              std::vector<uint8_t>& out) {
  const size_t start = out.size();
  out.resize(start + plaintext.size() + (has_key() ? kTagBytes : 0));
  std::span<uint8_t> dst(out.data() + start, out.size() - start);
  auto n = cipher_.encrypt(h_, plaintext, dst);
  if (!n) return n.status();
  mix_hash(dst.first(*n));
  return core::Status::ok();
}

core::Status SymmetricState::decrypt_and_hash(std::span<const uint8_t> ciphertext,
                                              std::vector<uint8_t>& out) {
  const size_t start = out.size();
  const size_t plain = has_key()
                           ? (ciphertext.size() >= kTagBytes ? ciphertext.size() - kTagBytes : 0)
                           : ciphertext.size();
  out.resize(start + plain);
  auto n = cipher_.decrypt(h_, ciphertext, {out.data() + start, plain});
  if (!n) {
    out.resize(start);
    return n.status();
  }
  mix_hash(ciphertext);
  return core::Status::ok();
}

void SymmetricState::split(CipherState& c1, CipherState& c2) {
  SymmetricKey k1;
  SymmetricKey k2;
  hkdf(ck_.data(), {}, k1.data(), k2.data(), nullptr);
  c1 = CipherState(k1, kind_);
  c2 = CipherState(k2, kind_);
}

void SymmetricState::wipe() {
  sodium_memzero(ck_.data(), ck_.size());
  cipher_ = CipherState();
}

}  // namespace gossip::crypto::detail
