#!/usr/bin/python3
"""NAT lab scenarios (tools/netlab.py): real gossip-peer processes in network
namespaces, public members on 203.0.113.0/24 and private peers on 10.x behind
nftables masquerade routers.

    nat_lab_test.py discovery   a private peer learns its NAT address (OBSERVED) and marks
                                itself private (dial-back fails); a public joiner is
                                confirmed public; the private peer exchanges with a member
    nat_lab_test.py upnp        miniupnpd on the router: the peer asks for a mapping
                                (NAT-PMP, then UPnP-IGD) and reports the router's answer
    nat_lab_test.py keepalive   a router whose idle TCP mappings expire after 3 s: with
                                net.keepalive_ms 1000 a private peer's session to a member
                                holds 10 s; with 6000 it is lost (the check can fail)

Exit 77 (skip) with a reason only where network namespaces cannot be made.
Prints one "figure:" line per measured time.
"""

import json
import os
import subprocess
import sys
import time

SRC = os.environ.get("GOSSIP_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("GOSSIP_BUILD_ROOT", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tools"))
import netlab  # noqa: E402

PORT = 7400
PEER = os.path.join(BUILD, "peers", "gossip-peer")
CTL = os.path.join(BUILD, "peers", "gossip-ctl")
KEYGEN = os.path.join(BUILD, "tools", "gossip-keygen")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


class Swarm:
    """Keys, configs and peers of one scenario inside `lab`."""

    def __init__(self, lab):
        self.lab = lab
        self.dir = lab.dir
        self.swarm_key = os.path.join(self.dir, "swarm.key")
        netlab.run([KEYGEN, "swarm", "--out", self.swarm_key])
        self.procs = {}
        self.addr = {}

    def start(self, role, ip, bootstrap=None, net=None, membership=None, gossip_every=20):
        key = os.path.join(self.dir, role + ".key")
        netlab.run([KEYGEN, "identity", "--out", key])
        peer = {"listen": "%s:%d" % (ip, PORT), "identity_key": key,
                "swarm_key": self.swarm_key, "data_dir": os.path.join(self.dir, role)}
        if bootstrap:
            peer["bootstrap"] = bootstrap
        cfg = {
            "peer": peer,
            "model": {"layers": [10, 8, 1], "loss": "mse", "activation": "tanh"},
            "optimizer": {"type": "sgd", "lr": 0.01},
            "data": {"dataset": {"type": "synthetic_regression"}, "batch": 16},
            "training": {"device": "cpu", "eval": {"every_epochs": 0}},
            "gossip": {"interval_steps": gossip_every},
            "checkpoint": {"every_steps": 0},
            "metrics": {"every_steps": 0},
        }
        if net:
            cfg["net"] = net
        if membership:
            cfg["membership"] = membership
        path = os.path.join(self.dir, role + ".json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.addr[role] = "%s:%d" % (ip, PORT)
        self.procs[role] = self.lab.spawn(role_ns(role), [PEER, "--config", path], role,
                                          env={"GOSSIP_LOG": "info"})
        return self.procs[role]

    def status(self, role, asker=None):
        """STATUS of `role`, asked from namespace `asker` (default: the peer's own)."""
        r = self.lab.exec(asker or role_ns(role),
                          [CTL, "status", self.addr[role], "--swarm-key", self.swarm_key,
                           "--json", "--timeout", "2000"], check=False, timeout=10)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def alive(self, role):
        p = self.procs[role]
        if p.poll() is not None:
            fail("%s exited (%s):\n%s" % (role, p.returncode, self.lab.log(role)[-3000:]))


def role_ns(role):
    return role.split(".")[0]


def reach_of(status):
    return (status or {}).get("reach") or {}


def view_entry(status, peer_id):
    for m in (status or {}).get("view", []):
        if m["id"] == peer_id:
            return m
    return None


def wait(swarm, roles, predicate, what, timeout_s):
    """Polls predicate() (every 0.2 s, bounded) while checking that `roles` still run."""
    def check():
        for r in roles:
            swarm.alive(r)
        return predicate()
    try:
        return netlab.wait_until(check, what, timeout_s, poll_s=0.2)
    except netlab.LabError as e:
        for r in roles:
            print("--- %s log (tail) ---\n%s" % (r, swarm.lab.log(r)[-2500:]))
        fail(str(e))


def scenario_discovery():
    with netlab.Lab(members=2, lans=2, hosts=1) as lab:
        s = Swarm(lab)
        m0 = netlab.Lab.member_ip(0)
        seed = ["%s:%d" % (m0, PORT)]
        s.start("m0", m0)
        wait(s, ["m0"], lambda: s.status("m0"), "m0 to answer STATUS", 15)
        t0 = time.monotonic()
        s.start("m1", netlab.Lab.member_ip(1), bootstrap=seed)
        s.start("h10", netlab.Lab.host_ip(1, 0), bootstrap=seed)
        s.start("h20", netlab.Lab.host_ip(2, 0), bootstrap=seed)
        roles = ["m0", "m1", "h10", "h20"]

        # The public joiner: confirmed public at its own address.
        st = wait(s, roles, lambda: (lambda x: x if reach_of(x).get("state") == "public" else
                                     None)(s.status("m1")), "m1 confirmed public", 20)
        t_pub = time.monotonic() - t0
        r = reach_of(st)
        if r["address"] != s.addr["m1"] or r["observed"].split(":")[0] != netlab.Lab.member_ip(1):
            fail("m1's reach: %s" % r)
        print("figure: public joiner m1 confirmed public at %s %.2f s after start "
              "(dial-back by %s)" % (r["address"], t_pub, r["confirmed_by"][:8]))

        # The private peers: they learn their NAT's address and mark themselves private.
        for j, role in ((1, "h10"), (2, "h20")):
            st = wait(s, roles, lambda: (lambda x: x if reach_of(x).get("state") == "private"
                                         else None)(s.status(role)),
                      role + " marked private", 20)
            t_priv = time.monotonic() - t0
            r = reach_of(st)
            if not r["observed"] or r["observed"].split(":")[0] != netlab.Lab.router_wan_ip(j):
                fail("%s did not learn its NAT's public address: %s" % (role, r))
            if r["address"] != s.addr[role] or not r["last_failure"]:
                fail("%s advertises an unconfirmed address or no failure reason: %s" % (role, r))
            print("figure: %s learned its public address %s and marked itself private %.2f s "
                  "after start (why: %s)" % (role, r["observed"], t_priv, r["last_failure"]))
        ids = {role: wait(s, roles, lambda: s.status(role), role + "'s STATUS", 10)["peer_id"]
               for role in ("h10", "h20", "m1")}

        # The members see the flag, and the private peer exchanges with a public member.
        def m0_sees_private():
            st = s.status("m0")
            e = [view_entry(st, ids[r]) for r in ("h10", "h20")]
            return st if all(x and x["private"] and x["state"] == "alive" for x in e) else None
        wait(s, roles, m0_sees_private, "m0 to see h10 and h20 as private and alive", 20)
        pub = view_entry(wait(s, roles, lambda: s.status("m0"), "m0's STATUS", 10), ids["m1"])
        if pub is None or pub["private"]:
            fail("m0 sees the public m1 as private: %s" % pub)

        def h10_exchanged():
            st = s.status("h10")
            for m in (st or {}).get("view", []):
                if m["exchanges"] > 0 and not m["private"]:
                    return m
            return None
        m = wait(s, roles, h10_exchanged, "h10 to exchange with a public member", 30)
        print("figure: h10 (private) did its first exchange with public %s over a %s path "
              "%.2f s after start" % (m["address"], m["reached"], time.monotonic() - t0))
        for role in roles:
            s.alive(role)
        # Nobody was dialed at a private address: the private peers' members never tried.
        st = wait(s, roles, lambda: s.status("h10"), "h10's STATUS", 10)
        if st["reach"]["dialbacks_refused"] != 0:
            fail("h10 refused dial-backs: %s" % st["reach"])
    print("discovery: ok")


def scenario_upnp():
    with netlab.Lab(members=1, lans=1, hosts=1) as lab:
        upnpd = lab.start_miniupnpd(1)
        netlab.wait_until(lambda: "Listening for NAT-PMP" in lab.log("miniupnpd-r1"),
                          "miniupnpd to start", 10)
        s = Swarm(lab)
        m0 = netlab.Lab.member_ip(0)
        s.start("m0", m0)
        wait(s, ["m0"], lambda: s.status("m0"), "m0 to answer STATUS", 15)
        t0 = time.monotonic()
        s.start("h10", netlab.Lab.host_ip(1, 0), bootstrap=["%s:%d" % (m0, PORT)])

        def mapping_line():
            for line in lab.log("h10").splitlines():
                if "port mapping:" in line:
                    return line
            return None
        line = wait(s, ["m0", "h10"], mapping_line, "h10's port mapping outcome", 20)
        print("figure: h10's port mapping outcome after %.2f s: %s"
              % (time.monotonic() - t0, line.strip()))
        ruleset = lab.nft_ruleset(1)
        daemon = lab.log("miniupnpd-r1")
        if "forwards" in line:
            # The mapping exists on the router, and a public member dials through it.
            if "dport %d" % PORT not in ruleset:
                fail("h10 reports a mapping the router's ruleset lacks:\n" + ruleset)
            st = wait(s, ["m0", "h10"], lambda: (lambda x: x if reach_of(x).get("state") ==
                                                 "public" else None)(s.status("h10")),
                      "h10 public through its mapping", 20)
            print("figure: h10 confirmed public through the mapping %s %.2f s after start"
                  % (reach_of(st)["address"], time.monotonic() - t0))
        else:
            # Debian's miniupnpd 2.3.1 refuses to forward anything when its WAN
            # address is in a reserved range, and the lab may only use the
            # documentation ranges: the peer must say so and carry on, private.
            if "Port forwarding is impossible" not in daemon:
                fail("no mapping, yet miniupnpd did not refuse port forwarding:\n" + daemon +
                     "\npeer: " + line)
            if "NAT-PMP" not in line or "UPnP-IGD" not in line:
                fail("the failure does not name both protocols: " + line)
            if ("dport %d" % PORT) in ruleset:
                fail("the router holds a mapping the peer does not know of:\n" + ruleset)
            wait(s, ["m0", "h10"], lambda: reach_of(s.status("h10")).get("state") == "private",
                 "h10 private after the refused mapping", 20)
            print("note: miniupnpd refused: " + [x for x in daemon.splitlines()
                                                  if "impossible" in x][0].strip())
        if upnpd.poll() is not None:
            fail("miniupnpd exited: " + daemon)
    print("upnp: ok")


def keepalive_holds(keepalive_ms, ct, hold_s):
    """Whether the session a private peer opened to a member survives `hold_s` seconds
    behind a router whose idle established TCP mappings expire after `ct` seconds.

    Membership probes every 30 s and no averaging runs, so only the session
    keep-alive crosses the NAT meanwhile. The router is strict (nf_conntrack_tcp_loose 0): a packet of
    a forgotten connection is not picked up again, so the member's next packet
    meets a reset. Returns (held, seconds until the member lost the session).
    """
    with netlab.Lab(members=1, lans=1, hosts=1, conntrack_tcp_established_s=ct) as lab:
        lab.exec("r1", ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"])
        s = Swarm(lab)
        m0 = netlab.Lab.member_ip(0)
        quiet = {"probe_interval_ms": 30000, "probe_timeout_ms": 5000,
                 "sync_interval_ms": 60000}
        net = {"keepalive_ms": keepalive_ms, "port_mapping": False}
        # No averaging either: exchanges would keep the session busy.
        s.start("m0", m0, membership=quiet, net=net, gossip_every=10**9)
        wait(s, ["m0"], lambda: s.status("m0"), "m0 to answer STATUS", 15)
        s.start("h10", netlab.Lab.host_ip(1, 0), bootstrap=["%s:%d" % (m0, PORT)],
                membership=quiet, net=net, gossip_every=10**9)
        h10_id = wait(s, ["m0", "h10"], lambda: s.status("h10"), "h10 to answer STATUS",
                      15)["peer_id"]

        def m0_direct():
            e = view_entry(s.status("m0"), h10_id)
            return e if e and e["reached"] == "direct" else None
        wait(s, ["m0", "h10"], m0_direct, "m0's session with the private h10", 20)
        wait(s, ["m0", "h10"], lambda: reach_of(s.status("h10")).get("state") == "private",
             "h10 to know it is private (it keeps its sessions then)", 20)
        start = time.monotonic()
        while time.monotonic() - start < hold_s:
            s.alive("m0")
            s.alive("h10")
            # gossip-ctl's own session is not with h10: m0's view says whether
            # m0 still holds a session with h10.
            st = s.status("m0")
            if st is None:  # gossip-ctl got no answer in time (a loaded host): ask again
                continue
            e = view_entry(st, h10_id)
            if not (e and e["reached"] == "direct"):
                return False, time.monotonic() - start
            time.sleep(0.5)
        return True, hold_s


def scenario_keepalive():
    ct, hold = 3, 10
    held, _ = keepalive_holds(1000, ct, hold)
    if not held:
        fail("keepalive 1 s did not keep a session through a NAT with %d s mappings" % ct)
    print("figure: conntrack established timeout %d s, net.keepalive_ms 1000: the session "
          "held %d s" % (ct, hold))
    # The check can fail: a keep-alive slower than the router's timeout loses it.
    held, lost_after = keepalive_holds(6000, ct, hold)
    if held:
        fail("keepalive 6 s kept a session through a NAT with %d s mappings: the lab's "
             "mappings do not expire" % ct)
    print("figure: conntrack established timeout %d s, net.keepalive_ms 6000: the member lost "
          "the session %.1f s into the quiet period" % (ct, lost_after))
    print("keepalive: ok")


def main(argv):
    why = netlab.unavailable_reason()
    if why:
        print("skip: " + why)
        return netlab.SKIP
    for tool in (PEER, CTL, KEYGEN):
        if not os.path.exists(tool):
            fail("%s is not built" % tool)
    which = argv[1] if len(argv) > 1 else "discovery"
    {"discovery": scenario_discovery, "upnp": scenario_upnp,
     "keepalive": scenario_keepalive}[which]()
    return 0


if __name__ == "__main__":
    netlab._install_signal_teardown()
    sys.exit(main(sys.argv))
