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
    nat_lab_test.py pair_punched        m0 public, h10 and h20 behind two NATs, bootstrap m0
                                only: the private pair exchanges, punched (coordinated by m0)
    nat_lab_test.py pair_relayed        the same behind NATs that randomize every source port
                                (punching cannot work): m0's relay carries the exchanges,
                                within its caps (bytes counted in m0's STATUS)
    nat_lab_test.py coordinator_killed  pair_punched, then m0 is SIGKILLed: the pair keeps
                                exchanging over its punched session, and both see each
                                other alive and m0 gone

Exit 77 (skip) with a reason only where network namespaces cannot be made.
Prints one "figure:" line per measured time.
"""

import json
import os
import signal
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
            # (Without the per-epoch progress lines, which would hide the rest.)
            lines = [x for x in swarm.lab.log(r).splitlines() if " peer: epoch " not in x]
            print("--- %s log (tail) ---\n%s" % (r, "\n".join(lines)[-4000:]))
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


# Per-test knobs of the pair scenarios: a member found unreachable is tried
# again after 5 s (not 60), so a pair that met before either had reserved a
# relay does not wait a minute; no router port mapping (the lab's routers run
# no miniupnpd here).
PAIR_NET = {"port_mapping": False, "relay": {"direct_retry_ms": 5000}}


def pair_entry(swarm, role, other_id):
    """`role`'s view entry of the other private peer, once exchanges with it were counted."""
    e = view_entry(swarm.status(role), other_id)
    return e if e and e["exchanges"] > 0 and e["reached"] in ("punched", "relayed") else None


def start_pair(lab, relay_net=None):
    """m0 public (relay caps from relay_net), h10 and h20 behind their NATs, bootstrap m0 only.

    Returns (swarm, ids, t0) with t0 the start of the private peers."""
    s = Swarm(lab)
    m0 = netlab.Lab.member_ip(0)
    m0_net = dict(PAIR_NET)
    if relay_net:
        m0_net["relay"] = dict(PAIR_NET["relay"], **relay_net)
    s.start("m0", m0, net=m0_net, gossip_every=10)
    ids = {"m0": wait(s, ["m0"], lambda: s.status("m0"), "m0 to answer STATUS", 15)["peer_id"]}
    t0 = time.monotonic()
    seed = ["%s:%d" % (m0, PORT)]
    s.start("h10", netlab.Lab.host_ip(1, 0), bootstrap=seed, net=PAIR_NET, gossip_every=10)
    s.start("h20", netlab.Lab.host_ip(2, 0), bootstrap=seed, net=PAIR_NET, gossip_every=10)
    for role in ("h10", "h20"):
        ids[role] = wait(s, ["m0", "h10", "h20"], lambda: s.status(role), role + "'s STATUS",
                         15)["peer_id"]
    return s, ids, t0


def first_pair_exchange(s, ids, t0, timeout_s):
    """Waits until both private peers count exchanges with each other; returns
    (seconds since t0, h10's entry for h20, h20's entry for h10)."""
    roles = ["m0", "h10", "h20"]
    a = wait(s, roles, lambda: pair_entry(s, "h10", ids["h20"]),
             "h10 to count an exchange with h20 over a punched or relayed path", timeout_s)
    t_first = time.monotonic() - t0
    b = wait(s, roles, lambda: pair_entry(s, "h20", ids["h10"]),
             "h20 to count an exchange with h10", 15)
    return t_first, a, b


def relay_figures(st):
    r = (st or {}).get("relay") or {}
    return r.get("bytes", 0), r.get("circuits_opened", 0), r.get("reservations", 0)


def scenario_pair_punched():
    # Routers that drop unsolicited connections from outside (the "stealth"
    # firewall of many home routers); a router that answers them with a reset
    # defeats the punch in this lab (docs/design.md "Punch"), and the relay
    # carries the pair then.
    with netlab.Lab(members=1, lans=2, hosts=1, wan_unsolicited="drop") as lab:
        s, ids, t0 = start_pair(lab)
        t_first, a, b = first_pair_exchange(s, ids, t0, 35)
        if a["reached"] != b["reached"] and "relayed" not in (a["reached"], b["reached"]):
            fail("h10 and h20 disagree on their path: %s / %s" % (a, b))
        st = s.status("m0")
        relay_bytes, circuits, reservations = relay_figures(st)
        # Behind port-preserving NATs the punch is expected to work; a relay is
        # the fallback, and then the relay must have carried the bytes.
        if a["reached"] == "relayed" and relay_bytes == 0:
            fail("h10 reaches h20 relayed, yet the relay counted no byte: %s" % st.get("relay"))
        if a["reached"] == "punched" and circuits != 0:
            fail("punched, yet the relay opened circuits: %s" % st.get("relay"))
        print("figure: pair_punched: first exchange between the private peers %.2f s after "
              "their start, path h10->h20 %s, h20->h10 %s, exchanges %d/%d, relay bytes %d "
              "(circuits %d, reservations %d)"
              % (t_first, a["reached"], b["reached"], a["exchanges"], b["exchanges"],
                 relay_bytes, circuits, reservations))
        if a["reached"] != "punched":
            fail("the punch failed behind port-preserving NATs: %s" % a.get("path_reason"))
    print("pair_punched: ok")


def scenario_pair_relayed():
    cap = 65536  # net.relay.max_bytes_per_s, per circuit and direction (the smallest allowed)
    with netlab.Lab(members=1, lans=2, hosts=1, masquerade_ports="fully-random") as lab:
        s, ids, t0 = start_pair(lab, relay_net={"max_bytes_per_s": cap, "max_circuits": 4})
        roles = ["m0", "h10", "h20"]
        t_first, a, b = first_pair_exchange(s, ids, t0, 35)
        if a["reached"] != "relayed" or b["reached"] != "relayed":
            fail("hole punching is impossible here, yet the path is %s / %s"
                 % (a["reached"], b["reached"]))
        for role in ("h10", "h20"):
            st = s.status(role)
            if not st["relay"]["reserved_with"] or st["relay"]["reserved_with"][0] != ids["m0"]:
                fail("%s (private) holds no reservation with m0: %s" % (role, st["relay"]))
            if st["paths"]["punched_failed"] == 0:
                fail("%s never tried to punch: %s" % (role, st["paths"]))
        t_relay = time.monotonic()
        st0 = wait(s, roles, lambda: s.status("m0"), "m0's STATUS", 10)
        bytes0 = relay_figures(st0)[0]
        # A few more exchanges, then the relay's counts: within its caps.
        time.sleep(3)
        st = wait(s, roles, lambda: s.status("m0"), "m0's STATUS", 10)
        elapsed = time.monotonic() - t_relay
        relay = st["relay"]
        relay_bytes, circuits, reservations = relay_figures(st)
        if relay_bytes <= bytes0 or relay_bytes == 0:
            fail("the relay carried nothing more in %.1f s: %s" % (elapsed, relay))
        if relay["circuits_active"] > 4 or relay["refused"]["cap"] != 0:
            fail("the relay went over or hit its caps: %s" % relay)
        # Every open circuit copies at most `cap` bytes/s each way.
        rate = (relay_bytes - bytes0) / elapsed
        if rate > 2 * cap * max(1, relay["circuits_active"]) * 1.1:
            fail("the relay copied %.0f B/s, over its cap" % rate)
        if reservations != 2:
            fail("m0 should hold the reservations of both private peers: %s" % relay)
        e = [view_entry(st, ids[r]) for r in ("h10", "h20")]
        print("figure: pair_relayed: first exchange between the private peers %.2f s after "
              "their start, path relayed, exchanges %d/%d, relay bytes %d (%d circuits, "
              "%.0f B/s over the last %.1f s, cap %d B/s per direction), m0's own exchanges "
              "with them %d/%d"
              % (t_first, a["exchanges"], b["exchanges"], relay_bytes, circuits, rate, elapsed,
                 cap, e[0]["exchanges"] if e[0] else -1, e[1]["exchanges"] if e[1] else -1))
    print("pair_relayed: ok")


def scenario_coordinator_killed():
    # Routers that drop unsolicited connections from outside (the "stealth"
    # firewall of many home routers); a router that answers them with a reset
    # defeats the punch in this lab (docs/design.md "Punch"), and the relay
    # carries the pair then.
    with netlab.Lab(members=1, lans=2, hosts=1, wan_unsolicited="drop") as lab:
        s, ids, t0 = start_pair(lab)
        t_first, a, _ = first_pair_exchange(s, ids, t0, 35)
        if a["reached"] != "punched":
            fail("the pair did not punch (needed for this scenario): %s" % a)
        # Once private, both reserve m0 as their relay on their own (nothing configured).
        def reserved_with(role):
            return ((s.status(role) or {}).get("relay") or {}).get("reserved_with")
        for role in ("h10", "h20"):
            wait(s, ["m0", "h10", "h20"], lambda: reserved_with(role) == [ids["m0"]],
                 role + " to reserve m0 as its relay", 20)
        a = wait(s, ["m0", "h10", "h20"], lambda: view_entry(s.status("h10"), ids["h20"]),
                 "h10's entry for h20", 10)
        before = a["exchanges"]
        lab.kill(s.procs["m0"], signal.SIGKILL)
        t_kill = time.monotonic()
        roles = ["h10", "h20"]

        def consistent():
            out = {}
            for role, other in (("h10", "h20"), ("h20", "h10")):
                st = s.status(role)
                mine = view_entry(st, ids[other])
                gone = view_entry(st, ids["m0"])
                if not mine or mine["state"] != "alive":
                    return None
                if gone and gone["state"] == "alive":
                    return None
                # The dead relay's reservation is dropped (no other public member to take it).
                if ids["m0"] in ((st.get("relay") or {}).get("reserved_with") or []):
                    return None
                out[role] = mine
            return out
        views = wait(s, roles, consistent,
                     "h10 and h20 to see each other alive, m0 gone and its reservation dropped",
                     30)
        t_view = time.monotonic() - t_kill
        more = wait(s, roles, lambda: (lambda e: e if e and e["exchanges"] > before + 1 else
                                       None)(view_entry(s.status("h10"), ids["h20"])),
                    "h10 and h20 to exchange again after m0's death", 20)
        t_more = time.monotonic() - t_kill
        if more["reached"] != "punched":
            fail("after m0's death h10 reaches h20 %s" % more["reached"])
        print("figure: coordinator_killed: first exchange %.2f s after start (punched); after "
              "SIGKILL of m0 (their relay) both see each other alive, m0 gone and its "
              "reservation dropped after %.2f s, exchanges "
              "%d -> %d (%.2f s after the kill), path %s/%s"
              % (t_first, t_view, before, more["exchanges"], t_more,
                 views["h10"]["reached"], views["h20"]["reached"]))
    print("coordinator_killed: ok")


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
     "keepalive": scenario_keepalive, "pair_punched": scenario_pair_punched,
     "pair_relayed": scenario_pair_relayed,
     "coordinator_killed": scenario_coordinator_killed}[which]()
    return 0


if __name__ == "__main__":
    netlab._install_signal_teardown()
    sys.exit(main(sys.argv))
