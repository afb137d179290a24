#!/usr/bin/env bash
# Multipath benchmark, side by side in one run in the QEMU rig: the same LU (mirror0, both
# rig portals) and the same workload (bench/mpath_io, O_DIRECT, in the guest) through
#   ours: compartd in node a1 (libiscsi, round-robin, /dev/nbd0), the main image plus
#         mpath_io (BUILD/images/bench);
#   dm:   the kernel's iSCSI initiator (open-iscsi iscsistart) with dm-multipath
#         (multipath-tools, round-robin over one path group, fast_io_fail_tmo 5,
#         replacement_timeout 5), the comparison image (images/compare/build.sh);
#   dmt:  the same, tuned to compartd's failure budget (NOP-Out interval and timeout 1s,
#         replacement_timeout 2, fast_io_fail_tmo 2, polling_interval 1: mpath-up --tuned).
# Portal b gets its own tgtd (same backing file, same LU identity) so that a path can die
# by its target process being killed, as the issue asks.
#
# Figures, for each of ours and dm:
#   - sequential MB/s (1 MiB requests, 8 in flight, a write pass then a read pass) and 4 KiB
#     random IOPS (32 in flight) over 2 paths, the links unlimited (the emulated guest's CPU
#     is then the bottleneck);
#   - the same sequential passes with each portal link limited to RATE (tc tbf on both ends
#     of each storage leg, inside the rig's namespaces), over 2 paths and, after portal b's
#     tgtd was killed, over 1 path: rr_speedup = 2 paths / 1 path where the paths are the
#     bottleneck;
#   - the longest I/O stall: a 4 KiB write + read-verify loop, one request at a time, while
#     portal b's tgtd is killed (its sessions reset) and, in another run, while it hangs
#     (SIGSTOP: nothing answers, nothing resets); the longest gap between completions.
# The agent's peak RSS (VmHWM) after its runs is printed beside the figures.
# Settings (environment): QUICK=1 (only the unlimited throughput runs of ours and dm: for
# iterating on the data path; the result line then has the throughput keys only), RATE (default 40mbit), SEQ_MIB (64), SEQ_LIMITED_MIB (24),
# RAND_OPS (4000), STALL_AFTER_S (20: how long the loop runs after the kill), HANG_AFTER_S
# (40: after the stop), HANG_RESUME_S (20: when the stopped tgtd is resumed, SIGCONT; below
# no_path_timeout, since compartd holds a write that was in flight on the hung portal until
# that target answers again: docs/iscsi.md, No stale writes).
# Last line: result: stall_s=… stall_dm_s=… seq_1path_mbs=… seq_2path_mbs=… seq_dm_mbs=…
#   rand4k_2path_iops=… rand4k_dm_iops=… rr_speedup=… (and more keys, see the end).
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=$(cd "$BUILD" && pwd)
export BUILD
RATE=${RATE:-40mbit}
SEQ_MIB=${SEQ_MIB:-64}
SEQ_LIMITED_MIB=${SEQ_LIMITED_MIB:-24}
RAND_OPS=${RAND_OPS:-4000}
STALL_AFTER_S=${STALL_AFTER_S:-20}
HANG_AFTER_S=${HANG_AFTER_S:-40}
HANG_RESUME_S=${HANG_RESUME_S:-20}
TARGET=iqn.2026-11.org.compartd.rig:mirror0
PORTAL_A=10.77.1.100:3260
PORTAL_B=10.77.2.100:3260
NET_A1="compare.mac=52:54:00:77:0a:01 compare.ip=10.77.1.11/24 compare.route=10.77.2.0/24,10.77.1.1"

. images/rig/lib.sh
rig_require >&2
images/compare/build.sh "$BUILD" --if-stale >&2
RIG_LOGS=${RIG_LOGS:-$BUILD/rig-logs/bench-mpath}
rig_init
rig_up >&2
declare -A R=()
put() { R[$1]=$2; }

# ---- portal b on a tgtd of its own ----
TGT_B_PID=
tgt_b_start() {
	local ctl t i
	ctl=$(rig_free_ctl)
	ip netns exec "$RIG_NS_ST" tgtd -f -C "$ctl" --iscsi "portal=$PORTAL_B" \
		>>"$RIG_DIR/tgtd-mirror0-b.log" 2>&1 &
	TGT_B_PID=$!
	RIG_TGTD+=("$TGT_B_PID") # rig_down stops it
	disown "$TGT_B_PID"
	RIG_CTL+=("$ctl")
	t="tgtadm -C $ctl --lld iscsi"
	for i in $(seq 50); do
		$t --op show --mode target >/dev/null 2>&1 && break
		sleep 0.1
	done
	# tid 1, LUN 1 like the first tgtd: the same designator and serial, one LU to both
	# initiators (tgtd derives them from tid and LUN)
	$t --op new --mode target --tid 1 -T "$TARGET"
	$t --op new --mode logicalunit --tid 1 --lun 1 -b "$RIG_DIR/mirror0.img"
	$t --op bind --mode target --tid 1 -I ALL
}
tgt_b_kill() {
	kill -9 "$TGT_B_PID"
	rig_log "portal b: tgtd $TGT_B_PID killed"
}
tgtadm -C "${RIG_CTL[0]}" --lld iscsi --op delete --mode portal --param "portal=$PORTAL_B"
tgt_b_start

# ---- the link limit: both directions of each storage leg ----
limit() { # on|off
	local c ns
	for c in a b; do
		for ns in "$RIG_NS" "$RIG_NS_ST"; do
			if [ "$1" = on ]; then
				ip netns exec "$ns" tc qdisc replace dev "st-$c" root tbf rate "$RATE" burst 64kb latency 200ms
			else
				ip netns exec "$ns" tc qdisc del dev "st-$c" root 2>/dev/null || true
			fi
		done
	done
}

# ---- the workload, in the guest ----
# seq DEV MIB: prints "WRITE_MBS READ_MBS MEAN"
guest_seq() {
	local out w r
	out=$(rig_sh a1 "mpath_io seq $1 write $2 8; mpath_io seq $1 read $2 8" $((60 + $2 * 4)))
	echo "$out" >>"$RIG_DIR/workload.log"
	w=$(sed -n 's/^mpath_io seq dir=write .* mbs=\([0-9.]*\) .*errors=0$/\1/p' <<<"$out")
	r=$(sed -n 's/^mpath_io seq dir=read .* mbs=\([0-9.]*\) .*errors=0$/\1/p' <<<"$out")
	[ -n "$w" ] && [ -n "$r" ] || { echo "sequential run on $1 failed: $out" >&2; return 1; }
	echo "$w $r $(echo "$w $r" | awk '{ printf "%.1f", ($1 + $2) / 2 }')"
}
# rand DEV: prints "READ_IOPS WRITE_IOPS MEAN"
guest_rand() {
	local out w r
	out=$(rig_sh a1 "mpath_io rand $1 read $RAND_OPS 256 32; mpath_io rand $1 write $RAND_OPS 256 32" 300)
	echo "$out" >>"$RIG_DIR/workload.log"
	r=$(sed -n 's/^mpath_io rand dir=read .* iops=\([0-9]*\) .*errors=0$/\1/p' <<<"$out")
	w=$(sed -n 's/^mpath_io rand dir=write .* iops=\([0-9]*\) .*errors=0$/\1/p' <<<"$out")
	[ -n "$w" ] && [ -n "$r" ] || { echo "random run on $1 failed: $out" >&2; return 1; }
	echo "$r $w $(((r + w) / 2))"
}
# stall DEV kill|stop: the loop runs in the background in the guest; 3s in, portal b's
# tgtd is killed (the session drops: a reset) or stopped (SIGSTOP: the target hangs, its TCP
# stays up; only timeouts notice); some seconds later the loop stops. Prints
# "MAX_GAP OPS ERRORS MISMATCHES".
guest_stall() {
	local out after=$STALL_AFTER_S
	[ "$2" = kill ] || after=$HANG_AFTER_S
	rig_sh a1 "rm -f /tmp/stop; setsid mpath_io stall $1 $((after + 60)) /tmp/stop </dev/null >/tmp/stall.log 2>&1 & sleep 1" 30 >/dev/null
	sleep 3
	if [ "$2" = kill ]; then
		tgt_b_kill
	else
		kill -STOP "$TGT_B_PID"
		rig_log "portal b: tgtd $TGT_B_PID stopped"
		sleep "$HANG_RESUME_S"
		kill -CONT "$TGT_B_PID"
		rig_log "portal b: tgtd $TGT_B_PID resumed"
		after=$((after - HANG_RESUME_S))
	fi
	sleep "$after"
	out=$(rig_sh a1 'touch /tmp/stop; sleep 2; cat /tmp/stall.log' 60)
	[ "$2" = kill ] || tgt_b_kill
	echo "$out" >>"$RIG_DIR/workload.log"
	echo "$out" | grep '^mpath_io stall' >&2 || true
	sed -n 's/^mpath_io stall ops=\([0-9]*\) .* max_gap=\([0-9.]*\) .* errors=\([0-9]*\) mismatches=\([0-9]*\)$/\2 \1 \3 \4/p' <<<"$out" | grep . ||
		{ echo "stall run on $1 failed: $out" >&2; return 1; }
}
# stall WHO DEV kill|stop: one stall run, its figures under WHO_stall_kill or WHO_stall_stop
stall() {
	local who=$1 v m ops errs mis what="killed"
	[ "$3" = kill ] || what="stopped (hung)"
	v=$(guest_stall "$2" "$3")
	read -r m ops errs mis <<<"$v"
	put "${who}_stall_$3" "$m"
	put "${who}_stall_$3_errors" "$((errs + mis))"
	echo "$who: portal b's tgtd $what: longest stall ${m}s over $ops requests, $errs I/O errors, $mis mismatches" >&2
}

# workload WHO DEV: every figure for one initiator, in an order that needs no path to come
# back (the kernel's initiator without iscsid does not log in again by itself).
workload() {
	local who=$1 dev=$2 v w r m
	v=$(guest_seq "$dev" "$SEQ_MIB")
	read -r w r m <<<"$v"
	put "${who}_seq_free_w" "$w"; put "${who}_seq_free_r" "$r"; put "${who}_seq_free" "$m"
	echo "$who: sequential, 2 paths, links unlimited: write $w MB/s, read $r MB/s" >&2
	v=$(guest_rand "$dev")
	read -r r w m <<<"$v"
	put "${who}_rand_r" "$r"; put "${who}_rand_w" "$w"; put "${who}_rand" "$m"
	echo "$who: 4 KiB random, 2 paths: read $r IOPS, write $w IOPS" >&2
	[ "${QUICK:-0}" = 0 ] || return 0
	limit on
	v=$(guest_seq "$dev" "$SEQ_LIMITED_MIB")
	read -r w r m <<<"$v"
	put "${who}_seq2_w" "$w"; put "${who}_seq2_r" "$r"; put "${who}_seq2" "$m"
	echo "$who: sequential, 2 paths, links at $RATE: write $w MB/s, read $r MB/s" >&2
	limit off
	stall "$who" "$dev" kill
	limit on
	v=$(guest_seq "$dev" "$SEQ_LIMITED_MIB")
	read -r w r m <<<"$v"
	put "${who}_seq1_w" "$w"; put "${who}_seq1_r" "$r"; put "${who}_seq1" "$m"
	echo "$who: sequential, 1 path, link at $RATE: write $w MB/s, read $r MB/s" >&2
	limit off
}

# ---- ours: compartd in a1 ----
RIG_IMAGES=$BUILD/images/bench
rig_node_start a1 >&2
rig_wait_for a1 'event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=2/2' 150 >/dev/null
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
workload ours /dev/nbd0
# the agent's peak RSS (VmHWM) so far: the throughput runs with 8 x 1 MiB and 32 x 4 KiB
# in flight. compartd is /init, PID 1 (mirror0 is not a root storage here: no hand-over).
rss_peak() {
	rig_sh a1 'grep VmHWM /proc/1/status' 30 | awk '/^VmHWM:/ { print $2 }' | tail -n 1
}
put ours_rss "$(rss_peak)"
echo "ours: the agent's peak RSS ${R[ours_rss]} KiB" >&2
if [ "${QUICK:-0}" = 0 ]; then
	# the hang: portal b back first
	rig_mark a1
	tgt_b_start
	rig_wait_for a1 "event=path storage=mirror0 portal=$PORTAL_B state=reinstated" 60 >/dev/null
	stall ours /dev/nbd0 stop
	put ours_rss "$(rss_peak)"
	rig_sh a1 'compartctl paths' 30 >&2 || true
	rig_events a1 | grep -E 'event=path ' | tail -n 4 >&2 || true
fi
rig_kill a1 2>/dev/null

# ---- dm: the kernel's initiator and dm-multipath, the same node, the same LU ----
# dm_boot: portal b's tgtd (again), the comparison image as a1, the map over both portals;
# sets $map. Booted twice: iscsistart does not log in again after a path died (that
# is iscsid's job), so the hang run gets a fresh guest.
# dm_boot [--tuned]
dm_boot() {
	local out
	tgt_b_start
	RIG_IMAGES=$BUILD/images/compare
	rig_node_start a1 --no-disks --append "$NET_A1" >&2
	rig_wait_for a1 'compare: ready dev=' 120 >/dev/null
	out=$(rig_sh a1 "compare-mpath-up ${1:-} $TARGET $PORTAL_A $PORTAL_B" 120)
	echo "$out" >&2
	map=$(sed -n 's/^map=\(\/dev\/mapper\/[^ ]*\) paths=2$/\1/p' <<<"$out")
	[ -n "$map" ] || { echo "dm-multipath: no map over 2 paths" >&2; exit 1; }
}
dm_boot
workload dm "$map"
rig_kill a1 2>/dev/null
ratio() { echo "$1 $2" | awk '{ printf "%.2f", ($2 > 0 ? $1 / $2 : 0) }'; }
seq_ratio=$(ratio "${R[ours_seq_free]}" "${R[dm_seq_free]}")
rand_ratio=$(ratio "${R[ours_rand]}" "${R[dm_rand]}")
if [ "${QUICK:-0}" != 0 ]; then
	row() { printf '%-44s %14s %14s\n' "$@"; }
	row "rig guest a1 (QEMU TCG), mirror0" "compartd" "dm-multipath"
	row "sequential write MB/s, 2 paths" "${R[ours_seq_free_w]}" "${R[dm_seq_free_w]}"
	row "sequential read MB/s, 2 paths" "${R[ours_seq_free_r]}" "${R[dm_seq_free_r]}"
	row "4k random read IOPS, 2 paths (qd32)" "${R[ours_rand_r]}" "${R[dm_rand_r]}"
	row "4k random write IOPS, 2 paths (qd32)" "${R[ours_rand_w]}" "${R[dm_rand_w]}"
	row "compartd peak RSS KiB" "${R[ours_rss]}" "-"
	echo "result: quick=1 seq_free_mbs=${R[ours_seq_free]} seq_free_dm_mbs=${R[dm_seq_free]} rand4k_2path_iops=${R[ours_rand]} rand4k_dm_iops=${R[dm_rand]} seq_free_ratio=$seq_ratio rand4k_ratio=$rand_ratio rss_kib=${R[ours_rss]}"
	exit 0
fi
dm_boot
stall dm "$map" stop
rig_sh a1 "multipath -ll; tail -n 8 /run/multipathd.log" 30 >&2 || true
rig_kill a1 2>/dev/null
# dm-multipath tuned to compartd's failure budget
dm_boot --tuned
workload dmt "$map"
rig_kill a1 2>/dev/null
dm_boot --tuned
stall dmt "$map" stop
rig_sh a1 "multipath -ll; tail -n 8 /run/multipathd.log" 30 >&2 || true
rig_kill a1 2>/dev/null

speedup=$(echo "${R[ours_seq2]} ${R[ours_seq1]}" | awk '{ printf "%.2f", $1 / $2 }')
speedup_dm=$(echo "${R[dm_seq2]} ${R[dm_seq1]}" | awk '{ printf "%.2f", $1 / $2 }')
speedup_dmt=$(echo "${R[dmt_seq2]} ${R[dmt_seq1]}" | awk '{ printf "%.2f", $1 / $2 }')
row() { printf '%-44s %14s %14s %14s\n' "$@"; }
echo
row "rig guest a1 (QEMU TCG), mirror0" "compartd" "dm-multipath" "dm tuned"
row "sequential write MB/s, 2 paths" "${R[ours_seq_free_w]}" "${R[dm_seq_free_w]}" "${R[dmt_seq_free_w]}"
row "sequential read MB/s, 2 paths" "${R[ours_seq_free_r]}" "${R[dm_seq_free_r]}" "${R[dmt_seq_free_r]}"
row "4k random read IOPS, 2 paths (qd32)" "${R[ours_rand_r]}" "${R[dm_rand_r]}" "${R[dmt_rand_r]}"
row "4k random write IOPS, 2 paths (qd32)" "${R[ours_rand_w]}" "${R[dm_rand_w]}" "${R[dmt_rand_w]}"
row "links at $RATE: seq write MB/s, 2 paths" "${R[ours_seq2_w]}" "${R[dm_seq2_w]}" "${R[dmt_seq2_w]}"
row "links at $RATE: seq read MB/s, 2 paths" "${R[ours_seq2_r]}" "${R[dm_seq2_r]}" "${R[dmt_seq2_r]}"
row "links at $RATE: seq write MB/s, 1 path" "${R[ours_seq1_w]}" "${R[dm_seq1_w]}" "${R[dmt_seq1_w]}"
row "links at $RATE: seq read MB/s, 1 path" "${R[ours_seq1_r]}" "${R[dm_seq1_r]}" "${R[dmt_seq1_r]}"
row "2 paths / 1 path (links at $RATE)" "$speedup" "$speedup_dm" "$speedup_dmt"
row "longest stall, portal b's tgtd killed (s)" "${R[ours_stall_kill]}" "${R[dm_stall_kill]}" "${R[dmt_stall_kill]}"
row "longest stall, portal b's tgtd hung (s)" "${R[ours_stall_stop]}" "${R[dm_stall_stop]}" "${R[dmt_stall_stop]}"
row "I/O errors + mismatches, killed" "${R[ours_stall_kill_errors]}" "${R[dm_stall_kill_errors]}" "${R[dmt_stall_kill_errors]}"
row "I/O errors + mismatches, hung" "${R[ours_stall_stop_errors]}" "${R[dm_stall_stop_errors]}" "${R[dmt_stall_stop_errors]}"
row "peak RSS KiB (the agent)" "${R[ours_rss]}" "-" "-"
echo "(compartd: path_timeout 2s, path_check_interval 1s; dm: replacement_timeout 5s, NOP-Out every 5s with a 5s timeout,"
echo " fast_io_fail_tmo 5, multipathd polling_interval 1; dm tuned: replacement_timeout 2s, NOP-Out every 1s with a 1s"
echo " timeout, fast_io_fail_tmo 2, polling_interval 1; links: tc tbf $RATE per storage leg and direction)"
stall=$(printf '%s\n' "${R[ours_stall_kill]}" "${R[ours_stall_stop]}" | sort -n | tail -n 1)
stall_dm=$(printf '%s\n' "${R[dm_stall_kill]}" "${R[dm_stall_stop]}" | sort -n | tail -n 1)
echo "result: stall_s=$stall stall_dm_s=$stall_dm seq_1path_mbs=${R[ours_seq1]} seq_2path_mbs=${R[ours_seq2]} seq_dm_mbs=${R[dm_seq2]} rand4k_2path_iops=${R[ours_rand]} rand4k_dm_iops=${R[dm_rand]} rr_speedup=$speedup rr_speedup_dm=$speedup_dm seq_dm_1path_mbs=${R[dm_seq1]} seq_free_mbs=${R[ours_seq_free]} seq_free_dm_mbs=${R[dm_seq_free]} stall_kill_s=${R[ours_stall_kill]} stall_hang_s=${R[ours_stall_stop]} stall_kill_dm_s=${R[dm_stall_kill]} stall_hang_dm_s=${R[dm_stall_stop]} io_errors=$((R[ours_stall_kill_errors] + R[ours_stall_stop_errors])) io_errors_dm=$((R[dm_stall_kill_errors] + R[dm_stall_stop_errors])) link_rate=$RATE seq_free_ratio=$seq_ratio rand4k_ratio=$rand_ratio stall_kill_dm_tuned_s=${R[dmt_stall_kill]} stall_hang_dm_tuned_s=${R[dmt_stall_stop]} seq_free_dm_tuned_mbs=${R[dmt_seq_free]} rand4k_dm_tuned_iops=${R[dmt_rand]} io_errors_dm_tuned=$((R[dmt_stall_kill_errors] + R[dmt_stall_stop_errors])) rss_kib=${R[ours_rss]}"
