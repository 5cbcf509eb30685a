#!/usr/bin/env bash
# demo.sh: autoipd at work on a real TAP device (the README's `make demo`).
#
# As root: makes a throw-away network namespace "aipdemo" with a TAP that
# autoipd creates, runs autoipd in it with the lsm-autoip option string of
# the QNX manual's example, pings the claimed address from the kernel side,
# stops autoipd with SIGTERM (showing the STOP) and removes everything, even
# on failure or Ctrl-C. Without root it runs the simulator instead.
set -euo pipefail

cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
	echo "demo: the TAP demo needs root and iproute2 (to create a network namespace and a TAP device)."
	echo "demo: simulating four netstack hosts that all start on one address instead:"
	echo "demo: go run ./cmd/autoip-sim -hosts 4 -same-initial 169.254.20.20 -trace - -trace-frames none"
	exec go run ./cmd/autoip-sim -hosts 4 -same-initial 169.254.20.20 -trace - -trace-frames none -progress 0
fi

NS=aipdemo
TAP=aipdemo0
ADDR=169.254.20.20  # the address autoipd is asked to try first (ip=)
PEER=169.254.77.2   # the kernel side's own address on the TAP
WORK=$(mktemp -d /tmp/aipdemo.XXXXXX)
PID=

cleanup() {
	set +e
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }

if ip netns list | grep -qw "$NS"; then
	echo "demo: namespace $NS is left over from an earlier run; deleting it"
	ip netns del "$NS"
fi

step "building autoipd"
go build -o "$WORK/autoipd" ./cmd/autoipd

step "creating network namespace $NS"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true

cat >"$WORK/hook" <<'EOF'
#!/bin/sh
echo "hook called: $1 $2 $3 ${AUTOIPD_CONFLICT_MAC:+(conflict with $AUTOIPD_CONFLICT_MAC, $AUTOIPD_PACKET_KIND)}"
EOF
chmod +x "$WORK/hook"

OPTS="if=$TAP,ip=$ADDR,debug,delay=200,abandon"
step "starting: autoipd -o $OPTS -create -w 1 -hook HOOK  (QNX: mount -T io-pkt -o if=en0,ip=$ADDR,debug,delay=200,abandon lsm-autoip.so)"
ip netns exec "$NS" "$WORK/autoipd" -o "$OPTS" -create -w 1 -state-dir "$WORK/state" -hook "$WORK/hook" \
	> >(sed -u 's/^/  [autoipd] /') 2>&1 &
PID=$!

for _ in $(seq 100); do
	ip -n "$NS" link show "$TAP" >/dev/null 2>&1 && break
	sleep 0.1
done
step "kernel side of the TAP: $PEER/16, link up"
ip -n "$NS" addr add "$PEER/16" dev "$TAP"
ip -n "$NS" link set "$TAP" up

step "waiting for autoipd to claim an address"
BOUND=
for _ in $(seq 150); do
	BOUND=$("$WORK/autoipd" -status -i "$TAP" -state-dir "$WORK/state" 2>/dev/null |
		sed -n 's/.*"configured": "\(.*\)".*/\1/p') || true
	[ -n "$BOUND" ] && break
	sleep 0.1
done
if [ -z "$BOUND" ]; then
	echo "demo: autoipd claimed no address within 15 s" >&2
	exit 1
fi
echo "claimed $BOUND"

step "pinging $BOUND from the kernel side (inside $NS)"
if command -v ping >/dev/null 2>&1; then
	ip netns exec "$NS" ping -c 3 -W 1 "$BOUND"
else
	echo "demo: ping is not installed (apt-get install iputils-ping); showing the ARP entry instead"
	ip -n "$NS" neigh show dev "$TAP"
fi

step "autoipd -status -i $TAP"
"$WORK/autoipd" -status -i "$TAP" -state-dir "$WORK/state" >"$WORK/status.json"
head -n 12 "$WORK/status.json"
echo "  ..."

step "stopping autoipd with SIGTERM: the address is withdrawn, state saved, STOP reported"
kill -TERM "$PID"
set +e
wait "$PID"
CODE=$?
set -e
PID=
sleep 0.2 # let the log prefixer flush
echo "autoipd exited with status $CODE"
echo "saved state:"
sed 's/^/  /' "$WORK/state/$TAP.state.json"

step "cleaning up (namespace $NS, its TAP and $WORK)"
