#!/usr/bin/python3
"""NAT lab scenarios (tools/netlab.py): real gossip-peer processes in network
namespaces, public members on 203.0.113.0/24 and private peers on 10.x behind
nftables masquerade routers.

    nat_lab_test.py discovery   a private peer learns its NAT address (OBSERVED) and marks
                                itself private (dial-back fails); a public joiner is
                                confirmed public; the private peer exchanges with a member
    nat_lab_test.py upnp        miniupnpd on three routers (two find their public address
                                with a STUN server in the lab): peers map with NAT-PMP and
                                with UPnP-IGD, are confirmed public at the mapping, dialed
                                there and exchange (STATUS "mapped"); the third router
                                refuses and its peer stays private with both reasons; a
                                clean shutdown deletes the mappings
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
        return self.status_at(self.addr[role], asker or role_ns(role))

    def status_at(self, address, asker):
        """STATUS of whoever answers at `address` ("ip:port"), asked from namespace `asker`."""
        r = self.lab.exec(asker, [CTL, "status", address, "--swarm-key", self.swarm_key,
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


def wait_log(lab, name, text, what, timeout_s):
    """Waits until `text` is in the lab log `name`; the failure shows that log."""
    try:
        netlab.wait_until(lambda: text in lab.log(name), what, timeout_s, poll_s=0.1)
    except netlab.LabError as e:
        fail("%s\n--- %s log (tail) ---\n%s" % (e, name, lab.log(name)[-3000:]))


def mapping_line(lab, role):
    for line in lab.log(role).splitlines():
        if "port mapping:" in line:
            return line
    return None


def scenario_upnp():
    """Three LANs, each behind a router that runs Debian's miniupnpd:
    r1 serves NAT-PMP and UPnP-IGD, r2 UPnP-IGD only, both find their public
    address with a STUN server on the public segment; r3 has no STUN server and
    so refuses to forward (its WAN address is in RFC 5737 space). h10 must map
    with NAT-PMP, h20 with UPnP-IGD, and both become public at their mapping,
    dialed there by members; h30 must say why it has no mapping and stay
    private. A clean shutdown deletes both mappings from the routers."""
    with netlab.Lab(members=2, lans=3, hosts=1) as lab:
        stun = lab.start_stun_server()
        daemons = {1: lab.start_miniupnpd(1, natpmp=True, stun=stun),
                   2: lab.start_miniupnpd(2, natpmp=False, stun=stun),
                   3: lab.start_miniupnpd(3, natpmp=True)}
        for j in (1, 2):
            wait_log(lab, "miniupnpd-r%d" % j, "Port forwarding is now enabled",
                     "miniupnpd on r%d to enable forwarding after STUN" % j, 20)
        wait_log(lab, "miniupnpd-r3", "Port forwarding is impossible",
                 "miniupnpd on r3 (no STUN) to refuse forwarding", 10)
        for j in (1, 2, 3):
            wait_log(lab, "miniupnpd-r%d" % j, "HTTP listening on port 5000",
                     "miniupnpd on r%d to listen" % j, 10)
        m0, m1 = netlab.Lab.member_ip(0), netlab.Lab.member_ip(1)
        wan = {j: netlab.Lab.router_wan_ip(j) for j in (1, 2, 3)}
        for j in (1, 2, 3):
            lab.count_inbound(j, [m0, m1] + [wan[k] for k in (1, 2, 3) if k != j])

        s = Swarm(lab)
        s.start("m0", m0)
        wait(s, ["m0"], lambda: s.status("m0"), "m0 to answer STATUS", 15)
        t0 = time.monotonic()
        seed = ["%s:%d" % (m0, PORT)]
        for j in (1, 2, 3):
            s.start("h%d0" % j, netlab.Lab.host_ip(j, 0), bootstrap=seed)
        roles = ["m0", "h10", "h20", "h30"]

        # The mappings: NAT-PMP on r1, UPnP-IGD on r2 (no NAT-PMP there), none on r3.
        external = {}
        for j, protocol in ((1, "nat-pmp"), (2, "upnp-igd")):
            role = "h%d0" % j
            line = wait(s, roles, lambda: mapping_line(lab, role), role + "'s port mapping", 20)
            external[role] = "%s:%d" % (wan[j], PORT)
            if "forwards %s " % external[role] not in line or "(%s," % protocol not in line:
                fail("%s: expected a %s mapping of %s: %s" % (role, protocol, external[role],
                                                              line))
            if "dport %d" % PORT not in lab.nft_ruleset(j):
                fail("%s reports a mapping r%d's ruleset lacks:\n%s" % (role, j,
                                                                          lab.nft_ruleset(j)))
            print("figure: %s mapped %s with %s %.2f s after start"
                  % (role, external[role], protocol, time.monotonic() - t0))
        line = wait(s, roles, lambda: mapping_line(lab, "h30"), "h30's port mapping outcome", 20)
        if "NAT-PMP" not in line or "UPnP-IGD" not in line or "forwards" in line:
            fail("h30's failure does not name both protocols: " + line)
        if "dport %d" % PORT in lab.nft_ruleset(3):
            fail("r3 holds a mapping the peer does not know of:\n" + lab.nft_ruleset(3))

        # Confirmed by a dial-back through the mapping, advertised, flagged mapped.
        ids = {}
        for role in ("h10", "h20"):
            st = wait(s, roles, lambda: (lambda x: x if reach_of(x).get("state") == "public"
                                         else None)(s.status(role)),
                      role + " public through its mapping", 25)
            r = reach_of(st)
            if r["address"] != external[role] or r["mapped"] != external[role]:
                fail("%s does not advertise its mapping %s: %s" % (role, external[role], r))
            ids[role] = st["peer_id"]
            print("figure: %s confirmed public at its mapping %s %.2f s after start (dial-back "
                  "by %s)" % (role, r["address"], time.monotonic() - t0, r["confirmed_by"][:8]))
        st = wait(s, roles, lambda: (lambda x: x if reach_of(x).get("state") == "private"
                                     else None)(s.status("h30")), "h30 private", 25)
        ids["h30"] = st["peer_id"]
        print("note: h30 (r3 refuses forwarding) stays private: " + line.strip())
        # The dial-back that confirmed each came in through the router's mapping
        # (from whichever member served it: m0 or another LAN's peer).
        for j in (1, 2):
            if sum(lab.inbound_counts(j).values()) == 0:
                fail("h%d0 was confirmed public, yet r%d forwarded no connection into its LAN"
                     % (j, j))
        if sum(lab.inbound_counts(3).values()) != 0:
            fail("r3 forwarded connections without a mapping: %s" % lab.inbound_counts(3))

        # A member that joins later dials them at their mappings and exchanges with them.
        # It joins through m0 once m0's view holds their public incarnations: a view
        # from before would list them private, and m1 would punch to them instead.
        def m0_knows_mappings():
            st = s.status("m0")
            e = [view_entry(st, ids[role]) for role in ("h10", "h20")]
            return st if all(x and not x.get("private") and
                             x["address"] == external[role]
                             for role, x in zip(("h10", "h20"), e)) else None
        wait(s, roles, m0_knows_mappings, "m0 to see h10 and h20 public at their mappings", 25)
        s.start("m1", m1, bootstrap=seed)
        roles.append("m1")

        def m1_exchanged_through_mappings():
            st = s.status("m1")
            e = {role: view_entry(st, ids[role]) for role in ("h10", "h20")}
            if not all(x and x["reached"] == "mapped" and x["exchanges"] > 0 and
                       x["address"] == external[role] for role, x in e.items()):
                return None
            return e
        wait(s, roles, m1_exchanged_through_mappings,
             "m1 to see h10 and h20 at their mappings and exchange with them", 40)
        print("figure: m1 (joined later) exchanged with h10 and h20 (STATUS: mapped) %.2f s "
              "after start; connections m1 opened through r1, r2: %d, %d"
              % (time.monotonic() - t0, lab.inbound_counts(1).get(m1, 0),
                 lab.inbound_counts(2).get(m1, 0)))
        # Whichever side opened those sessions, a public host dials the mapped
        # address itself: gossip-ctl in m1's namespace gets h10's and h20's
        # STATUS there, and the router counts the connection coming in.
        for j, role in ((1, "h10"), (2, "h20")):
            before = lab.inbound_counts(j).get(m1, 0)
            st = s.status_at(external[role], "m1")
            if not st or st.get("peer_id") != ids[role]:
                fail("gossip-ctl in m1 got no STATUS from %s at %s: %s" % (role, external[role],
                                                                          st))
            if lab.inbound_counts(j).get(m1, 0) <= before:
                fail("r%d counted no connection from m1 while it dialed %s" % (j, external[role]))

        # Two peers behind two NATs reach each other through a mapping: dialed
        # there ("mapped"), or, when one dialed the other at its LAN address
        # before the mapping was confirmed, through a punch (which the mapping
        # lets in as well); either way a connection crossed a router inward.
        def pair_exchanged():
            e = view_entry(s.status("h10"), ids["h20"])
            crossed = (lab.inbound_counts(1).get(wan[2], 0) +
                       lab.inbound_counts(2).get(wan[1], 0))
            return e if (e and e["reached"] in ("mapped", "punched") and e["exchanges"] > 0 and
                         crossed) else None
        e = wait(s, roles, pair_exchanged, "h10 and h20 to exchange through their mappings", 40)
        print("figure: h10 and h20 (two NATs) exchanged %d times through their mappings "
              "(path: %s%s), %.2f s after start"
              % (e["exchanges"], e["reached"],
                 ", first tried: " + e["path_reason"] if e.get("path_reason") else "",
                 time.monotonic() - t0))

        # A clean shutdown (SIGTERM) deletes the mapping on the router.
        for j, role in ((1, "h10"), (2, "h20")):
            p = s.procs[role]
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                fail("%s did not exit within 30 s of SIGTERM" % role)
            if p.returncode != 0:
                fail("%s exited %d after SIGTERM:\n%s" % (role, p.returncode,
                                                          lab.log(role)[-2000:]))
            if "dport %d" % PORT in lab.nft_ruleset(j):
                fail("%s exited cleanly but r%d still forwards port %d:\n%s"
                     % (role, j, PORT, lab.nft_ruleset(j)))
        print("note: after SIGTERM h10 and h20 exited 0 and r1 and r2 hold no mapping")
        for j, daemon in daemons.items():
            if daemon.poll() is not None:
                fail("miniupnpd on r%d exited:\n%s" % (j, lab.log("miniupnpd-r%d" % j)))
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
