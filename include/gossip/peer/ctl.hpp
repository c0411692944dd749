// gossip-ctl's logic: ask one peer for its STATUS over a Noise session of its
// swarm, check the answer and print it for people (tables) or machines
// (JSON). The session holds an identity of its own (an ephemeral key unless
// one is given) and never sends JOIN, so the peer does not count it as a
// member; it is closed as soon as the answer arrived.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "gossip/crypto/noise.hpp"

namespace gossip::peer::ctl {

// Exit statuses of gossip-ctl (its --help and docs/operations.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;       // anything else that failed at run time
inline constexpr int kExitUsage = 2;         // bad usage, HOST:PORT, or a key file
inline constexpr int kExitUnreachable = 3;   // nobody listening, or no such host
inline constexpr int kExitTimeout = 4;       // no handshake or no STATUS within --timeout
inline constexpr int kExitWrongKey = 5;      // closed right after the handshake: another swarm key
inline constexpr int kExitOtherVersion = 6;  // another protocol, cipher or STATUS version

struct QueryOptions {
  std::string target;          // HOST:PORT
  std::string swarm_key_file;  // required
  std::string identity_file;   // empty: an ephemeral identity for this run
  std::chrono::milliseconds timeout{5000};
  crypto::Cipher cipher = crypto::Cipher::kChaChaPoly;
};

// A failed query: the exit status and a message naming the target and
// what to check.
struct Failure {
  int exit_status = kExitFailure;
  std::string message;
};

struct Answer {
  std::optional<nlohmann::json> status;  // a checked STATUS body
  std::optional<Failure> failure;
};

// Dials, asks for STATUS, checks it (check_status) and closes. Blocking.
Answer query(const QueryOptions& options);

// Whether `body` is a STATUS of protocol v1: a JSON object with peer_id,
// step, members and model of the right types. The fields added since are
// optional (an older peer's answer lacks them). Fails with
// kExitOtherVersion naming what is missing.
std::optional<Failure> check_status(const std::string& body, nlohmann::json& out);

// For people: the peer's summary (status) and its member table (members).
std::string format_status(const nlohmann::json& status);
std::string format_members(const nlohmann::json& status);

}  // namespace gossip::peer::ctl
