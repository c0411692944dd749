// gossip-ctl against real gossip-peer processes on loopback: the numbers of
// its --json answer (step, members, each member alive, exchanges), its
// tables' columns, that its session never becomes a member and is closed
// after, and every documented failure with its exit status: another swarm
// key (5), nobody listening (3), a TCP listener that never answers the
// handshake (4), another Noise protocol (6), a peer of another version
// whose STATUS lacks protocol v1's fields (6; a real handshake and transport
// in the test), a bad HOST:PORT and a missing key file (2). One peer logs as JSON lines
// (GOSSIP_LOG_FORMAT=json), each read back with its peer.
#include "gossip/peer/ctl.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "gossip/core/peer_id.hpp"
#include "gossip/crypto/keys.hpp"
#include "gossip/crypto/noise.hpp"
#include "gossip/peer/observe.hpp"
#include "peer_process.hpp"

using namespace gossip::test;
namespace ctl = gossip::peer::ctl;

namespace {

fs::path peer_config(const fs::path& dir, const std::string& tag, int port) {
  return small_peer_config(dir, tag, port, {{"training", {{"eval", {{"every_steps", 200}}}}}});
}

struct Ctl {
  int status = -1;
  std::string out, err;
  double seconds = 0;
};

Ctl run_ctl(const fs::path& dir, const std::string& args) {
  const auto t0 = Clock::now();
  auto r = run_program("peers/gossip-ctl", args, dir, "ctl");
  return {r.status, r.out, r.err, seconds_since(t0)};
}

// A peer of another version, speaking the real handshake and transport with
// the swarm key: it answers the first message after the handshake with a
// STATUS frame whose body is `body`, then waits for the other side to close.
void serve_one_status(asio::ip::tcp::acceptor& acceptor, const fs::path& swarm_key_file,
                      const std::string& body) {
  namespace crypto = gossip::crypto;
  auto key = crypto::load_swarm_key_file(swarm_key_file);
  REQUIRE(key.is_ok());
  asio::ip::tcp::socket s = acceptor.accept();
  auto read_msg = [&] {
    uint8_t len[2];
    asio::read(s, asio::buffer(len));
    std::vector<uint8_t> m(static_cast<size_t>(len[0] << 8 | len[1]));
    asio::read(s, asio::buffer(m));
    return m;
  };
  auto write_msg = [&](const std::vector<uint8_t>& m) {
    const uint8_t len[2] = {static_cast<uint8_t>(m.size() >> 8), static_cast<uint8_t>(m.size())};
    asio::write(s, std::array<asio::const_buffer, 2>{asio::buffer(len), asio::buffer(m)});
  };
  const auto identity = crypto::StaticKeypair::generate();
  crypto::HandshakeConfig hc;
  hc.role = crypto::Role::kResponder;
  hc.local_static = &identity;
  hc.psk = &*key;
  hc.prologue = {reinterpret_cast<const uint8_t*>(crypto::kPrologue.data()),
                 crypto::kPrologue.size()};
  crypto::HandshakeState hs(hc);
  REQUIRE(hs.read_message(read_msg()).is_ok());
  write_msg(*hs.write_message({}));
  REQUIRE(hs.read_message(read_msg()).is_ok());
  auto keys = hs.split();
  (void)read_msg();  // STATUS_REQ (not decrypted: whatever it asks, this is the answer)
  std::vector<uint8_t> frame(5 + body.size());
  const uint32_t n = static_cast<uint32_t>(1 + body.size());
  frame[0] = static_cast<uint8_t>(n >> 24);
  frame[1] = static_cast<uint8_t>(n >> 16);
  frame[2] = static_cast<uint8_t>(n >> 8);
  frame[3] = static_cast<uint8_t>(n);
  frame[4] = 0x31;  // STATUS
  std::copy(body.begin(), body.end(), frame.begin() + 5);
  std::vector<uint8_t> sealed(frame.size() + 16);
  REQUIRE(keys.send.encrypt({}, frame, sealed).is_ok());
  write_msg(sealed);
  asio::error_code ec;
  uint8_t sink[256];
  while (!ec) s.read_some(asio::buffer(sink), ec);  // until gossip-ctl closes
}

}  // namespace

TEST_CASE("a peer whose STATUS lacks protocol v1's fields is another version: 6") {
  const fs::path dir = temp_dir("ctl", "version");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::string addr = "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  std::thread server([&] {
    serve_one_status(acceptor, dir / "swarm.key", R"({"peer":"x","progress":{"step":3}})");
  });
  const Ctl r = run_ctl(dir, "status " + addr + " --swarm-key " + (dir / "swarm.key").string());
  server.join();
  CHECK(r.status == ctl::kExitOtherVersion);
  CHECK(r.err == "gossip-ctl: " + addr +
                     ": the peer's STATUS lacks protocol v1's peer_id, step, members, model: it "
                     "speaks another version of the protocol\n");
  fs::remove_all(dir);
}

TEST_CASE("gossip-ctl reads two live peers: --json numbers and the tables' columns") {
  const fs::path dir = temp_dir("ctl", "live");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  const std::string id_a = make_identity(dir / "a.key");
  const std::string id_b = make_identity(dir / "b.key");
  fs::path cfg_a;
  Proc a, b;
  Reaper reaper{{&a, &b}};
  a = start_listening([&](int port) { return cfg_a = peer_config(dir, "a", port); }, dir, "a");
  const std::string addr_a = Json::parse(read_text(cfg_a))["peer"]["listen"];
  ::setenv("GOSSIP_LOG_FORMAT", "json", 1);  // b inherits it
  b = start_listening([&](int port) { return peer_config(dir, "b", port); }, dir, "b",
                      {"--join", addr_a});
  ::unsetenv("GOSSIP_LOG_FORMAT");
  const std::string key = " --swarm-key " + (dir / "swarm.key").string();

  // Until both have averaged with each other and evaluated once.
  Json s;
  const auto start = Clock::now();
  for (;;) {
    const Ctl r = run_ctl(dir, "status " + addr_a + key + " --json");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    s = Json::parse(r.out);
    if (s["members"] == 2 && s["view"].size() == 1 && s["view"][0]["exchanges"] > 0 &&
        s["test_loss"].is_number()) {
      break;
    }
    REQUIRE_MESSAGE(seconds_since(start) < 90, "no exchange within 90 s: " << r.out);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  INFO(s.dump(2));
  CHECK(s["peer_id"] == id_a);
  CHECK(s["version"] == gossip::peer::build_version());
  CHECK(s["protocol"] == 1);
  CHECK(s["listen"] == addr_a);
  CHECK(s["model"].get<std::string>().rfind("0x", 0) == 0);
  CHECK(s["wire_format"] == "fp32");
  CHECK(s["gossip"] == Json{{"mode", "params"}, {"interval_steps", 10}, {"interval_ms", 0}});
  CHECK(s["step"].get<int64_t>() > 0);
  CHECK(s["loss"].is_number());
  CHECK(s["test_accuracy"].is_null());  // regression: no accuracy
  const Json& m = s["view"][0];
  CHECK(m["id"] == id_b);
  CHECK(m["state"] == "alive");
  CHECK(m["incarnation"].get<uint64_t>() > 0);
  CHECK((m["reached"] == "direct" || m["reached"] == "unknown"));
  CHECK(m["address"].get<std::string>().rfind("127.0.0.1:", 0) == 0);
  const int64_t ok = s["exchanges"]["ok"];
  CHECK(ok >= m["exchanges"].get<int64_t>());
  CHECK(s["bytes"]["in"].get<int64_t>() > 0);
  CHECK(s["bytes"]["out"].get<int64_t>() > 0);
  CHECK(s["view_total"] == 1);

  // b sees a alive too; the ctl sessions (several by now) never became members.
  const std::string addr_b = m["address"];
  const Ctl rb = run_ctl(dir, "status " + addr_b + key + " --json");
  REQUIRE_MESSAGE(rb.status == 0, rb.err);
  const Json sb = Json::parse(rb.out);
  CHECK(sb["peer_id"] == id_b);
  CHECK(sb["members"] == 2);
  REQUIRE(sb["view"].size() == 1);
  CHECK(sb["view"][0]["id"] == id_a);
  CHECK(sb["view"][0]["state"] == "alive");
  // Each ctl session is closed after its answer: a's open sessions stay
  // those with b (at most one each way) plus the asking one.
  for (int i = 0; i < 3; ++i) REQUIRE(run_ctl(dir, "status " + addr_a + key).status == 0);
  const Json again = Json::parse(run_ctl(dir, "status " + addr_a + key + " --json").out);
  CHECK(again["members"] == 2);
  CHECK(again["view"].size() == 1);
  CHECK(again["sessions"].get<int64_t>() <= 3);

  // The tables.
  const Ctl members = run_ctl(dir, "members " + addr_a + key);
  REQUIRE_MESSAGE(members.status == 0, members.err);
  std::istringstream lines(members.out);
  std::string header, row, extra;
  std::getline(lines, header);
  std::getline(lines, row);
  CHECK_FALSE(std::getline(lines, extra));
  std::istringstream hs(header), rs(row);
  std::vector<std::string> cols, cells;
  for (std::string w; hs >> w;) cols.push_back(w);
  for (std::string w; rs >> w;) cells.push_back(w);
  CHECK(cols ==
        std::vector<std::string>{"ID", "ADDRESS", "STATE", "INCARNATION", "REACHED", "EXCHANGES"});
  REQUIRE(cells.size() == 6);
  CHECK(cells[0] == gossip::core::short_peer_id(id_b));
  CHECK(cells[1] == addr_b);
  CHECK(cells[2] == "alive");
  CHECK(std::stoll(cells[5]) > 0);
  // Columns line up: each cell starts where its header does.
  CHECK(row.find(cells[1]) == header.find("ADDRESS"));
  CHECK(row.find(cells[2], row.find(cells[1]) + cells[1].size()) == header.find("STATE"));
  const Ctl status = run_ctl(dir, "status " + addr_a + key);
  REQUIRE(status.status == 0);
  for (const char* label : {"peer ", "version ", "step ", "loss ", "members ", "exchanges ",
                            "averaging ", "bytes ", "ID "}) {
    CHECK_MESSAGE(contains("\n" + status.out, std::string("\n") + label), label);
  }
  CHECK(contains(status.out, id_a));
  CHECK(contains(status.out, "\naveraging     params every 10 steps\n"));

  ::kill(b.pid, SIGTERM);
  ::kill(a.pid, SIGTERM);
  CHECK(wait_exit(b, 60) == 0);
  CHECK(wait_exit(a, 60) == 0);
  // b's log: JSON lines only, each with its peer.
  std::istringstream log(read_text(b.err));
  int parsed = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.rfind("{", 0) != 0) continue;  // the program's own last line(s)
    const Json j = Json::parse(line);
    CHECK(j["module"].is_string());
    if (j["module"] == "swarm") CHECK(j["peer"] == gossip::core::short_peer_id(id_b));
    ++parsed;
  }
  CHECK(parsed >= 3);
  CHECK(contains(read_text(b.err),
                 "\"message\":\"peer " + gossip::core::short_peer_id(id_b) + " listening on"));
  fs::remove_all(dir);
}

TEST_CASE("gossip-ctl's failures: each names the problem and has its exit status") {
  const fs::path dir = temp_dir("ctl", "errors");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "other.key").string() +
        " >/dev/null");
  make_identity(dir / "a.key");
  fs::path cfg_a;
  Proc a;
  Reaper reaper{{&a}};
  a = start_listening([&](int port) { return cfg_a = peer_config(dir, "a", port); }, dir, "a");
  const std::string addr = Json::parse(read_text(cfg_a))["peer"]["listen"];
  const std::string key = " --swarm-key " + (dir / "swarm.key").string();

  SUBCASE("another swarm key: 5") {
    const Ctl r = run_ctl(dir, "status " + addr + " --swarm-key " + (dir / "other.key").string());
    CHECK(r.status == ctl::kExitWrongKey);
    CHECK(contains(r.err, "gossip-ctl: " + addr + ": the peer closed the connection right after"));
    CHECK(contains(r.err, "another swarm key"));
  }
  SUBCASE("nobody listening: 3") {
    const std::string nobody = "127.0.0.1:" + std::to_string(free_port());
    const Ctl r = run_ctl(dir, "status " + nobody + key);
    CHECK(r.status == ctl::kExitUnreachable);
    CHECK(contains(r.err, nobody + ": nobody reachable there"));
    CHECK(contains(r.err, "Connection refused"));
  }
  SUBCASE("a listener that never answers the handshake: 4, within --timeout") {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 4) == 0);  // the kernel accepts; nobody ever reads
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    const std::string mute = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    const Ctl r = run_ctl(dir, "status " + mute + key + " --timeout 500");
    ::close(fd);
    CHECK(r.status == ctl::kExitTimeout);
    CHECK(contains(r.err, mute + ": no answer in time: handshake not finished within 500 ms"));
    CHECK(r.seconds < 3.0);
  }
  SUBCASE("another Noise protocol (net.cipher): 6") {
    if (!gossip::crypto::check_cipher_available(gossip::crypto::Cipher::kAesGcm)) {
      MESSAGE("this CPU lacks AES-GCM: skipped");
      return;
    }
    const Ctl r = run_ctl(dir, "status " + addr + key + " --cipher aesgcm");
    CHECK(r.status == ctl::kExitOtherVersion);
    CHECK(contains(r.err, "the peer closed the connection after our first message"));
  }
  SUBCASE("bad HOST:PORT and missing key files: 2") {
    Ctl r = run_ctl(dir, "status localhost" + key);
    CHECK(r.status == ctl::kExitUsage);
    CHECK(r.err == "gossip-ctl: HOST:PORT: expected \"host:port\", got \"localhost\" (no port)\n");
    r = run_ctl(dir, "members " + addr + " --swarm-key " + (dir / "nope.key").string());
    CHECK(r.status == ctl::kExitUsage);
    CHECK(contains(r.err, "gossip-ctl: --swarm-key: "));
    CHECK(contains(r.err, "nope.key"));
    r = run_ctl(dir, "status " + addr + key + " --identity " + (dir / "nope.key").string());
    CHECK(r.status == ctl::kExitUsage);
    CHECK(contains(r.err, "gossip-ctl: --identity: "));
    r = run_ctl(dir, "status " + addr);
    CHECK(r.status == ctl::kExitUsage);
    CHECK(contains(r.err, "--swarm-key"));
  }
  SUBCASE("with --identity the session uses that key, and the peer still answers") {
    make_identity(dir / "ctl.key");
    const Ctl r = run_ctl(
        dir, "status " + addr + key + " --identity " + (dir / "ctl.key").string() + " --json");
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(Json::parse(r.out)["members"] == 1);
  }
  ::kill(a.pid, SIGTERM);
  CHECK(wait_exit(a, 60) == 0);
  fs::remove_all(dir);
}

TEST_CASE("a STATUS without protocol v1's fields is another version; added fields are optional") {
  Json out;
  auto bad = ctl::check_status(R"({"hello":1})", out);
  REQUIRE(bad);
  CHECK(bad->exit_status == ctl::kExitOtherVersion);
  CHECK(bad->message ==
        "the peer's STATUS lacks protocol v1's peer_id, step, members, model: it speaks another "
        "version of the protocol");
  bad = ctl::check_status("not json", out);
  REQUIRE(bad);
  CHECK(bad->exit_status == ctl::kExitOtherVersion);
  bad = ctl::check_status(R"({"peer_id":"x","step":-1,"members":1,"model":""})", out);
  REQUIRE(bad);
  CHECK(contains(bad->message, "lacks protocol v1's step"));
  // An older peer's answer: the four fields only. It reads, and the tables
  // say what is missing instead of failing.
  CHECK_FALSE(ctl::check_status(R"({"peer_id":"ab","step":3,"members":1,"model":"0x1"})", out));
  CHECK(contains(ctl::format_status(out), "exchanges     -"));
  CHECK(contains(ctl::format_members(out), "no member list"));
  CHECK(contains(ctl::format_status(out), "averaging     -\n"));
  // The averaging line of an outer-mode peer.
  CHECK_FALSE(ctl::check_status(
      R"({"peer_id":"ab","step":3,"members":1,"model":"0x1","gossip":{"mode":"outer",)"
      R"("outer":{"steps":400,"lr":0.7,"momentum":0.9,"syncs":12}}})",
      out));
  CHECK(contains(ctl::format_status(out),
                 "\naveraging     outer H 400, lr 0.7, momentum 0.9, 12 syncs\n"));
}
