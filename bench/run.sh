#!/usr/bin/env bash
# bench/run.sh: `make bench`, numbers a user can trust, as one markdown table
# on stdout (progress on stderr). Every figure says how it was measured;
# where a baseline runs in the same script, the ratio is given.
#
#   engine   ns and allocations per ARP frame (autoip, autoip/acd; median of 5)
#   TAP      ARP frames/s through TAP -> tap.Link -> gVisor NIC -> shim ->
#            engine: capacity (queue drained by the path alone) against a
#            plain TAP reader's in the same run, with and without the ARP
#            fast path; conflict-detection latency p50/p99 flat out and paced
#            at 0.8 x the rate the path sustains with the sender running
#            (root)
#   TCP      one TCP connection between a netstack and the kernel across a
#            TAP, both ways: stack.New on tap.Link against the same stack on
#            gVisor's fdbased endpoint, kernel-to-kernel over a veth as the
#            ceiling (root)
#   crowd    20 daemons started at once on one bridge: TAP really up ->
#            probing started (root)
#   claim    start -> BIND of the real autoipd at RFC defaults and at the
#            fastest settings, against the engine's own schedule (root)
#   sim      1,000- and 10,000-host boot storms
#   daemon   stripped binary size, RSS bound and idle, CPU and wake-ups over
#            BENCH_IDLE idle while bound, then how fast it notices the TAP
#            going down, up, away and back (root for RSS/CPU)
#
# Knobs (environment):
#   BENCH_QUICK=1      CI smoke: every benchmark once, TAP flood of 20k frames,
#                      one claim per setting, 5 s idle, 1 s TCP runs, one
#                      crowd round (a few minutes at most)
#   BENCH_IDLE=60s     idle period for the CPU figure (Go duration)
#   BENCH_REPS=5       repetitions of the TAP flood pair and of the fast claim
#   AIP_FLOOD_FRAMES   frames per TAP flood (default 200000; quick 20000)
#   BENCH_PACED_RATE   offered frames/s of the paced TAP floods (default: 0.8 x
#                      the rate the path sustained in the flat-out runs)
#   AIP_TCP_SECONDS    length of each TCP transfer (default 3)
#   BENCH_CROWD        daemons started at once (default 20)
#   BENCH_KEEP=1       keep the work directory (raw outputs, daemon logs)
#   BENCH_NO_ROOT=1    act as without root: skip the TAP and daemon rows
#   GO=go              the go command
#
# It builds everything into a temporary directory, so it works from a
# clean clone. It exits non-zero only on real failures (a build, a
# benchmark or a measurement that did not work); a missed target is shown
# as MISSED in the table. As root it runs in a private mount namespace (so
# the network namespaces it and the test binaries create, all named aip*,
# are invisible outside and vanish with it even if it is killed) and
# removes its own namespace, TAPs and daemons on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}

say() { printf 'bench: %s\n' "$*" >&2; }

IS_ROOT=0
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1 && [ "${BENCH_NO_ROOT:-0}" != 1 ]; then
	IS_ROOT=1
fi

# As root, re-run inside a private mount namespace with its own
# /var/run/netns, so that no network namespace made during the run (ours or
# the test binaries') can leak or be confused with another user's.
if [ "$IS_ROOT" = 1 ] && [ -z "${AIPBENCH_PRIVATE:-}" ] && command -v unshare >/dev/null 2>&1; then
	if unshare --mount --propagation private true 2>/dev/null; then
		export AIPBENCH_PRIVATE=1
		exec unshare --mount --propagation private bash "$0" "$@"
	fi
fi
if [ "${AIPBENCH_PRIVATE:-}" = 1 ]; then
	mkdir -p /var/run/netns
	if ! mount -t tmpfs aipbench /var/run/netns; then
		say "cannot mount a private /var/run/netns; continuing with the shared one"
	fi
fi

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	ENGINE_COUNT=1
	REPS=${BENCH_REPS:-1}
	FRAMES=${AIP_FLOOD_FRAMES:-20000}
	PACED_FRAMES=20000
	CLAIM_RFC_REPS=1
	CLAIM_FAST_REPS=1
	CLAIM_WAIT_REPS=1
	SIM_COUNT=1
	IDLE=${BENCH_IDLE:-5s}
	TCP_SECONDS=1
	CROWD_ROUNDS=1
else
	ENGINE_COUNT=5
	REPS=${BENCH_REPS:-5}
	FRAMES=${AIP_FLOOD_FRAMES:-200000}
	PACED_FRAMES=200000
	CLAIM_RFC_REPS=5
	CLAIM_FAST_REPS=$REPS
	CLAIM_WAIT_REPS=3
	SIM_COUNT=3
	IDLE=${BENCH_IDLE:-60s}
	TCP_SECONDS=${AIP_TCP_SECONDS:-3}
	CROWD_ROUNDS=5
fi
CROWD=${BENCH_CROWD:-20}
SETTLE=5s
PACED_RATE=${BENCH_PACED_RATE:-50000} # replaced by 0.8 x the measured capacity unless set

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aipbench.XXXXXX")
BIN=$WORK/bin
RES=$WORK/results
mkdir -p "$BIN" "$RES"
export AIPBENCH_PIDS=$WORK/pids
NS=
FAILED=0

cleanup() {
	set +e
	if [ -f "$AIPBENCH_PIDS" ]; then
		# Only processes we started (recorded by aipbench), and only while
		# they still run one of our binaries.
		while read -r p; do
			case "$(readlink "/proc/$p/exe" 2>/dev/null)" in
			"$BIN"/*) kill -TERM "$p" 2>/dev/null ;;
			esac
		done <"$AIPBENCH_PIDS"
		sleep 0.5
		while read -r p; do
			case "$(readlink "/proc/$p/exe" 2>/dev/null)" in
			"$BIN"/*) kill -KILL "$p" 2>/dev/null ;;
			esac
		done <"$AIPBENCH_PIDS"
	fi
	if [ -n "$NS" ]; then
		ip netns del "$NS" 2>/dev/null
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fail SECTION MESSAGE: record a real failure of a section.
fail() {
	printf '%s\n' "$2" >"$RES/$1.fail"
	say "FAILED: $1: $2"
	FAILED=1
}
skip() { printf '%s\n' "$2" >"$RES/$1.skip"; }

# run LOG CMD...: run a command, its output appended to LOG; on failure show
# the tail of LOG on stderr.
run() {
	local log=$1
	shift
	if "$@" >>"$log" 2>&1; then
		return 0
	fi
	say "command failed: $*"
	tail -n 20 "$log" | sed 's/^/    /' >&2
	return 1
}

# ---- metadata ----
# Host CPU use, to tell a reader how busy the (shared) machine was: snap
# prints total and idle jiffies of all CPUs; busy_since prints the busy
# percentage since a snap.
snap() {
	local _c u n s i w q sq st
	read -r _c u n s i w q sq st _ </proc/stat
	echo "$((u + n + s + i + w + q + sq + st)) $((i + w))"
}
busy_since() {
	local t0 i0 t1 i1
	read -r t0 i0 <<<"$1"
	read -r t1 i1 <<<"$(snap)"
	if [ $((t1 - t0)) -gt 0 ]; then
		echo "$(((t1 - t0 - (i1 - i0)) * 100 / (t1 - t0)))%"
	else
		echo "n/a"
	fi
}
# section_busy NAME SNAP: record the host's CPU use during a section.
section_busy() { echo "busy_$1=$(busy_since "$2")" >>"$RES/meta.env"; }
S=$(snap)
sleep 1
{
	echo "quick=$QUICK"
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc=$(nproc)"
	echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "busy_before=$(busy_since "$S")"
	echo "goversion=$($GO version | sed 's/^go version //')"
	echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)')"
	echo "uid=$(id -u)"
	echo "engine_count=$ENGINE_COUNT"
	echo "flood_frames=$FRAMES"
	echo "paced_frames=$PACED_FRAMES"
	echo "paced_rate=$PACED_RATE"
	echo "sim_count=$SIM_COUNT"
	echo "tcp_seconds=$TCP_SECONDS"
	echo "crowd=$CROWD"
} >"$RES/meta.env"

# ---- build ----
say "building into $BIN (mode: $([ "$QUICK" = 1 ] && echo quick || echo full))"
BUILD_LOG=$WORK/build.log
build_ok=1
# Everything with -trimpath, so that the dependencies (gVisor) are compiled
# once for all binaries.
run "$BUILD_LOG" "$GO" build -trimpath -ldflags="-s -w" -o "$BIN/autoipd" ./cmd/autoipd || build_ok=0
run "$BUILD_LOG" "$GO" build -trimpath -o "$BIN/autoipd.unstripped" ./cmd/autoipd || build_ok=0
run "$BUILD_LOG" "$GO" build -trimpath -o "$BIN/aipbench" ./bench/aipbench || build_ok=0
run "$BUILD_LOG" "$GO" build -trimpath -o "$BIN/aipbench-hook" ./bench/aipbench/hook || build_ok=0
run "$BUILD_LOG" "$GO" test -c -trimpath -o "$BIN/" ./autoip ./autoip/acd ./internal/integration ./bench ./sim || build_ok=0
if [ "$QUICK" != 1 ]; then
	# A second compile of everything (cgo off changes every package's build).
	run "$BUILD_LOG" env CGO_ENABLED=0 "$GO" build -trimpath -ldflags="-s -w" -o "$BIN/autoipd.nocgo" ./cmd/autoipd || build_ok=0
fi
if [ "$build_ok" != 1 ]; then
	say "build failed; see above"
	exit 1
fi

# tbin NAME PKGDIR ARGS...: run a compiled test binary in its package dir.
tbin() {
	local name=$1 dir=$2
	shift 2
	(cd "$ROOT/$dir" && "$BIN/$name.test" "$@")
}

# ---- binary size ----
say "binary size and imports"
{
	echo "stripped=$(stat -c %s "$BIN/autoipd")"
	echo "unstripped=$(stat -c %s "$BIN/autoipd.unstripped")"
	if [ -f "$BIN/autoipd.nocgo" ]; then
		echo "stripped_nocgo=$(stat -c %s "$BIN/autoipd.nocgo")"
	fi
	if command -v file >/dev/null 2>&1; then
		case "$(file -b "$BIN/autoipd")" in
		*dynamically*) echo "linking=dynamically linked: cgo, for package net" ;;
		*statically*) echo "linking=statically linked" ;;
		*) echo "linking=linking unknown" ;;
		esac
	else
		echo "linking=linking not checked (no file(1))"
	fi
	if deps=$("$GO" list -deps ./cmd/autoipd 2>>"$BUILD_LOG"); then
		gp=$(printf '%s\n' "$deps" | grep gopacket | tr '\n' ' ')
		echo "gopacket=${gp:-none}"
	else
		echo "gopacket=unknown (go list failed)"
	fi
} >"$RES/size.env"

# ---- engine ----
S=$(snap)
say "engine micro-benchmarks (-count $ENGINE_COUNT)"
: >"$RES/engine.txt"
if ! run "$RES/engine.txt" tbin autoip autoip -test.run '^$' -test.bench . -test.benchmem -test.count "$ENGINE_COUNT" ||
	! run "$RES/engine.txt" tbin acd autoip/acd -test.run '^$' -test.bench . -test.benchmem -test.count "$ENGINE_COUNT"; then
	fail engine "go test -bench of ./autoip or ./autoip/acd failed"
fi
section_busy engine "$S"

# ---- the daemon in a namespace: claim, RSS, idle CPU ----
if [ "$IS_ROOT" != 1 ]; then
	for s in claim-rfc claim-fast claim-wait idle; do skip "$s" "needs root"; done
else
	NS=aipb$$
	ns_ok=1
	# One TAP per claim setting and one for the idle daemon.
	setup_ns() {
		ip netns add "$NS" || return 1
		ip -n "$NS" link set lo up || return 1
		ip netns exec "$NS" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || return 1
		for t in aipbc1 aipbc2 aipbc3 aipbi0; do
			ip -n "$NS" tuntap add dev "$t" mode tap || return 1
			ip -n "$NS" link set "$t" up || return 1
		done
	}
	setup_ns 2>"$WORK/ns.log" || ns_ok=0
	if [ "$ns_ok" != 1 ]; then
		for s in claim-rfc claim-fast claim-wait idle; do fail "$s" "could not set up namespace $NS: $(tr '\n' ' ' <"$WORK/ns.log")"; done
	else
		S=$(snap)
		n=1
		for m in rfc:$CLAIM_RFC_REPS fast:$CLAIM_FAST_REPS wait:$CLAIM_WAIT_REPS; do
			mode=${m%%:*} reps=${m#*:}
			say "claim, $mode settings: $reps run(s)"
			if ! ip netns exec "$NS" "$BIN/aipbench" claim -autoipd "$BIN/autoipd" -iface "aipbc$n" -mode "$mode" -reps "$reps" \
				-work "$WORK/daemon" -out "$RES/claim-$mode.json"; then
				fail "claim-$mode" "aipbench claim -mode $mode failed (BENCH_KEEP=1 keeps the daemon logs)"
			fi
			n=$((n + 1))
		done
		section_busy claim "$S"
	fi
fi

# ---- daemon idle: RSS and CPU ----
if [ "$IS_ROOT" = 1 ] && [ "${ns_ok:-0}" = 1 ]; then
	S=$(snap)
	say "daemon bound and idle: RSS after $SETTLE, CPU over $IDLE"
	CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
	export CLK_TCK
	alt=()
	if [ -f "$BIN/autoipd.nocgo" ]; then
		alt=(-alt "$BIN/autoipd.nocgo")
	fi
	if ! ip netns exec "$NS" "$BIN/aipbench" idle -autoipd "$BIN/autoipd" -iface aipbi0 "${alt[@]}" \
		-settle "$SETTLE" -idle "$IDLE" -work "$WORK/daemon" -out "$RES/idle.json"; then
		fail idle "aipbench idle failed (BENCH_KEEP=1 keeps the daemon log)"
	fi
	section_busy idle "$S"
fi

# ---- TAP flood ----
# Interleaved per repetition: the plain reader (blast, drain), the netstack
# path with the ARP fast path on as autoipd runs it (blast, drain) and, in
# full runs, the path with the fast path off (drain). Then the paced runs,
# offered 0.8 x the rate the path sustained above with the sender running.
if [ "$IS_ROOT" != 1 ]; then
	skip flood "needs root"
	skip paced "needs root"
else
	say "TAP flood: $REPS × (plain reader, netstack path$([ "$QUICK" != 1 ] && echo ', path without the fast path')), $FRAMES frames each"
	: >"$RES/flood.txt"
	: >"$RES/rawflood.txt"
	: >"$RES/floodoff.txt"
	export AIP_FLOOD_FRAMES=$FRAMES
	S=$(snap)
	for i in $(seq "$REPS"); do
		say "TAP flood $i/$REPS"
		if ! run "$RES/rawflood.txt" tbin bench bench -test.run '^$' -test.bench TAPRawFlood -test.benchtime 1x; then
			fail flood "BenchmarkTAPRawFlood failed"
			break
		fi
		if ! run "$RES/flood.txt" tbin integration internal/integration -test.run '^$' -test.bench TAPFloodConflictDetection -test.benchtime 1x; then
			fail flood "BenchmarkTAPFloodConflictDetection failed"
			break
		fi
		if [ "$QUICK" != 1 ] && ! AIP_ARP_FASTPATH=0 run "$RES/floodoff.txt" tbin integration internal/integration -test.run '^$' -test.bench TAPFloodConflictDetection/drain -test.benchtime 1x; then
			fail flood "BenchmarkTAPFloodConflictDetection/drain without the fast path failed"
			break
		fi
		{ grep -h '^Benchmark' "$RES/rawflood.txt" | tail -n 2; grep -h '^Benchmark' "$RES/flood.txt" | tail -n 2; } | cut -c1-200 | sed 's/^/    /' >&2
	done
	if [ ! -f "$RES/flood.fail" ]; then
		# The capacity that matters here is what the path sustains while
		# the sender shares the machine with it: the blast runs' rate (the
		# drain rate, the path alone, is not sustainable with a sender on
		# the other CPU).
		CAP=$("$BIN/aipbench" median -file "$RES/flood.txt" -bench BenchmarkTAPFloodConflictDetection/blast -unit frames/s) || CAP=
		if [ -n "${BENCH_PACED_RATE:-}" ]; then
			PACED_RATE=$BENCH_PACED_RATE
		elif [ -n "$CAP" ]; then
			PACED_RATE=$("$BIN/aipbench" median -file "$RES/flood.txt" -bench BenchmarkTAPFloodConflictDetection/blast -unit frames/s -scale 0.8)
		fi
		{
			echo "path_capacity=${CAP:-}"
			echo "paced_rate=$PACED_RATE"
		} >>"$RES/meta.env"
		say "TAP flood paced at $PACED_RATE frames/s (0.8 × the path's rate with the sender running, ${CAP:-?}/s): $REPS × (plain reader, netstack path), $PACED_FRAMES frames each"
		: >"$RES/paced.txt"
		: >"$RES/rawpaced.txt"
		for i in $(seq "$REPS"); do
			say "paced TAP flood $i/$REPS"
			if ! AIP_FLOOD_RATE=$PACED_RATE AIP_FLOOD_FRAMES=$PACED_FRAMES run "$RES/rawpaced.txt" tbin bench bench -test.run '^$' -test.bench 'TAPRawFlood/blast' -test.benchtime 1x; then
				fail paced "BenchmarkTAPRawFlood/blast (paced) failed"
				break
			fi
			if ! AIP_FLOOD_RATE=$PACED_RATE AIP_FLOOD_FRAMES=$PACED_FRAMES run "$RES/paced.txt" tbin integration internal/integration -test.run '^$' -test.bench TAPFloodConflictDetection/blast -test.benchtime 1x; then
				fail paced "BenchmarkTAPFloodConflictDetection (paced) failed"
				break
			fi
			{ grep -h '^Benchmark' "$RES/rawpaced.txt" | tail -n 1; grep -h '^Benchmark' "$RES/paced.txt" | tail -n 1; } | cut -c1-200 | sed 's/^/    /' >&2
		done
	fi
	section_busy flood "$S"
fi

# ---- TCP throughput: netstack on tap.Link vs on gVisor's fdbased ----
if [ "$IS_ROOT" != 1 ]; then
	skip tcp "needs root"
else
	say "TCP throughput: $REPS × (tap.Link, fdbased, veth) × (send, recv), ${TCP_SECONDS} s each"
	: >"$RES/tcp.txt"
	S=$(snap)
	for i in $(seq "$REPS"); do
		say "TCP $i/$REPS"
		if ! AIP_TCP_SECONDS=$TCP_SECONDS run "$RES/tcp.txt" tbin bench bench -test.run '^$' -test.bench TCPThroughput -test.benchtime 1x; then
			fail tcp "BenchmarkTCPThroughput failed"
			break
		fi
		grep -h '^Benchmark' "$RES/tcp.txt" | tail -n 6 | cut -c1-120 | sed 's/^/    /' >&2
	done
	section_busy tcp "$S"
fi

# ---- start-up in a crowd: 20 daemons at once on one bridge ----
if [ "$IS_ROOT" != 1 ] || [ "${ns_ok:-0}" != 1 ]; then
	skip crowd "needs root"
else
	S=$(snap)
	say "start-up: $CROWD daemons at once on one bridge, $CROWD_ROUNDS round(s)"
	if ! ip netns exec "$NS" "$BIN/aipbench" crowd -autoipd "$BIN/autoipd" -n "$CROWD" -rounds "$CROWD_ROUNDS" \
		-work "$WORK/crowd" -out "$RES/crowd.json"; then
		fail crowd "aipbench crowd failed (BENCH_KEEP=1 keeps the daemon logs)"
	fi
	section_busy crowd "$S"
fi

# ---- simulator ----
S=$(snap)
say "simulator boot storms (-count $SIM_COUNT)"
: >"$RES/sim.txt"
if ! run "$RES/sim.txt" tbin sim sim -test.run '^$' -test.bench BootStorm -test.benchtime 1x -test.count "$SIM_COUNT"; then
	fail sim "BenchmarkBootStorm failed"
fi
section_busy sim "$S"
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/meta.env"

# ---- the table ----
say "done; the table follows on stdout"
if ! "$BIN/aipbench" table -dir "$RES"; then
	say "printing the table failed"
	exit 1
fi
if [ "$FAILED" != 0 ]; then
	say "some measurements FAILED (see the table and the messages above)"
	exit 1
fi
exit 0
