// gossip-ctl's logic (include/gossip/peer/ctl.hpp): one Node of its own on a
// private io_context, one dial, one STATUS_REQ, each failure mapped to an
// exit status that says what to check.
#include "gossip/peer/ctl.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <cstdio>

#include "gossip/core/endpoint.hpp"
#include "gossip/core/peer_id.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/net/node.hpp"

namespace gossip::peer::ctl {
namespace {

Failure fail(int exit_status, std::string message) {
  return {exit_status, std::move(message)};
}

// A dial that failed: what it most likely means.
Failure dial_failure(const std::string& target, const core::Status& st) {
  switch (st.code()) {
    case core::Code::kUnavailable:
      return fail(kExitUnreachable, target + ": nobody reachable there (" + st.message() +
                                        "): is the peer running and listening at this address?");
    case core::Code::kTimeout:
      return fail(kExitTimeout, target + ": no answer in time: " + st.message());
    case core::Code::kClosed:
      return fail(kExitOtherVersion, target + ": " + st.message());
    default:
      return fail(kExitFailure, target + ": " + st.to_string());
  }
}

std::string text_or(const nlohmann::json& j, const char* key, const std::string& none = "-") {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return none;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string number_or(const nlohmann::json& j, const char* key, const char* fmt) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, it->get<double>());
  return buf;
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

// "params every 10 steps", "outer H 400, lr 0.7, momentum 0.9, 12 syncs", or
// "-" for a peer that does not say (an older version).
std::string format_averaging(const nlohmann::json& s) {
  const auto it = s.find("gossip");
  if (it == s.end() || !it->is_object()) return "-";
  const auto& g = *it;
  const std::string mode = text_or(g, "mode");
  if (mode == "outer" && g.contains("outer") && g["outer"].is_object()) {
    const auto& o = g["outer"];
    return "outer H " + text_or(o, "steps") + ", lr " + number_or(o, "lr", "%g") + ", momentum " +
           number_or(o, "momentum", "%g") + ", " + text_or(o, "syncs") + " syncs";
  }
  if (mode == "params") {
    const auto ms = g.find("interval_ms");
    if (ms != g.end() && ms->is_number() && ms->get<double>() > 0) {
      return "params every " + text_or(g, "interval_ms") + " ms";
    }
    return "params every " + text_or(g, "interval_steps") + " steps";
  }
  return mode;
}

}  // namespace

std::optional<Failure> check_status(const std::string& body, nlohmann::json& out) {
  out = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!out.is_object()) {
    return fail(kExitOtherVersion,
                "the peer's STATUS is not a JSON object: it speaks another version of the "
                "protocol");
  }
  std::string missing;
  auto need = [&](const char* key, bool ok) {
    if (!ok) missing += std::string(missing.empty() ? "" : ", ") + key;
  };
  need("peer_id", out.contains("peer_id") && out["peer_id"].is_string());
  need("step", out.contains("step") && out["step"].is_number_unsigned());
  need("members", out.contains("members") && out["members"].is_number_unsigned());
  need("model", out.contains("model") && out["model"].is_string());
  if (!missing.empty()) {
    return fail(kExitOtherVersion, "the peer's STATUS lacks protocol v1's " + missing +
                                       ": it speaks another version of the protocol");
  }
  return std::nullopt;
}

Answer query(const QueryOptions& o) {
  auto endpoint = core::parse_endpoint(o.target);
  if (!endpoint) {
    return {std::nullopt, fail(kExitUsage, "HOST:PORT: " + endpoint.status().message())};
  }
  auto swarm_key = crypto::load_swarm_key_file(o.swarm_key_file);
  if (!swarm_key) {
    return {std::nullopt, fail(kExitUsage, "--swarm-key: " + swarm_key.status().message())};
  }
  std::optional<crypto::StaticKeypair> identity;
  if (o.identity_file.empty()) {
    identity.emplace(crypto::StaticKeypair::generate());
  } else {
    auto loaded = crypto::load_identity_file(o.identity_file);
    if (!loaded) {
      return {std::nullopt, fail(kExitUsage, "--identity: " + loaded.status().message())};
    }
    identity.emplace(std::move(*loaded));
  }
  net::NetConfig config;
  config.handshake_timeout = o.timeout;
  config.cipher = o.cipher;
  if (auto st = crypto::check_cipher_available(o.cipher); !st) {
    return {std::nullopt, fail(kExitUsage, "--cipher: " + st.message())};
  }
  asio::io_context io;
  net::Node node(io, config, std::move(*identity), std::move(*swarm_key));
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  const std::string target = o.target;
  auto work = [&]() -> asio::awaitable<Answer> {
    auto session = co_await node.dial(*endpoint);
    if (!session) co_return Answer{std::nullopt, dial_failure(target, session.status())};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto body = co_await (*session)->query_status(std::max(left, std::chrono::milliseconds(1)));
    (*session)->close(core::Status::ok());
    if (!body) {
      if (body.status().code() == core::Code::kTimeout) {
        co_return Answer{std::nullopt,
                         fail(kExitTimeout, target + ": no STATUS within " +
                                                std::to_string(o.timeout.count()) + " ms")};
      }
      co_return Answer{
          std::nullopt,
          fail(kExitWrongKey, target +
                                  ": the peer closed the connection right after the handshake (" +
                                  body.status().message() +
                                  "): it most likely holds another swarm key than --swarm-key")};
    }
    nlohmann::json status;
    if (auto bad = check_status(*body, status)) {
      bad->message = target + ": " + bad->message;
      co_return Answer{std::nullopt, std::move(bad)};
    }
    co_return Answer{std::move(status), std::nullopt};
  };
  auto future = asio::co_spawn(io, work(), asio::use_future);
  io.run_until(std::chrono::steady_clock::now() + o.timeout + std::chrono::seconds(2));
  node.close();
  io.restart();
  io.run_for(std::chrono::milliseconds(200));  // let the session close on its strand
  if (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    return {std::nullopt, fail(kExitTimeout, target + ": no answer within " +
                                                 std::to_string(o.timeout.count()) + " ms")};
  }
  return future.get();
}

std::string format_status(const nlohmann::json& s) {
  std::string out;
  auto line = [&](const char* key, const std::string& value) {
    out += pad(key, 14) + value + "\n";
  };
  line("peer", text_or(s, "peer_id"));
  line("version", text_or(s, "version") + " (protocol " + text_or(s, "protocol", "1") + ")");
  line("listen", text_or(s, "listen"));
  line("model", text_or(s, "model") + "  wire " + text_or(s, "wire_format"));
  line("step", text_or(s, "step"));
  line("loss", number_or(s, "loss", "%.4f"));
  line("test", "loss " + number_or(s, "test_loss", "%.4f") + "  accuracy " +
                   number_or(s, "test_accuracy", "%.4f"));
  line("members", text_or(s, "members") + " alive (this peer included)");
  if (s.contains("exchanges") && s["exchanges"].is_object()) {
    const auto& e = s["exchanges"];
    line("exchanges", text_or(e, "ok") + " ok / " + text_or(e, "busy") + " busy / " +
                          text_or(e, "failed") + " failed");
  } else {
    line("exchanges", "-");
  }
  line("averaging", format_averaging(s));
  if (s.contains("bytes") && s["bytes"].is_object()) {
    line("bytes", "in " + text_or(s["bytes"], "in") + "  out " + text_or(s["bytes"], "out"));
  } else {
    line("bytes", "-");
  }
  if (s.contains("view") && s["view"].is_array()) {
    out += "\n" + format_members(s);
  }
  return out;
}

std::string format_members(const nlohmann::json& s) {
  const char* header[] = {"ID", "ADDRESS", "STATE", "INCARNATION", "REACHED", "EXCHANGES"};
  std::vector<std::vector<std::string>> rows;
  rows.push_back({header, header + 6});
  if (s.contains("view") && s["view"].is_array()) {
    for (const auto& m : s["view"]) {
      rows.push_back({core::short_peer_id(text_or(m, "id")), text_or(m, "address"),
                      text_or(m, "state"), text_or(m, "incarnation"), text_or(m, "reached"),
                      text_or(m, "exchanges")});
    }
  }
  std::vector<size_t> width(6, 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < 6; ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < 6; ++i) line += i + 1 < 6 ? pad(r[i], width[i] + 2) : r[i];
    out += line + "\n";
  }
  if (!s.contains("view")) out += "(this peer's STATUS has no member list: an older version)\n";
  return out;
}

}  // namespace gossip::peer::ctl
