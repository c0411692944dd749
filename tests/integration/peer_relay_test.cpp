// Three real gossip-peer processes on loopback: a public member R and two
// private peers A and B whose advertised addresses nobody listens on
// (peer.advertise 127.0.0.1:1, net.relay.reserve). Punching is off, so A
// and B can only average through R's relay: A's STATUS says B is reached
// "relayed" with exchanges above zero, and R's STATUS counts the bytes.
#include <doctest/doctest.h>
#include <signal.h>

#include "peer_process.hpp"

using namespace gossip::test;

namespace {

fs::path relay_config(const fs::path& dir, const std::string& tag, int port, bool private_peer) {
  Json changes = {{"net", {{"punch", {{"enabled", false}}}}}};
  if (private_peer) {
    changes["peer"]["advertise"] = "127.0.0.1:1";  // truly undialable
    changes["net"]["relay"] = {{"reserve", true}};
  }
  return small_peer_config(dir, tag, port, changes);
}

Json status(const fs::path& dir, const std::string& addr) {
  auto r = run_program(
      "peers/gossip-ctl",
      "status " + addr + " --swarm-key " + (dir / "swarm.key").string() + " --json", dir, "ctl");
  REQUIRE_MESSAGE(r.status == 0, r.err);
  return Json::parse(r.out);
}

}  // namespace

TEST_CASE("two private peers average through a public member's relay") {
  const fs::path dir = temp_dir("relay", "peer");
  shell(build_root() + "/tools/gossip-keygen swarm --out " + (dir / "swarm.key").string() +
        " >/dev/null");
  make_identity(dir / "r.key");
  make_identity(dir / "a.key");
  const std::string id_b = make_identity(dir / "b.key");
  fs::path cfg_r;
  Proc r, a, b;
  Reaper reaper{{&r, &a, &b}};
  r = start_listening([&](int port) { return cfg_r = relay_config(dir, "r", port, false); }, dir,
                      "r");
  const std::string addr_r = Json::parse(read_text(cfg_r))["peer"]["listen"];
  fs::path cfg_a;
  a = start_listening([&](int port) { return cfg_a = relay_config(dir, "a", port, true); }, dir,
                      "a", {"--join", addr_r});
  const std::string addr_a = Json::parse(read_text(cfg_a))["peer"]["listen"];
  fs::path cfg_b;
  b = start_listening([&](int port) { return cfg_b = relay_config(dir, "b", port, true); }, dir,
                      "b", {"--join", addr_r});
  const std::string addr_b = Json::parse(read_text(cfg_b))["peer"]["listen"];

  const auto start = Clock::now();
  Json sa;
  for (;;) {
    sa = status(dir, addr_a);
    bool done = false;
    for (const auto& m : sa["view"]) {
      if (m["id"] == id_b && m["reached"] == "relayed" && m["exchanges"].get<int64_t>() > 0) {
        done = true;
      }
    }
    if (done) break;
    REQUIRE_MESSAGE(seconds_since(start) < 90, "no relayed exchange within 90 s: "
                                                   << sa.dump(2) << "\nb: " << read_text(b.err));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  MESSAGE("first relayed exchange after " << seconds_since(start) << " s");
  INFO(sa.dump(2));
  // Whichever side dialed opened the circuit (the other answered it).
  const Json sb = status(dir, addr_b);
  CHECK(sa["paths"]["relayed_ok"].get<int64_t>() + sb["paths"]["relayed_ok"].get<int64_t>() > 0);
  const Json sr = status(dir, addr_r);
  INFO(sr.dump(2));
  CHECK(sr["relay"]["reservations"] == 2);
  CHECK(sr["relay"]["circuits_opened"].get<int64_t>() > 0);
  // At least one snapshot each way went through: 10*16+16+16+1 floats, 4 bytes each.
  CHECK(sr["relay"]["bytes"].get<int64_t>() > 2 * 193 * 4);
  for (const Proc* p : {&r, &a, &b}) ::kill(p->pid, SIGTERM);
  for (const Proc* p : {&r, &a, &b}) CHECK(wait_exit(*p, 60) == 0);
  fs::remove_all(dir);
}
