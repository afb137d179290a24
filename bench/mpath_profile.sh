#!/usr/bin/env bash
# Where a multipath request's time goes in the agent, counted on the host (no emulation:
# the counts per request are what the rig guest pays, each syscall and copy emulated there).
# Two tgtd on 127.0.0.1/127.0.0.2 serve one backing file (as test 70); `compartd storage
# serve` exports it on its NBD socket; qemu-img bench drives it (O_DIRECT through NBD);
# strace -c attached to the agent for each phase counts its system calls. Per phase it
# prints the calls per request by name and the total, and the TCP segments the host sent
# per request (nstat TcpOutSegs: both directions of both sessions).
# Settings: SEQ_MIB (64), RAND_OPS (4000). Root (tgtd), under /work/heavy.lock.
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
cd "$(dirname "$0")/.."
. tests/integration/iscsi-lib.sh
SEQ_MIB=${SEQ_MIB:-64}
RAND_OPS=${RAND_OPS:-4000}
iscsi_test_init serve.log console.sock
base=${PROFILE_PORT:-14260}
truncate -s 256M "$tmp/lu.img"
tgt_pair "$base" "$tmp/lu.img"
write_conf "$tmp/c.conf" "$base"
serve_start "$tmp/c.conf"
wait_for 'event=storage name=lu0 .*paths=2/2' 15
wait_for 'nbd lu0: serving on' 5

# phase NAME REQUESTS qemu-img-bench-args...
phase() {
	local name=$1 n=$2
	shift 2
	timeout 120 strace -c -f -p "$SERVE_PID" -o "$tmp/strace-$name" &
	local st=$!
	sleep 0.5
	local t0 t1
	local segs0 segs1
	segs0=$(nstat -az TcpOutSegs | awk '$1 == "TcpOutSegs" { print $2 }')
	t0=$(date +%s.%N)
	timeout 120 qemu-img bench -f raw -t none -n "$@" "$(nbd_url)" >"$tmp/bench-$name" 2>&1 ||
		{ cat "$tmp/bench-$name"; kill -INT "$st"; return 1; }
	t1=$(date +%s.%N)
	segs1=$(nstat -az TcpOutSegs | awk '$1 == "TcpOutSegs" { print $2 }')
	sleep 0.3
	kill -INT "$st"
	wait "$st" 2>/dev/null || true
	echo "== $name: $n requests, $(echo "$t1 - $t0" | bc) s under strace; system calls per request:"
	awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
		printf "  %-14s %8.2f\n", $NF, $4 / n }' "$tmp/strace-$name" |
		sort -k2 -n -r | head -n 12
	awk -v n="$n" '$NF == "total" { printf "  %-14s %8.2f\n", "total", $4 / n }' "$tmp/strace-$name"
	# every TCP segment the host sent meanwhile (both ends of both sessions, loopback MTU)
	echo "$segs0 $segs1 $n" | awk '{ printf "  %-14s %8.2f\n", "tcp segments", ($2 - $1) / $3 }'
}
phase seq-write-1M "$SEQ_MIB" -w -s 1M -c "$SEQ_MIB" -d 8
phase seq-read-1M "$SEQ_MIB" -s 1M -c "$SEQ_MIB" -d 8
phase rand-read-4k "$RAND_OPS" -s 4k -c "$RAND_OPS" -d 32
phase rand-write-4k "$RAND_OPS" -w -s 4k -c "$RAND_OPS" -d 32
ctl paths
# the agent's peak RSS over the phases (8 x 1 MiB or 32 x 4 KiB in flight)
rss=$(awk '/^VmHWM:/ { print $2 }' /proc/$SERVE_PID/status)
echo "agent peak RSS: $rss KiB"
# the last line: system calls per request of each phase (the strace totals above)
res="result:"
for name in seq-write-1M seq-read-1M rand-read-4k rand-write-4k; do
	per=$(awk '$NF == "total" { print $4 }' "$tmp/strace-$name")
	n=$SEQ_MIB
	case $name in rand-*) n=$RAND_OPS ;; esac
	res+=" syscalls_${name//-/_}=$(echo "$per $n" | awk '{ printf "%.2f", $1 / $2 }')"
done
echo "$res rss_kib=$rss"
