# shellcheck shell=bash
# Helpers for the scale tests (sourced by tests/integration/83-hs-256.sh and bench/scale.sh):
# N host-mode agents, one process each, in pairs of 4 (two nodes per compartment), inside a
# network namespace the caller creates with sc_netns. Node i (1..N) is "n<i>" with the
# handshake address 127.1.<(i-1)/250>.<(i-1)%250+1> on the namespace's loopback; its log is
# $SC_TMP/n<i>.log, its state directory $SC_TMP/n<i>. Every wait is bounded.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
SC_TMP=$(mktemp -d /tmp/compartd-scale.XXXXXX)
SC_NS=""
SC_PIDS=()
SC_N=0

sc_cleanup() {
	sc_stop
	[ -n "$SC_NS" ] && ip netns del "$SC_NS" 2>/dev/null
	SC_NS=""
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$SC_TMP"
}
trap sc_cleanup EXIT

sc_fail() {
	echo "FAIL: $*"
	local shown=0 f
	for f in "$SC_TMP"/n*.log; do
		[ -f "$f" ] || continue
		grep -q 'event=decision' "$f" && continue
		echo "---- $f (no decision)"
		tail -n 15 "$f"
		shown=$((shown + 1))
		[ $shown -ge 3 ] && break
	done
	exit 1
}

# sc_netns NAME: creates the namespace with its loopback up; 77 (skip) when it cannot, a
# failure under CI=true.
sc_netns() {
	if ! ip netns add "$1" 2>/dev/null; then
		[ "${CI:-}" = true ] && sc_fail "cannot create a network namespace (CI: no skipping)"
		echo "SKIP: cannot create a network namespace"
		exit 77
	fi
	SC_NS=$1
	ip -n "$SC_NS" link set lo up || sc_fail "cannot bring up lo in $SC_NS"
}

sc_addr() {
	local i=$(($1 - 1))
	echo "127.1.$((i / 250)).$((i % 250 + 1))"
}

# sc_conf N [extra [timeouts] lines]: the cluster.conf of N nodes (N a multiple of 4).
sc_conf() {
	local n=$1 extra=${2:-} pairs=$(($1 / 4)) i
	printf '[cluster]\nname = scale\nkey_file = %s\nrules = %s\nport = 7460\n' \
		"$REPO/images/rig/cluster.key" "$REPO/rules/boot.rules"
	printf '\n[quorum]\nmode = none\n'
	for ((i = 0; i < pairs; i++)); do
		printf '\n[pair p%d]\n\n[compartment p%da]\nzone = mz\npair = p%d\n' $i $i $i
		printf '\n[compartment p%db]\nzone = dmz\npair = p%d\n' $i $i
	done
	for ((i = 0; i < n; i++)); do
		local c=$((i / 2)) # compartment index: pair c/2, side c%2
		printf '\n[node n%d]\ncompartment = p%d%s\npriority = %d\nmgmt_capable = %s\nhandshake = %s\n' \
			$((i + 1)) $((c / 2)) "$([ $((c % 2)) = 0 ] && echo a || echo b)" $((100 + i)) \
			"$([ $((c % 2)) = 0 ] && echo yes || echo no)" "$(sc_addr $((i + 1)))"
	done
	printf '\n[timeouts]\n%b' "$extra"
}

# sc_start N [extra timeouts]: writes the config and starts N agents inside $SC_NS, all
# together. One launcher inside the namespace forks them (an `ip netns exec` per agent
# took 32 s for 256 on the loaded machine); each stops itself before it becomes the
# agent, and all are continued at once when the last one is there (agents already running
# would slow the starting of the rest). The agents run from its return.
sc_start() {
	local n=$1 i p
	SC_N=$n
	sc_conf "$n" "${2:-}" >"$SC_TMP/cluster.conf"
	"$BUILD/compartd" check-config "$SC_TMP/cluster.conf" >"$SC_TMP/check.txt" 2>&1 ||
		sc_fail "the generated configuration is refused: $(tail -n 3 "$SC_TMP/check.txt")"
	for ((i = 1; i <= n; i++)); do mkdir -p "$SC_TMP/n$i"; done
	# shellcheck disable=SC2016 # expanded by the launcher
	ip netns exec "$SC_NS" bash -c '
		n=$1 tmp=$2 bin=$3
		for ((i = 1; i <= n; i++)); do
			(kill -STOP $BASHPID; exec "$bin" run --foreground --config "$tmp/cluster.conf" \
				--node "n$i" --state-dir "$tmp/n$i" >"$tmp/n$i.log" 2>&1) &
			echo $!
		done' launcher "$n" "$SC_TMP" "$BUILD/compartd" >"$SC_TMP/pids" ||
		sc_fail "the launcher failed"
	mapfile -t SC_PIDS <"$SC_TMP/pids"
	[ ${#SC_PIDS[@]} = "$n" ] || sc_fail "${#SC_PIDS[@]} of $n agents forked"
	for p in "${SC_PIDS[@]}"; do # bounded: 30 s for each to stop itself
		for ((i = 0; i < 300; i++)); do
			local st=""
			read -r st <"/proc/$p/stat" 2>/dev/null || sc_fail "agent process $p exited before it started"
			st=${st##*) }
			[ "${st%% *}" = T ] && break
			sleep 0.1
		done
	done
	kill -CONT "${SC_PIDS[@]}"
}

# sc_stop: stops the agents (the namespace stays for its counters).
sc_stop() {
	local p i t0
	t0=$(date +%s%N)
	for p in "${SC_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	# bounded: agents stop within a second; whatever is left after 10 s is killed
	for ((i = 0; i < 100; i++)); do
		local alive=0
		for p in "${SC_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1 && break; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${SC_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ ${#SC_PIDS[@]} -gt 0 ] && echo "stopped ${#SC_PIDS[@]} agents in $((($(date +%s%N) - t0) / 1000000)) ms"
	SC_PIDS=()
}

# sc_count_decided: how many logs have a boot decision.
sc_count_decided() {
	grep -l 'event=decision' "$SC_TMP"/n*.log 2>/dev/null | wc -l
}

# sc_wait_decided SECONDS: waits until every node decided; prints the seconds it took
# (from the call), returns 1 on time-out.
sc_wait_decided() {
	local secs=$1 t0 now
	t0=$(date +%s%N)
	while :; do
		[ "$(sc_count_decided)" -ge "$SC_N" ] && break
		now=$(date +%s%N)
		[ $(((now - t0) / 1000000000)) -ge "$secs" ] && return 1
		local p
		for p in "${SC_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || sc_fail "agent $p exited"; done
		sleep 0.5
	done
	now=$(date +%s%N)
	printf '%d.%02d\n' $(((now - t0) / 1000000000)) $(((now - t0) / 10000000 % 100))
}

# sc_bad_lines: log lines saying something legal was not kept (full tables, drops, cuts).
sc_bad_lines() {
	grep -HEi 'No space left|dropped|truncat|more than [0-9]+ ' "$SC_TMP"/n*.log | head -n 20
}

# sc_udp FIELD: the namespace's UDP counter FIELD (InDatagrams, OutDatagrams, RcvbufErrors…),
# read through a running agent's /proc/PID/net (an `ip netns exec` takes seconds under load).
sc_udp() {
	local p src=""
	for p in "${SC_PIDS[@]}"; do
		[ -r "/proc/$p/net/snmp" ] && src=/proc/$p/net/snmp && break
	done
	[ -n "$src" ] || { ip netns exec "$SC_NS" cat /proc/net/snmp; } >"$SC_TMP/snmp"
	awk -v f="$1" '
		$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
		$1 == "Udp:" && h { print $col[f]; exit }' "${src:-$SC_TMP/snmp}"
}

# sc_cpu_ticks: utime + stime of every agent, in clock ticks. Builtins only: a fork per
# agent takes minutes when 256 agents keep the machine busy.
sc_cpu_ticks() {
	local p t=0 line f
	for p in "${SC_PIDS[@]}"; do
		read -r line <"/proc/$p/stat" 2>/dev/null || continue
		read -ra f <<<"${line##*) }"
		t=$((t + f[11] + f[12]))
	done
	echo $t
}

# sc_rss_kib: the mean resident set of the agents, KiB (builtins only, as above).
sc_rss_kib() {
	local p t=0 k=0 rss
	for p in "${SC_PIDS[@]}"; do
		read -r _ rss _ <"/proc/$p/statm" 2>/dev/null || continue
		t=$((t + rss))
		k=$((k + 1))
	done
	echo $((k ? t * $(getconf PAGESIZE) / 1024 / k : 0))
}

# sc_steady SECONDS: prints "cpu_pct_per_agent cpu_pct_total dgrams_per_agent_s" over a
# window of SECONDS (datagrams sent by all agents / N / s).
sc_steady() {
	local secs=$1 c0 c1 o0 o1 t0 t1 hz
	hz=$(getconf CLK_TCK)
	c0=$(sc_cpu_ticks)
	o0=$(sc_udp OutDatagrams)
	t0=$(date +%s%N)
	sleep "$secs"
	c1=$(sc_cpu_ticks)
	o1=$(sc_udp OutDatagrams)
	t1=$(date +%s%N)
	local ms=$(((t1 - t0) / 1000000))
	# percent of one core, two decimals, as integer arithmetic on hundredths
	local tot=$(((c1 - c0) * 100 * 100 * 1000 / hz / ms))
	local per=$((tot / SC_N))
	local dg=$(((o1 - o0) * 1000 * 100 / ms / SC_N))
	printf '%d.%02d %d.%02d %d.%02d\n' $((per / 100)) $((per % 100)) $((tot / 100)) $((tot % 100)) \
		$((dg / 100)) $((dg % 100))
}

# sc_detect_dead I SECONDS: SIGKILLs node I; prints the seconds until every other node's
# log says it is lost (a `state=lost` line for it written after the kill), returns 1 on
# time-out. One python process follows the logs from their ends (at 256 nodes peers flap,
# so earlier `lost` lines do not count, and the logs are megabytes).
sc_detect_dead() {
	python3 - "$1" "$2" "${SC_PIDS[$(($1 - 1))]}" "$SC_TMP" "$SC_N" <<'PY'
import os, signal, sys, time
node, secs, pid, tmp, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
pat = b"event=peer node=n%d state=lost" % node
files = {}
for i in range(1, n + 1):
    if i != node:
        f = open("%s/n%d.log" % (tmp, i), "rb")
        f.seek(0, os.SEEK_END)
        files[i] = [f, b""]
os.kill(pid, signal.SIGKILL)
t0 = time.monotonic()
while files and time.monotonic() - t0 < secs:
    for i in list(files):
        f, rest = files[i]
        data = rest + f.read()
        lines = data.split(b"\n")
        files[i][1] = lines[-1]
        if any(pat in l for l in lines[:-1]):
            del files[i]
    if files:
        time.sleep(0.05)
if files:
    sys.exit(1)
print("%.2f" % (time.monotonic() - t0))
PY
}
