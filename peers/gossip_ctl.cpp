// gossip-ctl: asks a running peer how it and its swarm are doing, over a
// Noise session of the swarm (thin main; logic in src/peer/ctl.cpp).
#include <cstdio>
#include <iostream>
#include <string>

#include "gossip/cli/program.hpp"
#include "gossip/peer/ctl.hpp"

int main(int argc, char** argv) {
  using namespace gossip;
  namespace ctl = peer::ctl;
  cli::Program program("gossip-ctl",
                       {"gossip-ctl status HOST:PORT --swarm-key FILE [--json] [--timeout MS]",
                        "gossip-ctl members HOST:PORT --swarm-key FILE [--json] [--timeout MS]"},
                       "Asks a running peer for its STATUS over a Noise session of its swarm: the\n"
                       "peer, its step, loss, exchanges and bytes (status), or its view of the\n"
                       "members and how each is reached (members). The session uses a fresh\n"
                       "identity unless --identity is given; it is never a swarm member.\n");
  program.app().footer(
      "exit status:\n"
      "  0  the peer answered\n"
      "  1  another failure\n"
      "  2  bad usage, a bad HOST:PORT, or a key file that cannot be used\n"
      "  3  nobody listening at HOST:PORT (connection refused), or no such host\n"
      "  4  timeout: no handshake or no STATUS within --timeout\n"
      "  5  the peer closed the session right after the handshake: another swarm key\n"
      "  6  the peer speaks another protocol: another wire version or net.cipher\n"
      "     (the handshake fails at its first message), or a STATUS without\n"
      "     protocol v1's fields");
  ctl::QueryOptions options;
  bool json = false;
  int64_t timeout_ms = 5000;
  std::string cipher = "chachapoly";
  auto* status = program.add_command("status", "the peer, its training and its exchanges");
  auto* members = program.add_command("members", "the peer's view of the members, as a table");
  for (auto* command : {status, members}) {
    command->add_option("HOST:PORT", options.target, "the peer to ask")->type_name("")->required();
    command->add_option("--swarm-key", options.swarm_key_file, "the swarm key file")
        ->type_name("FILE")
        ->required();
    command
        ->add_option("--identity", options.identity_file,
                     "identity key file (default: a new key for this run)")
        ->type_name("FILE");
    command->add_flag("--json", json, "print the STATUS as one JSON object");
    command->add_option("--timeout", timeout_ms, "milliseconds for connect, handshake and answer")
        ->type_name("MS")
        ->check(CLI::Range(int64_t{1}, int64_t{600000}));
    command->add_option("--cipher", cipher, "the swarm's net.cipher")
        ->type_name("chachapoly|aesgcm")
        ->check(CLI::IsMember({"chachapoly", "aesgcm"}));
  }
  program.app().require_subcommand(0, 1);
  if (auto st = program.parse(argc, argv)) return *st;
  if (program.app().get_subcommands().empty()) {
    return program.usage_error("missing command: status or members");
  }
  options.timeout = std::chrono::milliseconds(timeout_ms);
  options.cipher = cipher == "aesgcm" ? crypto::Cipher::kAesGcm : crypto::Cipher::kChaChaPoly;
  const ctl::Answer answer = ctl::query(options);
  if (answer.failure) return program.fail(answer.failure->message, answer.failure->exit_status);
  if (json) {
    std::cout << answer.status->dump() << std::endl;
  } else if (status->parsed()) {
    std::cout << ctl::format_status(*answer.status) << std::flush;
  } else {
    std::cout << ctl::format_members(*answer.status) << std::flush;
  }
  return ctl::kExitOk;
}
