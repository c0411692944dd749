// gossip-keygen: creates the key files a peer needs. An identity is a static
// X25519 key pair (its public half, in hex, is the peer id); a swarm key is
// 32 random bytes shared by every member (the Noise PSK). Files are created
// 0600 and never overwritten; secrets are never printed.
//
// Exit status: 0 done, 1 the operation failed (e.g. the file exists), 2 bad
// usage (one line saying why on stderr).
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "gossip/crypto/keys.hpp"

namespace {

constexpr const char* kUsage =
    "usage: gossip-keygen identity --out FILE   write a new static X25519 key pair\n"
    "       gossip-keygen swarm --out FILE      write a new random 32-byte swarm key\n"
    "       gossip-keygen peer-id FILE          print the peer id of an identity file\n"
    "       gossip-keygen --help\n"
    "\n"
    "Key files are created with mode 0600 and never overwritten; a key file that\n"
    "group or others can access is refused when loaded. The peer id is the\n"
    "lowercase hex of the identity's public key.\n";

int usage_error(const std::string& reason) {
  std::fprintf(stderr, "gossip-keygen: %s (see gossip-keygen --help)\n", reason.c_str());
  return 2;
}

int fail(const gossip::core::Status& status) {
  std::fprintf(stderr, "gossip-keygen: %s\n", status.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gossip::crypto;
  if (argc < 2) return usage_error("missing command: identity, swarm or peer-id");
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }

  std::string out;
  std::string positional;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--out" || arg == "-o") {
      if (i + 1 >= argc) return usage_error("--out needs a file name");
      if (!out.empty()) return usage_error("--out given twice");
      out = argv[++i];
    } else if (arg.rfind("--out=", 0) == 0) {
      if (!out.empty()) return usage_error("--out given twice");
      out = std::string(arg.substr(6));
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("unknown option '" + std::string(arg) + "'");
    } else if (positional.empty()) {
      positional = std::string(arg);
    } else {
      return usage_error("unexpected argument '" + std::string(arg) + "'");
    }
  }

  try {
    if (command == "identity" || command == "swarm") {
      if (!positional.empty()) {
        return usage_error("unexpected argument '" + positional + "' (use --out FILE)");
      }
      if (out.empty()) return usage_error(std::string(command) + " needs --out FILE");
      if (command == "identity") {
        auto keys = StaticKeypair::generate();
        auto st = write_identity_file(out, keys);
        if (!st) return fail(st);
        std::printf("wrote identity %s\npeer id: %s\n", out.c_str(),
                    peer_id(keys.public_key).c_str());
      } else {
        auto key = SwarmKey::generate();
        auto st = write_swarm_key_file(out, key);
        if (!st) return fail(st);
        std::printf("wrote swarm key %s (give it, over a secure channel, to every peer)\n",
                    out.c_str());
      }
      return 0;
    }
    if (command == "peer-id") {
      if (!out.empty()) return usage_error("peer-id takes no --out");
      if (positional.empty()) return usage_error("peer-id needs an identity FILE");
      auto keys = load_identity_file(positional);
      if (!keys) return fail(keys.status());
      std::printf("%s\n", peer_id(keys->public_key).c_str());
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gossip-keygen: fatal: %s\n", e.what());
    return 1;
  }
  return usage_error("unknown command '" + std::string(command) + "'");
}
