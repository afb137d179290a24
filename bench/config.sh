#!/usr/bin/env bash
# Configuration distribution (SPEC §2a): `compartctl config push` on one node until every
# node runs the new version, for 4 and for 64 host-mode agents on loopback (one process
# each), and the bytes each node sent for the transfer (asking and serving, datagram
# headers and tags included), so that growth with the cluster's size is visible.
# The peer: corosync's `pcs cluster sync` copies corosync.conf to every node over ssh, by
# hand; dracut and Ignition read their configuration once. Pairs: cluster.conf has at
# most 8 pairs, so 4 nodes are 1 pair and 64 nodes are 8 pairs of 8 (4 per compartment).
set -u
BUILD=${1:-build}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
tmp=$(mktemp -d /tmp/compartd-bench-config.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
PORT=${PORT:-7571}

# conf N VERSION: a cluster of N nodes n1..nN on 127.0.3.1..N.
conf() {
	local n=$1 v=$2 pairs=$(($1 / 4 > 8 ? 8 : $1 / 4)) i
	local per=$((n / (2 * pairs)))
	printf '[cluster]\nname = bench\nkey_file = %s\nrules = %s\nport = %d\nversion = %d\n' \
		"$REPO/images/rig/cluster.key" "$REPO/rules/boot.rules" "$PORT" "$v"
	printf '\n[quorum]\nmode = none\n'
	for ((i = 0; i < pairs; i++)); do
		printf '\n[pair p%d]\n\n[compartment p%da]\nzone = mz\npair = p%d\n' $i $i $i
		printf '\n[compartment p%db]\nzone = dmz\npair = p%d\n' $i $i
	done
	for ((i = 0; i < n; i++)); do
		local c=$((i / per)) # compartment index: pair c/2, side c%2
		printf '\n[node n%d]\ncompartment = p%d%s\npriority = %d\nhandshake = 127.0.3.%d\n' \
			$((i + 1)) $((c / 2)) "$([ $((c % 2)) = 0 ] && echo a || echo b)" $((100 + i)) $((i + 1))
	done
	printf '\n[timeouts]\nhandshake_window = 2s\n'
}

# run N: prints "push_s bytes_per_node"
run() {
	local n=$1 i
	local d=$tmp/c$n
	mkdir -p "$d"
	conf "$n" 1 >"$d/v1.conf"
	conf "$n" 2 >"$d/v2.conf"
	"$BUILD/compartd" check-config "$d/v2.conf" >/dev/null || { echo "bad generated config" >&2; exit 1; }
	for ((i = 1; i <= n; i++)); do
		cp "$d/v1.conf" "$d/n$i.conf"
		mkdir -p "$d/n$i"
		"$BUILD/compartd" run --foreground --config "$d/n$i.conf" --node "n$i" \
			--state-dir "$d/n$i" >"$d/n$i.log" 2>&1 &
		pids+=($!)
	done
	# every node contacted by n1 (bounded: 120 s)
	for ((i = 0; i < 1200; i++)); do
		"$BUILD/compartctl" --socket "$d/n1/console.sock" peers --json 2>/dev/null |
			grep -q "\"contacted\":$((n - 1))[,}]" && break
		sleep 0.1
	done
	[ "$i" -lt 1200 ] || { echo "n1 did not contact all $((n - 1)) peers" >&2; exit 1; }
	local t0
	t0=$(date +%s%N)
	"$BUILD/compartctl" --socket "$d/n1/console.sock" config push "$d/v2.conf" >/dev/null ||
		{ echo "push refused" >&2; exit 1; }
	for ((i = 0; i < 6000; i++)); do # bounded: 300 s
		[ "$(grep -l 'event=config action=applied version=2' "$d"/n*.log 2>/dev/null | wc -l)" -ge $((n - 1)) ] && break
		sleep 0.05
	done
	local t1
	t1=$(date +%s%N)
	[ "$i" -lt 6000 ] || { echo "not every node applied version 2" >&2; exit 1; }
	local total=0 j
	for ((i = 1; i <= n; i++)); do
		j=$("$BUILD/compartctl" --socket "$d/n$i/console.sock" config --json)
		a=$(echo "$j" | grep -o '"asking":[0-9]*' | cut -d: -f2)
		s=$(echo "$j" | grep -o '"serving":[0-9]*' | cut -d: -f2)
		total=$((total + a + s))
	done
	local size
	size=$(stat -c %s "$d/v2.conf")
	awk -v t0="$t0" -v t1="$t1" -v b="$total" -v n="$n" -v sz="$size" \
		'BEGIN { printf "%.3f %d %d\n", (t1 - t0) / 1e9, b / n, sz }'
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	pids=()
}

read -r p4 b4 s4 <<<"$(run 4)" || exit 1
echo "4 nodes: every node runs the pushed version after ${p4}s; $b4 bytes sent per node (file $s4 bytes)"
read -r p64 b64 s64 <<<"$(run 64)" || exit 1
echo "64 nodes: every node runs the pushed version after ${p64}s; $b64 bytes sent per node (file $s64 bytes)"
echo "(pcs cluster sync: one ssh copy per node, by hand; no figure on this host)"
echo "result: push_4_s=$p4 push_64_s=$p64 bytes_per_node=$b64 bytes_per_node_4=$b4"
