// gossip-keygen: creates the key files a peer needs. An identity is a static
// X25519 key pair (its public half, in hex, is the peer id); a swarm key is
// 32 random bytes shared by every member (the Noise PSK). Files are created
// 0600 and never overwritten; secrets are never printed.
//
// Exit status (cli::Program): 0 done, 1 the operation failed (e.g. the file
// exists), 2 bad usage (one line saying why on stderr).
#include <cstdio>
#include <exception>
#include <string>

#include "gossip/cli/program.hpp"
#include "gossip/crypto/keys.hpp"

int main(int argc, char** argv) {
  using namespace gossip;
  using namespace gossip::crypto;
  cli::Program program("gossip-keygen",
                       {"gossip-keygen identity --out FILE", "gossip-keygen swarm --out FILE",
                        "gossip-keygen peer-id FILE"},
                       "Writes the key files a peer needs, or prints the peer id of one.\n"
                       "Key files are created with mode 0600 and never overwritten; a key file "
                       "that\ngroup or others can access is refused when loaded. The peer id is "
                       "the\nlowercase hex of the identity's public key.");
  auto& app = program.app();
  std::string out, identity_file;
  auto* identity = program.add_command("identity", "write a new static X25519 key pair");
  auto* swarm = program.add_command("swarm", "write a new random 32-byte swarm key");
  for (auto* command : {identity, swarm}) {
    command->add_option("-o,--out", out, "the file to write")
        ->type_name("FILE")
        ->required()
        ->multi_option_policy(CLI::MultiOptionPolicy::Throw);
  }
  auto* id = program.add_command("peer-id", "print the peer id of an identity file");
  id->add_option("FILE", identity_file, "the identity file")->type_name("")->required();
  auto* help = app.add_subcommand("help")->group("");  // as --help; not listed
  app.require_subcommand(0, 1);
  if (auto status = program.parse(argc, argv)) return *status;
  if (help->parsed()) {
    std::fputs(program.help().c_str(), stdout);
    return cli::kExitOk;
  }
  if (app.get_subcommands().empty()) {
    return program.usage_error("missing command: identity, swarm or peer-id");
  }

  try {
    if (identity->parsed()) {
      auto keys = StaticKeypair::generate();
      if (auto st = write_identity_file(out, keys); !st) return program.fail(st.to_string());
      std::printf("wrote identity %s\npeer id: %s\n", out.c_str(),
                  peer_id(keys.public_key).c_str());
    } else if (swarm->parsed()) {
      auto key = SwarmKey::generate();
      if (auto st = write_swarm_key_file(out, key); !st) return program.fail(st.to_string());
      std::printf("wrote swarm key %s (give it, over a secure channel, to every peer)\n",
                  out.c_str());
    } else {
      auto keys = load_identity_file(identity_file);
      if (!keys) return program.fail(keys.status().to_string());
      std::printf("%s\n", peer_id(keys->public_key).c_str());
    }
  } catch (const std::exception& e) {
    return program.fail(std::string("fatal: ") + e.what());
  }
  return cli::kExitOk;
}
