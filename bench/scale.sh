#!/usr/bin/env bash
# Scale (issue 20): N host-mode agents on the loopback of a network namespace this script
# creates, one process each, pairs of 4, all started together, for N = 16, 64, 256 (and
# 512 with SCALE_512=1: 512 processes on a shared machine take minutes). Per N: the
# time until every node decided, CPU per agent and for all together (% of one core) and
# datagrams sent per agent per second in steady state (a window of SCALE_WINDOW seconds
# after the decisions), mean RSS per agent, and the time until every other node marks a
# killed node lost. Until the boot decision the probing is all-to-all (paced HELLO rounds);
# after it the membership (SWIM) watches the nodes outside each pair, so the steady-state
# figures per agent should not grow with N (issue 20's goal: within 1.5x of N=16 at 512).
# The peer: the issue's table (64 nodes, 8 × 8: 0.94 % CPU and 293 datagrams/s per agent).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
export BUILD
. tests/integration/lib-scale.sh
WINDOW=${SCALE_WINDOW:-10}
SIZES="16 64 256"
[ -n "${SCALE_512:-}" ] && SIZES="$SIZES 512"
[ -n "${SCALE_SIZES:-}" ] && SIZES=$SCALE_SIZES
declare -A R=()

# one N: fills R[cpu_N] R[total_N] R[dgrams_N] R[decide_N] R[rss_N] R[dead_N]
one() {
	local n=$1 t0
	sc_netns "compartd-scale-$n-$$"
	t0=$(date +%s%N)
	sc_start "$n"
	sc_wait_decided $((60 + n / 2)) >/dev/null || sc_fail "$(sc_count_decided) of $n nodes decided"
	R[decide_$n]=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	sleep 2 # past the decision's hooks and the first health round
	read -r R[cpu_$n] R[total_$n] R[dgrams_$n] <<<"$(sc_steady "$WINDOW")"
	R[rss_$n]=$(sc_rss_kib)
	R[drops_$n]=$(sc_udp RcvbufErrors)
	R[dead_$n]=$(sc_detect_dead "$n" 30) || R[dead_$n]=">30"
	printf '%4d nodes: decided %6ss  cpu/agent %5s %%  all %7s %%  dgrams/s/agent %8s  rss %6s KiB  dead known to all %5ss  udp rcvbuf drops %s\n' \
		"$n" "${R[decide_$n]}" "${R[cpu_$n]}" "${R[total_$n]}" "${R[dgrams_$n]}" "${R[rss_$n]}" \
		"${R[dead_$n]}" "${R[drops_$n]}"
	sc_cleanup
	SC_TMP=$(mktemp -d /tmp/compartd-scale.XXXXXX)
}

echo "SWIM membership after the decision, handshake_timeout 500 ms, window ${WINDOW}s; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for n in $SIZES; do one "$n"; done
big=$(echo "$SIZES" | tr ' ' '\n' | tail -n1)
echo "(issue 20's table, 64 nodes 8 × 8 without a namespace: 0.94 % CPU and 293 datagrams/s per agent)"
echo "result: cpu_pct_16=${R[cpu_16]:-} cpu_pct_$big=${R[cpu_$big]:-} dgrams_16=${R[dgrams_16]:-} dgrams_$big=${R[dgrams_$big]:-} decide_${big}_s=${R[decide_$big]:-} detect_dead_${big}_s=${R[dead_$big]:-} rss_kib_$big=${R[rss_$big]:-}"
