#!/usr/bin/env bash
# Guest storage network benchmark (SPEC §3a), in the QEMU rig: the cost of reaching a
# node's cmpt-guest over the compartment's storage network, as a ratio.
#   local:  node a1 (the main image plus bench/mpath_io, BUILD/images/bench) runs the
#           workload on its own /dev/vda5 (cmpt-guest), nobody logged in;
#   remote: node a2 boots the comparison image (images/compare/build.sh: the kernel's iSCSI
#           initiator, iscsistart), logs in to a1's guest target as compartment a's
#           infrastructural initiator with its CHAP secret and runs the same workload on
#           the LU (/dev/sda).
# Workload (bench/mpath_io, O_DIRECT): sequential 1 MiB requests, 8 in flight, a write pass
# then a read pass over SEQ_MIB; 4 KiB random reads then writes, 32 in flight, RAND_OPS each,
# over the first 256 MiB. Both guests are TCG-emulated: absolute figures are the emulator's,
# the ratio is what to read.
# Settings (environment): SEQ_MIB (64), RAND_OPS (4000).
# Last line: result: seq_mbs=… seq_local_mbs=… rand4k_iops=… rand4k_local_iops=…
#   (seq: mean of write and read MB/s; rand4k: mean of read and write IOPS) seq_ratio=…
#   rand4k_ratio=… (remote ÷ local).
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=$(cd "$BUILD" && pwd)
export BUILD
SEQ_MIB=${SEQ_MIB:-64}
RAND_OPS=${RAND_OPS:-4000}
INI=iqn.2026-12.compartd.rig:infra.a
TARGET=iqn.2026-12.compartd.rig:guest.a1
NET_A2="compare.mac=52:54:00:77:0a:02 compare.ip=10.77.1.12/24"
CHAP_USER=guest-a # compartment a's CHAP credentials in images/rig/cluster.conf
CHAP_SECRET=$(head -n1 images/rig/guest-a.secret)

. images/rig/lib.sh
rig_require >&2
images/compare/build.sh "$BUILD" --if-stale >&2
RIG_LOGS=${RIG_LOGS:-$BUILD/rig-logs/bench-guest}
rig_init
rig_up >&2

# seq NODE DEV: "WRITE_MBS READ_MBS MEAN"
seq_run() {
	local out w r
	out=$(rig_sh "$1" "mpath_io seq $2 write $SEQ_MIB 8; mpath_io seq $2 read $SEQ_MIB 8" \
		$((60 + SEQ_MIB * 4)))
	echo "$out" >>"$RIG_DIR/workload.log"
	w=$(sed -n 's/^mpath_io seq dir=write .* mbs=\([0-9.]*\) .*errors=0$/\1/p' <<<"$out")
	r=$(sed -n 's/^mpath_io seq dir=read .* mbs=\([0-9.]*\) .*errors=0$/\1/p' <<<"$out")
	[ -n "$w" ] && [ -n "$r" ] || { echo "sequential run on $1:$2 failed: $out" >&2; return 1; }
	echo "$w $r $(echo "$w $r" | awk '{ printf "%.1f", ($1 + $2) / 2 }')"
}
# rand NODE DEV: "READ_IOPS WRITE_IOPS MEAN"
rand_run() {
	local out w r
	out=$(rig_sh "$1" "mpath_io rand $2 read $RAND_OPS 256 32; mpath_io rand $2 write $RAND_OPS 256 32" 600)
	echo "$out" >>"$RIG_DIR/workload.log"
	r=$(sed -n 's/^mpath_io rand dir=read .* iops=\([0-9]*\) .*errors=0$/\1/p' <<<"$out")
	w=$(sed -n 's/^mpath_io rand dir=write .* iops=\([0-9]*\) .*errors=0$/\1/p' <<<"$out")
	[ -n "$w" ] && [ -n "$r" ] || { echo "random run on $1:$2 failed: $out" >&2; return 1; }
	echo "$r $w $(((r + w) / 2))"
}

echo "== a1: compartd exporting cmpt-guest; the workload on its local partition" >&2
RIG_IMAGES=$BUILD/images/bench
rig_node_start a1 >&2
rig_wait_for a1 'event=guest node=a1 state=exported' 240 >&2
read -r lw lr lseq < <(seq_run a1 /dev/vda5)
read -r lrr lrw lrand < <(rand_run a1 /dev/vda5)
echo "local  (a1 /dev/vda5): seq write $lw read $lr MB/s; 4k random read $lrr write $lrw IOPS" >&2

echo "== a2: the kernel's initiator as $INI, the same workload on a1's LU" >&2
RIG_IMAGES=$BUILD/images/compare
rig_node_start a2 --no-disks --append "$NET_A2" >&2
rig_wait_for a2 'compare: ready dev=' 120 >/dev/null
rig_sh a2 "iscsistart -i $INI -t $TARGET -g 1 -a 10.77.1.11 -p 3260 -u $CHAP_USER -w $CHAP_SECRET >/run/iscsistart.log 2>&1 ||
	cat /run/iscsistart.log; i=0; while [ ! -e /sys/block/sda ] && [ \$i -lt 300 ]; do
	i=\$((i + 1)); sleep 0.1; done; cat /sys/block/sda/size" 120 >&2
read -r rw rr rseq < <(seq_run a2 /dev/sda)
read -r rrr rrw rrand < <(rand_run a2 /dev/sda)
echo "remote (a2 -> a1 LU):  seq write $rw read $rr MB/s; 4k random read $rrr write $rrw IOPS" >&2
rig_sh a1 'compartctl guest' 30 >&2 || true

ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "nan" }'; }
echo "result: seq_mbs=$rseq seq_local_mbs=$lseq rand4k_iops=$rrand rand4k_local_iops=$lrand" \
	"seq_ratio=$(ratio "$rseq" "$lseq") rand4k_ratio=$(ratio "$rrand" "$lrand")" \
	"seq_write_mbs=$rw seq_read_mbs=$rr seq_local_write_mbs=$lw seq_local_read_mbs=$lr"
