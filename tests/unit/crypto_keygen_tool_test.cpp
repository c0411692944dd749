// gossip-keygen as a user runs it: exit codes (0 ok, 1 failed, 2 bad usage
// with a one-line reason), 0600 files that the library loads back, no
// overwriting, and no secret on stdout or stderr.
#include <doctest/doctest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gossip/crypto/keys.hpp"

using namespace gossip::crypto;
namespace fs = std::filesystem;

namespace {

fs::path keygen_path() {
  const char* root = std::getenv("GOSSIP_BUILD_ROOT");
  fs::path p = fs::path(root ? root : ".") / "tools" / "gossip-keygen";
  REQUIRE_MESSAGE(fs::exists(p), p.string(),
                  " not built: run the tests with meson test, or build tools/gossip-keygen");
  return p;
}

struct Run {
  int code;
  std::string output;  // stdout and stderr
};

Run run(const std::string& args) {
  std::string cmd = keygen_path().string() + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  Run r{};
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string hex32(const uint8_t* b) {
  char s[65];
  sodium_bin2hex(s, sizeof s, b, 32);
  return s;
}

}  // namespace

TEST_CASE("gossip-keygen writes loadable 0600 key files and never prints secrets") {
  std::string tmpl = (fs::temp_directory_path() / "gossip-keygen-test-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const fs::path dir = tmpl;
  const std::string id = (dir / "id.key").string();
  const std::string swarm = (dir / "swarm.key").string();

  Run a = run("identity --out " + id);
  CHECK(a.code == 0);
  auto keys = load_identity_file(id);
  REQUIRE_MESSAGE(keys.is_ok(), keys.status().to_string());
  CHECK(a.output.find("peer id: " + peer_id(keys->public_key)) != std::string::npos);
  CHECK(a.output.find(hex32(keys->secret_key.data())) == std::string::npos);
  struct stat st {};
  REQUIRE(::stat(id.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);

  Run b = run("swarm --out=" + swarm);
  CHECK(b.code == 0);
  auto sk = load_swarm_key_file(swarm);
  REQUIRE(sk.is_ok());
  CHECK(b.output.find(hex32(sk->key.data())) == std::string::npos);

  Run c = run("peer-id " + id);
  CHECK(c.code == 0);
  CHECK(c.output == peer_id(keys->public_key) + "\n");

  Run again = run("identity --out " + id);  // refuses to overwrite
  CHECK(again.code == 1);
  CHECK(again.output.find("already exists") != std::string::npos);
  CHECK(load_identity_file(id)->public_key == keys->public_key);

  REQUIRE(::chmod(id.c_str(), 0644) == 0);
  Run open_perm = run("peer-id " + id);
  CHECK(open_perm.code == 1);
  CHECK(open_perm.output.find("chmod 600") != std::string::npos);

  for (const char* bad : {"", "identity", "swarm --out", "frobnicate", "identity --out a b",
                          "swarm --bogus x", "peer-id"}) {
    CAPTURE(bad);
    Run r = run(bad);
    CHECK(r.code == 2);
    // One line, saying why.
    CHECK(r.output.rfind("gossip-keygen: ", 0) == 0);
    CHECK(r.output.find('\n') == r.output.size() - 1);
  }
  Run help = run("--help");
  CHECK(help.code == 0);
  CHECK(help.output.find("gossip-keygen identity --out FILE") != std::string::npos);
  fs::remove_all(dir);
}
