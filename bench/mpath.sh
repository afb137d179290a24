#!/usr/bin/env bash
# Multipath benchmark on the host: tgtd on 127.0.0.1 and 127.0.0.2 serving one backing
# file, `compartd storage serve` exporting it over its NBD unix socket, qemu-img/qemu-io
# as the client. Figures: sequential throughput (1 MiB requests, 8 in flight, a write pass
# then a read pass) and 4 KiB random IOPS (32 in flight) over 1 path and over 2 paths
# (round-robin); the longest I/O stall seen by a client when a path dies (tgtd killed:
# the session drops) and when a path hangs (tgtd stopped: only path_timeout notices).
# The kernel initiator with dm-multipath needs the QEMU rig (no iSCSI initiator or dm in
# the host kernel): those figures are printed as n/a with the reason.
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=$(cd "$BUILD" && pwd)
tmp=$(mktemp -d)
. tests/integration/iscsi-lib.sh
cleanup() {
	iscsi_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT

base=13310
SIZE_MB=256
SEQ_REQS=$SIZE_MB
RAND_OPS=4096
now() { date +%s.%N; }

truncate -s ${SIZE_MB}M "$tmp/lu.img"
tgt_pair $base "$tmp/lu.img"

# Configs: the same LU through portal a only, and through both portals.
write_conf "$tmp/2path.conf" $base
grep -v "^portal = b " "$tmp/2path.conf" >"$tmp/1path.conf"

# Fill the LU once so that reads move real data.
serve_start "$tmp/2path.conf"
wait_for 'event=storage name=lu0 .*paths=2/2' 15 >/dev/null
head -c ${SIZE_MB}M /dev/urandom >"$tmp/fill"
qemu-img convert -n -f raw -O raw "$tmp/fill" "$(nbd_url)"
rm -f "$tmp/fill"
serve_stop

# rand_script OP: 4 KiB requests at random aligned offsets, 32 in flight per batch.
rand_script() {
	local op=$1 pat=
	[ "$op" = aio_write ] && pat="-P 0x5a"
	for ((b = 0; b < RAND_OPS / 32; b++)); do
		for ((i = 0; i < 32; i++)); do
			echo "$op -q $pat $(((RANDOM * 32768 + RANDOM) % (SIZE_MB * 256) * 4096)) 4k"
		done
		echo aio_flush
	done
}
rand_script aio_read >"$tmp/rand-read.cmd"
rand_script aio_write >"$tmp/rand-write.cmd"

# bench_seq: prints MB/s over a write pass and a read pass.
bench_seq() {
	local t0 t1 t2
	t0=$(now)
	qemu-img bench -f raw -t none -w -c $SEQ_REQS -d 8 -s 1M "$(nbd_url)" >/dev/null
	t1=$(now)
	qemu-img bench -f raw -t none -c $SEQ_REQS -d 8 -s 1M "$(nbd_url)" >/dev/null
	t2=$(now)
	local w r
	w=$(echo "scale=1; $SEQ_REQS * 1.048576 / ($t1 - $t0)" | bc)
	r=$(echo "scale=1; $SEQ_REQS * 1.048576 / ($t2 - $t1)" | bc)
	echo "$w $r $(echo "scale=1; 2 * $SEQ_REQS * 1.048576 / ($t2 - $t0)" | bc)"
}

bench_rand() {
	local f=$1 t0 t1
	t0=$(now)
	qemu-io -f raw -t none "$(nbd_url)" <"$f" >"$tmp/rand.out" 2>&1
	t1=$(now)
	if grep -q 'failed' "$tmp/rand.out"; then
		echo "random I/O failed" >&2
		return 1
	fi
	echo "scale=0; $RAND_OPS / ($t1 - $t0)" | bc
}

declare -A R
for n in 1 2; do
	: >"$tmp/serve.log"
	MARK=0
	serve_start "$tmp/${n}path.conf"
	wait_for "event=storage name=lu0 .*paths=$n/$n" 15 >/dev/null
	read -r w r s < <(bench_seq)
	R[seq_w_$n]=$w R[seq_r_$n]=$r R[seq_$n]=$s
	R[rand_r_$n]=$(bench_rand "$tmp/rand-read.cmd")
	R[rand_w_$n]=$(bench_rand "$tmp/rand-write.cmd")
	"$BUILD/compartctl" --socket "$tmp/console.sock" paths
	serve_stop
done

# The longest stall: 64 KiB writes and verifying reads one at a time; qemu-io reports how
# long each took. A path dies 1s in (the run lasts several seconds). The longest single request is the stall.
op_secs() {
	# "64 KiB, 1 ops; 0:00:01.40 (…)" or "…; 00.03 sec (…)": seconds of each request.
	sed -n 's/.* ops; \([0-9:.]*\).*/\1/p' "$1" |
		awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'
}
stall_run() {
	local how=$1
	: >"$tmp/serve.log"
	MARK=0
	serve_start "$tmp/2path.conf"
	wait_for 'event=storage name=lu0 .*paths=2/2' 15 >/dev/null
	for ((i = 0; i < 3000; i++)); do
		echo "write -P $((i % 250 + 1)) $((i % 1024 * 65536)) 64k"
		echo "read -P $((i % 250 + 1)) $((i % 1024 * 65536)) 64k"
	done >"$tmp/stall.cmd"
	qemu-io -f raw "$(nbd_url)" <"$tmp/stall.cmd" >"$tmp/stall-$how.out" 2>&1 &
	local q=$!
	sleep 1
	mark
	if [ "$how" = kill ]; then
		kill -9 "${TGT_PID[a]}"
	else
		kill -STOP "${TGT_PID[a]}"
	fi
	wait_for "portal=127.0.0.1:$base state=failed" 10 >/dev/null
	grep "portal=127.0.0.1:$base state=failed" "$tmp/serve.log" | tail -1
	sleep 1
	tgt_kill a
	wait "$q" || true
	tgt_start a 127.0.0.1 $base $((base + 1)) "$tmp/lu.img" compartd-lu0 CMPT0001
	if grep -q 'failed\|verification' "$tmp/stall-$how.out"; then
		echo "I/O error during the $how run:"
		grep 'failed\|verification' "$tmp/stall-$how.out" | head -3
	fi
	op_secs "$tmp/stall-$how.out" | sort -n | tail -1 >"$tmp/stall-$how"
	echo "$how: $(op_secs "$tmp/stall-$how.out" | wc -l) requests, longest $(cat "$tmp/stall-$how")s"
	serve_stop
}
stall_run kill
stall_run stop
R[stall_kill]=$(printf '%.2f' "$(cat "$tmp/stall-kill")")
R[stall_hang]=$(printf '%.2f' "$(cat "$tmp/stall-stop")")

# ---- the rig: the same LU through the kernel (/dev/nbd0) in a QEMU guest ----
# One node, mirror0 on both portals (the rig's tgtd serves both); 1 path = leg b down.
# The guest is emulated (no KVM here), so its figures are far below the host's.
rig_bench() {
	. "$top/images/rig/lib.sh"
	(rig_require) >/dev/null 2>&1 || { echo "rig cannot run here"; return 1; }
	rig_require
	RIG_LOGS=$tmp/rig-logs
	rig_init
	trap 'rig_down; cleanup' EXIT
	rig_up >/dev/null
	rig_node_start a1 2>/dev/null
	rig_wait_for a1 'event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=2/2' 150 >/dev/null
	rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
	# busybox dd prints no rate: the guest stamps /proc/uptime around each pass.
	local up='cut -d" " -f1 /proc/uptime'
	local seq="a=\$($up); dd if=/dev/zero of=/dev/nbd0 bs=1M count=64 conv=fsync 2>/dev/null; b=\$($up); echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/nbd0 of=/dev/null bs=1M count=64 2>/dev/null; c=\$($up); echo T \$a \$b \$c"
	local n out
	for n in 2 1; do
		if [ $n = 1 ]; then
			rig_mark a1
			rig_storage_link b down 2>/dev/null
			rig_wait_for a1 'portal=10.77.2.100:3260 state=failed' 20 >/dev/null
		fi
		out=$(rig_sh a1 "$seq" 120)
		R[rig_seq_$n]=$(awk '/^T / { w = 64 * 1.048576 / ($3 - $2); r = 64 * 1.048576 / ($4 - $3); printf "%.1f", (w + r) / 2 }' <<<"$out")
		echo "rig, $n path(s): $(tr '\n' ' ' <<<"$out")-> ${R[rig_seq_$n]} MB/s (mean of write and read)"
		[ -n "${R[rig_seq_$n]}" ] || R[rig_seq_$n]=n/a
	done
	rig_mark a1
	rig_storage_link b up 2>/dev/null
	rig_wait_for a1 'portal=10.77.2.100:3260 state=reinstated' 30 >/dev/null
	# The stall: O_DIRECT 64 KiB writes in a loop, each completion stamped from
	# /proc/uptime; leg b goes down for 3s (leg a would cut both of a1's paths: the rig's
	# storage namespace answers compartment a through leg a).
	rig_sh a1 "dd if=/dev/urandom of=/tmp/w bs=64k count=1 2>/dev/null; rm -f /tmp/stop; printf '%s\n' 'while [ ! -e /tmp/stop ]; do dd if=/tmp/w of=/dev/nbd0 bs=64k seek=9 oflag=direct 2>/dev/null || echo ERR; cut -d\" \" -f1 /proc/uptime; done' >/tmp/st.sh; setsid sh /tmp/st.sh </dev/null >/tmp/st.log 2>&1 & sleep 1" 30 >/dev/null
	sleep 3
	rig_mark a1
	rig_storage_link b down 2>/dev/null
	rig_wait_for a1 'portal=10.77.2.100:3260 state=failed' 20 >/dev/null
	sleep 3
	rig_storage_link b up 2>/dev/null
	rig_wait_for a1 'portal=10.77.2.100:3260 state=reinstated' 30 >/dev/null
	rig_sh a1 'touch /tmp/stop; sleep 1; cat /tmp/st.log' 60 >"$tmp/rig-stall.log"
	local errs
	errs=$(grep -c ERR "$tmp/rig-stall.log" || true)
	out=$(awk '/^[0-9]/ { if (n++) { d = $1 - p; if (d > m) m = d }; p = $1 } END { printf "STALL %.2f %d\n", m, n }' "$tmp/rig-stall.log")
	echo "rig stall run: $out (writes, longest gap), $errs I/O errors"
	R[rig_stall]=$(sed -n 's/^STALL \([0-9.]*\) .*/\1/p' <<<"$out")
	rig_down >/dev/null 2>&1
	trap cleanup EXIT
}
R[rig_seq_1]=n/a R[rig_seq_2]=n/a R[rig_stall]=n/a
if [ -f "$top/images/rig/lib.sh" ] && [ -z "${NO_RIG:-}" ]; then
	rig_bench || echo "rig figures: n/a (the rig did not run)"
else
	echo "rig figures: n/a: the QEMU rig (images/rig/lib.sh) is not in this tree"
fi
# The longest of the measured stalls (host kill, host hang, rig leg down when it ran).
stall=$(printf '%s\n' "${R[stall_kill]}" "${R[stall_hang]}" "${R[rig_stall]}" |
	awk '/^[0-9.]+$/ && $1 > m { m = $1 } END { printf "%.2f", m }')
speedup=$(echo "scale=2; ${R[seq_2]} / ${R[seq_1]}" | bc)

printf '\n%-34s %12s %12s %14s\n' "host, tgtd on loopback" "1 path" "2 paths" "dm-multipath"
printf '%-34s %12s %12s %14s\n' "sequential write MB/s (1M, qd8)" "${R[seq_w_1]}" "${R[seq_w_2]}" n/a
printf '%-34s %12s %12s %14s\n' "sequential read MB/s (1M, qd8)" "${R[seq_r_1]}" "${R[seq_r_2]}" n/a
printf '%-34s %12s %12s %14s\n' "sequential write+read MB/s" "${R[seq_1]}" "${R[seq_2]}" n/a
printf '%-34s %12s %12s %14s\n' "random 4k read IOPS (qd32)" "${R[rand_r_1]}" "${R[rand_r_2]}" n/a
printf '%-34s %12s %12s %14s\n' "random 4k write IOPS (qd32)" "${R[rand_w_1]}" "${R[rand_w_2]}" n/a
printf '%-34s %12s %12s %14s\n' "rig guest /dev/nbd0 seq MB/s" "${R[rig_seq_1]}" "${R[rig_seq_2]}" n/a
printf '%-34s %12s\n' "longest stall, tgtd killed (s)" "${R[stall_kill]}"
printf '%-34s %12s   (path_timeout 2s)\n' "longest stall, tgtd stopped (s)" "${R[stall_hang]}"
printf '%-34s %12s   (path_timeout 2s)\n' "longest stall, rig leg down (s)" "${R[rig_stall]}"
echo "dm-multipath: n/a: the host kernel has no iSCSI initiator or device-mapper, and the rig"
echo "has no comparison image (open-iscsi iscsistart + multipath-tools) to boot a guest with."
rand2=$(((${R[rand_r_2]} + ${R[rand_w_2]}) / 2))
echo "result: stall_s=$stall stall_dm_s=n/a seq_1path_mbs=${R[seq_1]} seq_2path_mbs=${R[seq_2]} seq_dm_mbs=n/a rand4k_2path_iops=$rand2 rand4k_dm_iops=n/a rr_speedup=$speedup rig_stall_s=${R[rig_stall]} rig_seq_1path_mbs=${R[rig_seq_1]} rig_seq_2path_mbs=${R[rig_seq_2]}"
