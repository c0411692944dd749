// Known-answer tests: every Noise_XX and Noise_XXpsk3 (25519, ChaChaPoly or
// AESGCM, SHA256) vector in flynn/noise's vectors.txt must match byte for byte, for
// the three handshake messages and the transport messages after them. The
// file (Debian package golang-github-flynn-noise-dev) is "key=value" lines,
// one blank-line-separated block per vector; msg_0..2 are the handshake,
// later msg_i alternate initiator->responder and responder->initiator.
#include <doctest/doctest.h>
#include <sodium.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gossip/crypto/noise.hpp"
#include "preconditions.hpp"

using namespace gossip::crypto;

namespace {

const char* kVectorsPath = "/usr/share/gocode/src/github.com/flynn/noise/vectors.txt";

using Block = std::map<std::string, std::string>;

std::vector<Block> read_blocks(std::ifstream& in) {
  std::vector<Block> blocks;
  Block cur;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (!cur.empty()) blocks.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    if (line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    cur[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (!cur.empty()) blocks.push_back(std::move(cur));
  return blocks;
}

std::vector<uint8_t> unhex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  size_t len = 0;
  REQUIRE(sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, nullptr) ==
          0);
  REQUIRE(len == out.size());
  return out;
}

std::string hex(const std::vector<uint8_t>& v) {
  std::string s(v.size() * 2 + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), v.data(), v.size());
  s.pop_back();
  return s;
}

StaticKeypair keypair(const std::string& secret_hex) {
  auto secret = unhex(secret_hex);
  REQUIRE(secret.size() == 32);
  return StaticKeypair::from_secret(secret.data());
}

// Runs one vector; returns the number of messages checked.
int run_vector(const Block& b, Pattern pattern, Cipher cipher) {
  auto si = keypair(b.at("init_static"));
  auto sr = keypair(b.at("resp_static"));
  auto ei = keypair(b.at("gen_init_ephemeral"));
  auto er = keypair(b.at("gen_resp_ephemeral"));
  std::vector<uint8_t> prologue;
  if (b.count("prologue")) prologue = unhex(b.at("prologue"));
  SwarmKey psk;
  if (pattern == Pattern::kXXpsk3) {
    auto k = unhex(b.at("preshared_key"));
    REQUIRE(k.size() == 32);
    std::copy(k.begin(), k.end(), psk.key.data());
  }
  HandshakeConfig ci{pattern, Role::kInitiator, &si, &psk, prologue, &ei, cipher};
  HandshakeConfig cr{pattern, Role::kResponder, &sr, &psk, prologue, &er, cipher};
  HandshakeState init(ci);
  HandshakeState resp(cr);
  TransportKeys ti, tr;
  int checked = 0;
  for (int i = 0;; ++i) {
    std::string key = "msg_" + std::to_string(i);
    if (!b.count(key + "_ciphertext")) break;
    auto payload = unhex(b.at(key + "_payload"));
    const std::string want = b.at(key + "_ciphertext");
    CAPTURE(key);
    if (i < 3) {
      HandshakeState& w = i % 2 == 0 ? init : resp;
      HandshakeState& r = i % 2 == 0 ? resp : init;
      REQUIRE(w.is_my_turn());
      auto msg = w.write_message(payload);
      REQUIRE(msg.is_ok());
      CHECK(hex(*msg) == want);
      auto got = r.read_message(*msg);
      REQUIRE_MESSAGE(got.is_ok(), got.status().to_string());
      CHECK(*got == payload);
      if (i == 2) {
        REQUIRE(init.is_complete());
        REQUIRE(resp.is_complete());
        CHECK(init.handshake_hash() == resp.handshake_hash());
        CHECK(*init.remote_static() == sr.public_key);
        CHECK(*resp.remote_static() == si.public_key);
        ti = init.split();
        tr = resp.split();
      }
    } else {
      // Transport: even (i - 3) goes initiator -> responder.
      CipherState& enc = (i - 3) % 2 == 0 ? ti.send : tr.send;
      CipherState& dec = (i - 3) % 2 == 0 ? tr.recv : ti.recv;
      std::vector<uint8_t> ct(payload.size() + kTagBytes);
      auto n = enc.encrypt({}, payload, ct);
      REQUIRE(n.is_ok());
      CHECK(hex(ct) == want);
      // Decrypt in place, as the transport does.
      auto m = dec.decrypt({}, ct, ct);
      REQUIRE(m.is_ok());
      ct.resize(*m);
      CHECK(ct == payload);
    }
    ++checked;
  }
  return checked;
}

}  // namespace

TEST_CASE("flynn/noise known-answer vectors for XX and XXpsk3 match byte for byte") {
  std::ifstream in(kVectorsPath);
  REQUIRE_MESSAGE(
      in.good(), "Noise test vectors not found at ", kVectorsPath,
      ": install the package golang-github-flynn-noise-dev (tools/bootstrap does this)");
  auto blocks = read_blocks(in);
  REQUIRE(blocks.size() > 100);
  for (Cipher cipher : {Cipher::kChaChaPoly, Cipher::kAesGcm}) {
    const std::string name(cipher_name(cipher));
    CAPTURE(name);
    if (cipher == Cipher::kAesGcm && !check_cipher_available(cipher)) {
      gossip::test::skip("AESGCM vectors: " + check_cipher_available(cipher).message());
      continue;
    }
    int xx = 0, xxpsk3 = 0, messages = 0;
    for (const auto& b : blocks) {
      auto it = b.find("handshake");
      if (it == b.end()) continue;
      Pattern pattern;
      if (it->second == "Noise_XX_25519_" + name + "_SHA256") {
        pattern = Pattern::kXX;
        ++xx;
      } else if (it->second == "Noise_XXpsk3_25519_" + name + "_SHA256") {
        pattern = Pattern::kXXpsk3;
        ++xxpsk3;
      } else {
        continue;
      }
      CAPTURE(it->second);
      CAPTURE(b.count("prologue") ? b.at("prologue") : std::string("(none)"));
      messages += run_vector(b, pattern, cipher);
    }
    MESSAGE(name, ": matched ", xx, " XX vectors, ", xxpsk3, " XXpsk3 vectors, ", messages,
            " messages");
    CHECK(xx > 0);
    CHECK(xxpsk3 > 0);
    CHECK(messages >= 5 * (xx + xxpsk3));
  }
}

TEST_CASE("an AESGCM initiator and a ChaChaPoly responder fail the handshake at message 1") {
  if (auto st = check_cipher_available(Cipher::kAesGcm); !st) {
    gossip::test::skip("AESGCM / ChaChaPoly mismatch: " + st.message());
    return;
  }
  auto si = StaticKeypair::generate();
  auto sr = StaticKeypair::generate();
  SwarmKey psk = SwarmKey::generate();
  const std::vector<uint8_t> prologue(kPrologue.begin(), kPrologue.end());
  HandshakeState init(HandshakeConfig{Pattern::kXXpsk3, Role::kInitiator, &si, &psk, prologue,
                                      nullptr, Cipher::kAesGcm});
  HandshakeState resp(HandshakeConfig{Pattern::kXXpsk3, Role::kResponder, &sr, &psk, prologue,
                                      nullptr, Cipher::kChaChaPoly});
  // In XXpsk3, "e" already keys the cipher, so message 1's (empty) payload
  // carries a tag under a key derived from the protocol name: the responder
  // notices at once, before it has sent anything (a wrong swarm key shows
  // only at message 3).
  auto m1 = init.write_message({});
  REQUIRE(m1.is_ok());
  CHECK(m1->size() == 48);
  auto got = resp.read_message(*m1);
  REQUIRE_FALSE(got.is_ok());
  CHECK(got.status().code() == gossip::core::Code::kAuth);
  CHECK_FALSE(resp.is_my_turn());  // dead: no message 2 goes out
}
