// Key files on a real filesystem: round trips, 0600 creation, refusal of
// group/other-readable files, wrong kind, damaged bodies, mismatched key
// pairs, no overwriting; and that no error message carries key material.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gossip/crypto/keys.hpp"

using namespace gossip::crypto;
namespace fs = std::filesystem;
using gossip::core::Code;

namespace {

// A fresh directory under the system temp dir, removed at scope end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gossip-crypto-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

void write_raw(const fs::path& p, const std::string& text, mode_t mode = 0600) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string hex32(const uint8_t* b) {
  char s[65];
  sodium_bin2hex(s, sizeof s, b, 32);
  return s;
}

mode_t file_mode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("identity and swarm keys round trip through 0600 files") {
  TempDir dir;
  auto id = StaticKeypair::generate();
  auto id_path = dir.path / "node.key";
  REQUIRE(write_identity_file(id_path, id).is_ok());
  CHECK(file_mode(id_path) == 0600);
  auto loaded = load_identity_file(id_path);
  REQUIRE_MESSAGE(loaded.is_ok(), loaded.status().to_string());
  CHECK(loaded->public_key == id.public_key);
  CHECK(loaded->secret_key.equals(id.secret_key));

  // The documented text format, byte for byte.
  std::string want = "gossip-train identity v1\npublic " + peer_id(id.public_key) + "\nsecret " +
                     hex32(id.secret_key.data()) + "\n";
  CHECK(read_all(id_path) == want);

  auto swarm = SwarmKey::generate();
  auto swarm_path = dir.path / "swarm.key";
  REQUIRE(write_swarm_key_file(swarm_path, swarm).is_ok());
  CHECK(file_mode(swarm_path) == 0600);
  auto swarm_loaded = load_swarm_key_file(swarm_path);
  REQUIRE(swarm_loaded.is_ok());
  CHECK(swarm_loaded->key.equals(swarm.key));
  CHECK(read_all(swarm_path) == "gossip-train swarm-key v1\nkey " + hex32(swarm.key.data()) + "\n");

  // Two generated keys differ (the RNG is wired up).
  CHECK_FALSE(SwarmKey::generate().key.equals(swarm.key));
  CHECK(StaticKeypair::generate().public_key != id.public_key);
}

TEST_CASE("a key file readable by group or others is refused with a fix in the message") {
  TempDir dir;
  auto swarm = SwarmKey::generate();
  auto p = dir.path / "swarm.key";
  REQUIRE(write_swarm_key_file(p, swarm).is_ok());
  for (mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    CAPTURE(mode);
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    auto r = load_swarm_key_file(p);
    REQUIRE_FALSE(r.is_ok());
    const std::string& m = r.status().message();
    CHECK(m.find(p.string()) != std::string::npos);
    CHECK(m.find("too open") != std::string::npos);
    CHECK(m.find("chmod 600") != std::string::npos);
  }
  REQUIRE(::chmod(p.c_str(), 0644) == 0);
  CHECK(load_swarm_key_file(p).status().message().find("permissions 0644") != std::string::npos);
  REQUIRE(::chmod(p.c_str(), 0400) == 0);
  CHECK(load_swarm_key_file(p).is_ok());
}

TEST_CASE("loading a file of the wrong kind names the kind it is") {
  TempDir dir;
  auto id_path = dir.path / "id.key";
  auto swarm_path = dir.path / "swarm.key";
  REQUIRE(write_identity_file(id_path, StaticKeypair::generate()).is_ok());
  REQUIRE(write_swarm_key_file(swarm_path, SwarmKey::generate()).is_ok());

  auto a = load_swarm_key_file(id_path);
  REQUIRE_FALSE(a.is_ok());
  CHECK(a.status().message() ==
        id_path.string() + ": is an identity key file, not a swarm key file");
  auto b = load_identity_file(swarm_path);
  REQUIRE_FALSE(b.is_ok());
  CHECK(b.status().message() ==
        swarm_path.string() + ": is a swarm key file, not an identity key file");

  auto other = dir.path / "notes.txt";
  write_raw(other, "deadbeef secret stuff\n");
  auto c = load_identity_file(other);
  REQUIRE_FALSE(c.is_ok());
  CHECK(c.status().code() == Code::kCorrupt);
  CHECK(c.status().message().find("deadbeef") == std::string::npos);  // never echoes content

  auto missing = load_identity_file(dir.path / "nope.key");
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK(missing.status().message().find("nope.key") != std::string::npos);
}

TEST_CASE("damaged key files fail with the file, the line and the problem, never the secret") {
  TempDir dir;
  auto id = StaticKeypair::generate();
  const std::string pub = peer_id(id.public_key);
  const std::string sec = hex32(id.secret_key.data());
  auto p = dir.path / "id.key";

  struct Case {
    std::string text;
    std::string expect;
  };
  std::string bad_sec = sec;
  bad_sec[10] = 'z';
  const Case cases[] = {
      {"gossip-train identity v1\npublic " + pub + "\nsecret " + bad_sec + "\n",
       "line 3: damaged 'secret' value"},
      {"gossip-train identity v1\npublic " + pub + "\nsecret " + sec.substr(0, 62) + "\n",
       "line 3: damaged 'secret' value"},
      {"gossip-train identity v1\npublic " + pub + "\n", "truncated: missing 'secret' line"},
      {"gossip-train identity v1\npub " + pub + "\nsecret " + sec + "\n",
       "line 2: expected 'public"},
      {"gossip-train identity v1\npublic " + pub + "\nsecret " + sec + "\nextra\n",
       "line 4: unexpected extra content"},
      {"", "empty file"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.expect);
    write_raw(p, c.text);
    auto r = load_identity_file(p);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kCorrupt);
    const std::string& m = r.status().message();
    CHECK(m.rfind(p.string() + ": ", 0) == 0);
    CHECK(m.find(c.expect) != std::string::npos);
    CHECK(m.find(sec.substr(0, 16)) == std::string::npos);
    CHECK(m.find(bad_sec.substr(0, 16)) == std::string::npos);
  }

  // CRLF line ends and trailing blank lines are tolerated.
  write_raw(p, "gossip-train identity v1\r\npublic " + pub + "\r\nsecret " + sec + "\r\n\n");
  CHECK(load_identity_file(p).is_ok());
}

TEST_CASE("an identity whose public key does not match its secret is refused") {
  TempDir dir;
  auto a = StaticKeypair::generate();
  auto b = StaticKeypair::generate();
  auto p = dir.path / "id.key";
  write_raw(p, "gossip-train identity v1\npublic " + peer_id(b.public_key) + "\nsecret " +
                   hex32(a.secret_key.data()) + "\n");
  auto r = load_identity_file(p);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kCorrupt);
  CHECK(r.status().message().find("does not match the secret key") != std::string::npos);
}

TEST_CASE("writing never overwrites an existing file") {
  TempDir dir;
  auto p = dir.path / "swarm.key";
  auto first = SwarmKey::generate();
  REQUIRE(write_swarm_key_file(p, first).is_ok());
  const std::string before = read_all(p);
  auto r = write_swarm_key_file(p, SwarmKey::generate());
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.message().find("already exists") != std::string::npos);
  CHECK(r.message().find(p.string()) != std::string::npos);
  CHECK(read_all(p) == before);
  CHECK_FALSE(write_identity_file(p, StaticKeypair::generate()).is_ok());
  CHECK(read_all(p) == before);

  // Not through a symlink either (O_NOFOLLOW + O_EXCL).
  auto link = dir.path / "link.key";
  fs::create_symlink(dir.path / "target.key", link);
  CHECK_FALSE(write_swarm_key_file(link, first).is_ok());
  CHECK_FALSE(fs::exists(dir.path / "target.key"));
}

TEST_CASE("peer ids are the lowercase hex of the public key") {
  auto kp = StaticKeypair::generate();
  std::string id = peer_id(kp.public_key);
  CHECK(id.size() == 64);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  auto back = parse_peer_id(id);
  REQUIRE(back.is_ok());
  CHECK(*back == kp.public_key);
  CHECK_FALSE(parse_peer_id(id.substr(1)).is_ok());
  std::string bad = id;
  bad[5] = 'g';
  CHECK(parse_peer_id(bad).status().code() == Code::kInvalidArgument);
}

TEST_CASE("SecretBytes zeroes the moved-from value; from_secret derives the X25519 public key") {
  SecretBytes a;
  randombytes_buf(a.data(), a.size());
  SecretBytes copy = a;
  CHECK(copy.equals(a));
  SecretBytes b = std::move(a);
  CHECK(b.equals(copy));
  CHECK(sodium_is_zero(a.data(), a.size()) == 1);  // NOLINT(bugprone-use-after-move)

  // RFC 7748 section 6.1: Alice's key pair.
  uint8_t alice_sk[32];
  size_t len = 0;
  const char* sk_hex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
  REQUIRE(sodium_hex2bin(alice_sk, 32, sk_hex, 64, nullptr, &len, nullptr) == 0);
  auto kp = StaticKeypair::from_secret(alice_sk);
  CHECK(peer_id(kp.public_key) ==
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
}
