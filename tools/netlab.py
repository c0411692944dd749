#!/usr/bin/python3
"""A small internet built from Linux network namespaces, for the NAT tests.

Topology (every name starts with the run's prefix, gtlab-<pid>-):

    pub:  a namespace holding the bridge "br0": the public segment 203.0.113.0/24
    m<i>: public members, 203.0.113.(10+i), no default route
    r<j>: NAT routers: "wan" 203.0.113.(100+j) on the bridge, "lan" 10.<j>.0.1/24,
          forwarding on, nftables masquerade out of "wan", inbound dropped unless
          it belongs to a connection the LAN opened (or a UPnP mapping allows it)
    h<j><k>: private hosts, 10.<j>.0.(10+k), default route via their router
    stun: (start_stun_server) Debian's stund on 203.0.113.3 and 203.0.113.4, the
          two addresses a classic STUN server needs to answer "change IP" requests

Only the documentation range 203.0.113.0/24 is public here; 10.x exists only
inside the namespaces. Nothing is attached to the host's network namespace:
every veth is created inside a lab namespace ("ip -n"), no namespace has a
route out of the lab (routers have no default route at all), so no packet can
leave it.

Teardown (Lab.close, also from atexit and signals) kills every process the lab
started and every process left in its namespaces, then deletes the
namespaces (which deletes their veths and bridge). clean_stale() removes the
namespaces of earlier runs whose process is gone, so a crashed run never
blocks the next. Every wait is bounded in count and time.

Use as a module (tests/integration/nat_lab_test.py) or from the command line:
    tools/netlab.py check          exit 77 with a reason when namespaces cannot be made
    tools/netlab.py clean          delete stale lab namespaces (gtlab-<dead pid>-*)
    tools/netlab.py demo           build a lab, ping across it, print it, tear it down
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PREFIX = "gtlab-"
PUBLIC_NET = "203.0.113"
SKIP = 77


class LabError(Exception):
    pass


def run(args, check=True, timeout=10, input_text=None):
    """Runs a command (bounded in time); raises LabError with its stderr on failure."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input_text)
    if check and r.returncode != 0:
        raise LabError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def unavailable_reason():
    """None when namespaces, veths and nftables work here, else why not."""
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return "'%s' is not installed (tools/bootstrap installs iproute2 and nftables)" % tool
    probe = "%sprobe-%d" % (PREFIX, os.getpid())
    try:
        run(["ip", "netns", "add", probe])
    except (LabError, OSError, subprocess.TimeoutExpired) as e:
        return "cannot create a network namespace: %s" % e
    try:
        run(["ip", "-n", probe, "link", "add", "name", "vpa", "type", "veth", "peer", "name", "vpb"])
        run(["ip", "netns", "exec", probe, "nft", "add", "table", "ip", "probe"])
    except (LabError, OSError, subprocess.TimeoutExpired) as e:
        return "namespaces exist but veth or nftables fail in them: %s" % e
    finally:
        run(["ip", "netns", "del", probe], check=False)
    return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lab_namespaces():
    r = run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(PREFIX)]


def kill_namespace_processes(ns):
    """SIGKILLs what runs in `ns` (our own lab's processes), bounded retries."""
    for _ in range(20):
        r = run(["ip", "netns", "pids", ns], check=False)
        pids = [int(p) for p in r.stdout.split() if p.isdigit()]
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def delete_namespace(ns):
    kill_namespace_processes(ns)
    run(["ip", "netns", "del", ns], check=False)


def clean_stale():
    """Deletes lab namespaces whose creating process is gone. Returns their names."""
    removed = []
    for ns in lab_namespaces():
        parts = ns[len(PREFIX):].split("-")
        if parts and parts[0].isdigit() and not pid_alive(int(parts[0])):
            delete_namespace(ns)
            removed.append(ns)
    return removed


class Lab:
    """One lab: `members` public namespaces and `lans` NAT'd LANs of `hosts` hosts each.

    Router options: conntrack_tcp_established_s (seconds a NAT mapping of an
    established TCP connection lives without traffic; None: the kernel's default);
    masquerade_ports (None: Linux's default, which keeps a connection's source
    port when it is free, so TCP hole punching works; "fully-random": every
    connection gets a random public port, like a symmetric NAT, so punching
    to a listening port cannot work); wan_unsolicited (what a router does with a new
    connection from the public side to itself: "reset", Linux's answer when nothing
    listens, a TCP reset; "drop", the "stealth" firewall of many home routers).
    """

    def __init__(self, members=1, lans=2, hosts=1, conntrack_tcp_established_s=None,
                 masquerade_ports=None, wan_unsolicited="reset"):
        if masquerade_ports not in (None, "random", "fully-random"):
            raise LabError("masquerade_ports must be None, 'random' or 'fully-random', got %r"
                           % (masquerade_ports,))
        if wan_unsolicited not in ("reset", "drop"):
            raise LabError("wan_unsolicited must be 'reset' or 'drop', got %r"
                           % (wan_unsolicited,))
        self.masquerade_ports = masquerade_ports
        self.wan_unsolicited = wan_unsolicited
        clean_stale()
        self.prefix = "%s%d-" % (PREFIX, os.getpid())
        self.namespaces = []
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix=self.prefix)
        self.closed = False
        atexit.register(self.close)
        try:
            self._build(members, lans, hosts, conntrack_tcp_established_s)
        except BaseException:
            self.close()
            raise

    # --- names and addresses ---
    def ns(self, role):
        return self.prefix + role

    @staticmethod
    def member_ip(i):
        return "%s.%d" % (PUBLIC_NET, 10 + i)

    @staticmethod
    def router_wan_ip(j):
        return "%s.%d" % (PUBLIC_NET, 100 + j)

    @staticmethod
    def host_ip(j, k):
        return "10.%d.0.%d" % (j, 10 + k)

    # --- construction ---
    def _add_ns(self, role):
        name = self.ns(role)
        self.namespaces.append(name)  # tracked first: a failed add is deleted harmlessly
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def _sysctl(self, ns, key, value):
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "%s=%s" % (key, value)])

    def _build(self, members, lans, hosts, ct_established):
        pub = self._add_ns("pub")
        run(["ip", "-n", pub, "link", "add", "name", "br0", "type", "bridge"])
        run(["ip", "-n", pub, "link", "set", "br0", "up"])

        def attach(ns, ifname, port, cidr):
            # The veth is created in the public namespace and one end moved
            # straight into `ns`: it never exists in the host's namespace.
            run(["ip", "-n", pub, "link", "add", "name", port, "type", "veth", "peer", "name", ifname,
                 "netns", ns])
            run(["ip", "-n", pub, "link", "set", port, "master", "br0", "up"])
            run(["ip", "-n", ns, "addr", "add", cidr, "dev", ifname])
            run(["ip", "-n", ns, "link", "set", ifname, "up"])

        for i in range(members):
            ns = self._add_ns("m%d" % i)
            attach(ns, "eth0", "pm%d" % i, self.member_ip(i) + "/24")
        for j in range(1, lans + 1):
            r = self._add_ns("r%d" % j)
            attach(r, "wan", "pr%d" % j, self.router_wan_ip(j) + "/24")
            self._sysctl(r, "net.ipv4.ip_forward", 1)
            for k in range(hosts):
                h = self._add_ns("h%d%d" % (j, k))
                if k == 0:
                    run(["ip", "-n", r, "link", "add", "name", "lan", "type", "bridge"])
                    run(["ip", "-n", r, "addr", "add", "10.%d.0.1/24" % j, "dev", "lan"])
                    run(["ip", "-n", r, "link", "set", "lan", "up"])
                port = "hp%d" % k
                run(["ip", "-n", r, "link", "add", "name", port, "type", "veth", "peer", "name", "eth0",
                     "netns", h])
                run(["ip", "-n", r, "link", "set", port, "master", "lan", "up"])
                run(["ip", "-n", h, "addr", "add", self.host_ip(j, k) + "/24", "dev", "eth0"])
                run(["ip", "-n", h, "link", "set", "eth0", "up"])
                run(["ip", "-n", h, "route", "add", "default", "via", "10.%d.0.1" % j])
            self._nat_rules(r)
            if ct_established is not None:
                # conntrack's sysctls are per namespace once the module is loaded
                # (the nft rules above load it).
                self._sysctl(r, "net.netfilter.nf_conntrack_tcp_timeout_established",
                             int(ct_established))

    def _nat_rules(self, router):
        # inet tables named as miniupnpd-nftables expects ("filter", chains
        # miniupnpd / prerouting_miniupnpd / postrouting_miniupnpd), so a
        # miniupnpd started on the router adds its mappings to them.
        rules = """
table inet filter {
  chain miniupnpd { }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
    jump miniupnpd
  }
  chain input {
    type filter hook input priority 0; policy accept;
    %s
  }
}
table inet nat {
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan" masquerade%s
  }
}
""" % ('iifname "wan" ct state new drop' if self.wan_unsolicited == "drop" else "",
       (" " + self.masquerade_ports) if self.masquerade_ports else "")
        run(["ip", "netns", "exec", router, "nft", "-f", "-"], input_text=rules)

    # --- processes ---
    def spawn(self, role, argv, log_name, env=None):
        """Starts argv inside namespace `role`; stdout+stderr to <dir>/<log_name>.log."""
        log = open(os.path.join(self.dir, log_name + ".log"), "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        # A signal between the fork and the append would leave an untracked
        # process: signals wait until it is tracked.
        blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            p = subprocess.Popen(["ip", "netns", "exec", self.ns(role)] + list(argv), stdout=log,
                                 stderr=subprocess.STDOUT, env=full_env, start_new_session=True,
                                 preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK,
                                                                           blocked))
            p.log_path = os.path.join(self.dir, log_name + ".log")
            self.procs.append(p)
        finally:
            log.close()
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return p

    def exec(self, role, argv, timeout=10, check=True):
        return run(["ip", "netns", "exec", self.ns(role)] + list(argv), timeout=timeout,
                   check=check)

    def log(self, log_name):
        try:
            with open(os.path.join(self.dir, log_name + ".log"), "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self, proc, sig=signal.SIGKILL):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def start_miniupnpd(self, j, natpmp=True, stun=None):
        """Runs Debian's miniupnpd on router j (UPnP-IGD on lan:5000, NAT-PMP on lan).

        Without `stun`, miniupnpd 2.3.1 finds its WAN address in a reserved range
        (203.0.113.0/24 is RFC 5737 documentation space) and refuses to forward
        anything ("Port forwarding is impossible"). With stun="ip:port" (see
        start_stun_server) it asks that STUN server instead: four binding
        requests (plain, change port, change IP, both) all answered at its own
        address and ports mean "public, unfiltered", and forwarding is enabled
        ("Port forwarding is now enabled" in its log)."""
        conf = os.path.join(self.dir, "miniupnpd-r%d.conf" % j)
        stun_lines = []
        if stun:
            host, port = stun.rsplit(":", 1)
            stun_lines = ["ext_perform_stun=yes", "ext_stun_host=" + host, "ext_stun_port=" + port]
        with open(conf, "w") as f:
            f.write("\n".join([
                "ext_ifname=wan", "listening_ip=lan", "port=5000",
                "enable_natpmp=%s" % ("yes" if natpmp else "no"), "enable_upnp=yes",
                "secure_mode=yes", "system_uptime=no", "notify_interval=60",
                "clean_ruleset_interval=600", "uuid=3f2f6c8e-0000-4000-8000-00000000000%d" % j,
                "lease_file=%s" % os.path.join(self.dir, "upnp-leases-r%d" % j),
                "upnp_table_name=filter", "upnp_nat_table_name=nat"] + stun_lines + [
                "allow 1024-65535 10.%d.0.0/24 1024-65535" % j, "deny 0-65535 0.0.0.0/0 0-65535",
                ""]))
        return self.spawn("r%d" % j, ["miniupnpd", "-d", "-f", conf, "-P",
                                      os.path.join(self.dir, "miniupnpd-r%d.pid" % j)],
                          "miniupnpd-r%d" % j)

    def nft_ruleset(self, j):
        return self.exec("r%d" % j, ["nft", "list", "ruleset"]).stdout

    STUN_IPS = ("%s.3" % PUBLIC_NET, "%s.4" % PUBLIC_NET)
    STUN_PORT = 3478

    def start_stun_server(self):
        """Runs Debian's stund (package stun-server) in a namespace "stun" on the
        public segment, with the two public addresses STUN_IPS (a classic RFC 3489
        server answers "change IP" from the second). Returns "ip:port" once it
        listens."""
        if shutil.which("stund") is None:
            raise LabError("'stund' is not installed (tools/bootstrap installs stun-server)")
        ns = self._add_ns("stun")
        pub = self.ns("pub")
        run(["ip", "-n", pub, "link", "add", "name", "pstun", "type", "veth", "peer", "name",
             "eth0", "netns", ns])
        run(["ip", "-n", pub, "link", "set", "pstun", "master", "br0", "up"])
        for ip in self.STUN_IPS:
            # nodad: usable at once (duplicate address detection would hold it for a while)
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0", "nodad"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        self.spawn("stun", ["stund", "-v", "-h", self.STUN_IPS[0], "-a", self.STUN_IPS[1],
                            "-p", str(self.STUN_PORT), "-o", str(self.STUN_PORT + 1)], "stund")
        wait_until(lambda: ":%d " % self.STUN_PORT in
                   self.exec("stun", ["ss", "-Hlun"], check=False).stdout,
                   "stund to listen", 5)
        return "%s:%d" % (self.STUN_IPS[0], self.STUN_PORT)

    def count_inbound(self, j, sources):
        """Counts, on router j, the new TCP connections each of `sources` (IPs)
        opens through the router into its LAN: only a port mapping's DNAT lets one
        through (an nft counter ahead of the forward chain's verdicts)."""
        for ip in sources:
            run(["ip", "netns", "exec", self.ns("r%d" % j), "nft", "insert", "rule", "inet",
                 "filter", "forward", "iifname", "wan", "oifname", "lan", "ip", "saddr", ip,
                 "meta", "l4proto", "tcp", "ct", "state", "new", "counter"])

    def inbound_counts(self, j):
        """{source IP: new connections forwarded into router j's LAN} (count_inbound)."""
        counts = {}
        for line in self.nft_ruleset(j).splitlines():
            words = line.split()
            if "saddr" in words and "counter" in words and "packets" in words:
                counts[words[words.index("saddr") + 1]] = int(words[words.index("packets") + 1])
        return counts

    def close(self):
        """Kills the lab's processes and deletes its namespaces. Signals wait
        until it is done (a SIGTERM in the middle must not cut the teardown),
        and one failing step does not stop the others."""
        if self.closed:
            return
        blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            for p in self.procs:
                try:
                    self.kill(p)
                except (OSError, subprocess.SubprocessError):
                    pass
            for ns in reversed(self.namespaces):
                try:
                    delete_namespace(ns)
                except (OSError, subprocess.SubprocessError, LabError):
                    pass
            shutil.rmtree(self.dir, ignore_errors=True)
            self.closed = True
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_until(predicate, what, timeout_s, poll_s=0.05):
    """Polls predicate() until true; raises LabError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / poll_s) + 2):
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        time.sleep(poll_s)
    raise LabError("timed out after %.1f s waiting for %s" % (timeout_s, what))


_LISTENER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 7999)); s.listen(); s.settimeout(3)\n"
    "print('listening', flush=True)\n"
    "c,a=s.accept(); c.sendall(('seen ' + a[0]).encode()); c.close()\n")
_DIALER = (
    "import socket,sys\n"
    "c=socket.create_connection((sys.argv[1], 7999), timeout=1); print(c.recv(64).decode())\n")


def tcp_reaches(lab, src, dst, dst_ip):
    """Whether a TCP connect from namespace `src` to dst_ip:7999 reaches a listener in `dst`."""
    listener = lab.spawn(dst, [sys.executable, "-c", _LISTENER], "probe-" + dst)
    try:
        wait_until(lambda: "listening" in lab.log("probe-" + dst), "the probe listener", 5)
        r = lab.exec(src, [sys.executable, "-c", _DIALER, dst_ip], check=False)
        return r.returncode == 0 and r.stdout.startswith("seen")
    finally:
        lab.kill(listener)


def _install_signal_teardown():
    # atexit does not run on SIGTERM/SIGINT by default: turn them into exits.
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda signum, frame: sys.exit(128 + signum))


def main(argv):
    _install_signal_teardown()
    cmd = argv[1] if len(argv) > 1 else "demo"
    if cmd == "check":
        why = unavailable_reason()
        if why:
            print("skip: " + why)
            return SKIP
        print("network namespaces work here")
        return 0
    if cmd == "clean":
        for ns in clean_stale():
            print("removed " + ns)
        return 0
    if cmd == "demo":
        why = unavailable_reason()
        if why:
            print("skip: " + why)
            return SKIP
        with Lab(members=1, lans=2, hosts=1) as lab:
            for ns in lab.namespaces:
                addrs = lab.exec(ns[len(lab.prefix):], ["ip", "-br", "-4", "addr"]).stdout
                print(ns, " ".join(addrs.split()))
            print("h10 -> m0:", "connected" if tcp_reaches(lab, "h10", "m0", lab.member_ip(0))
                  else "FAILED")
            print("m0 -> h10 (a NAT: must fail):",
                  "connected" if tcp_reaches(lab, "m0", "h10", lab.host_ip(1, 0)) else "refused")
            print("m0 -> r1's public address (no mapping: must fail):",
                  "connected" if tcp_reaches(lab, "m0", "h10", lab.router_wan_ip(1)) else
                  "refused")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
