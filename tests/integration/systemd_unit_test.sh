#!/bin/sh
# docs/examples/gossip-peer.service passes `systemd-analyze verify` (with
# ExecStart pointed at the gossip-peer just built, which verify requires to
# exist), restarts on failure but not after exit 2, and the operations
# document shows that very file. Exit 77 (skip) where systemd-analyze is
# missing or cannot run in this environment.
set -u
src=${GOSSIP_SOURCE_ROOT:?set by meson test}
build=${GOSSIP_BUILD_ROOT:?set by meson test}
unit="$src/docs/examples/gossip-peer.service"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "skip: systemd-analyze not installed"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Can it run here at all? A minimal valid unit must verify cleanly.
printf '[Service]\nExecStart=/bin/true\n' >"$tmp/probe.service"
if ! systemd-analyze verify "$tmp/probe.service" >"$tmp/probe.log" 2>&1; then
  echo "skip: systemd-analyze verify cannot run here: $(head -c 300 "$tmp/probe.log")"
  exit 77
fi
fail=0
sed "s|/usr/local/bin/gossip-peer|$(cd "$build" && pwd)/peers/gossip-peer|" "$unit" \
  >"$tmp/gossip-peer.service"
if ! systemd-analyze verify "$tmp/gossip-peer.service" >"$tmp/verify.log" 2>&1; then
  echo "FAIL: systemd-analyze verify rejected the unit:"; cat "$tmp/verify.log"; fail=1
elif [ -s "$tmp/verify.log" ]; then
  echo "FAIL: systemd-analyze verify warned:"; cat "$tmp/verify.log"; fail=1
fi
# A broken unit must fail the same check (the check can fail).
sed 's/^Restart=on-failure/Restart=sometimes/' "$tmp/gossip-peer.service" >"$tmp/broken.service"
systemd-analyze verify "$tmp/broken.service" >"$tmp/broken.log" 2>&1
if [ ! -s "$tmp/broken.log" ]; then
  echo "FAIL: verify accepted Restart=sometimes: the check cannot tell"; fail=1
fi
for line in 'Restart=on-failure' 'RestartPreventExitStatus=2' 'KillSignal=SIGTERM'; do
  grep -qx "$line" "$unit" || { echo "FAIL: the unit lacks $line"; fail=1; }
done
grep -q 'docs/examples/gossip-peer.service' "$src/docs/operations.md" ||
  { echo "FAIL: docs/operations.md does not point at the unit file"; fail=1; }
[ $fail -eq 0 ] && echo "ok: the unit verifies"
exit $fail
