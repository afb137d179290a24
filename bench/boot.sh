#!/usr/bin/env bash
# Boot figure, side by side (issue 18): compartd's image against a dracut initramfs built
# from Debian's dracut packages (images/dracut/build.sh), in the same QEMU (TCG), with the
# same kernel, the same node disks (a1's two virtio disks) and the same rig storage.
# Measured from starting QEMU to "storage attached and md assembled":
#   compartd  its event lines: event=raid name=infra … members=2/2 and
#             event=storage name=mirror0 dev=/dev/nbdN paths=2/2 (one portal down: 1/2)
#   dracut    modules network (network-legacy), iscsi, multipath, mdraid; rd.iscsi.*,
#             two netroot=iscsi: (one per portal), rd.multipath=default, rd.md.uuid= of the
#             infra array compartd laid out on a1's disks; a hook at initqueue/finished
#             prints "bench: dracut-ready md=… map=… paths=N" once a multipath map is up
#             and the md RAID1 is active
# then the same with portal a (the first netroot) down, each boot bounded by
# BENCH_ONEPATH_TIMEOUT (default 300 s; a boot that does not get there counts as ">300").
# The first compartd boot lays a1's disks out (not counted); each figure is the median of
# BOOTS boots (default 3; with one portal down ONEPATH_BOOTS, default 1).
#
#   bench/boot.sh BUILD [BOOTS]
#
# Last line:
#   result: ready_s=… ready_dracut_s=… ratio=… image_bytes=… image_dracut_bytes=…
#           onepath_ready_s=… onepath_dracut_s=…        (one line; ratio = dracut/compartd)
set -euo pipefail
BUILD=${1:-build}
boots=${2:-${BOOTS:-3}}
onepath_boots=${ONEPATH_BOOTS:-1}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-240}
ONEPATH_TIMEOUT=${BENCH_ONEPATH_TIMEOUT:-300}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/images/rig/lib.sh"
rig_require >/dev/null
"$top/images/dracut/build.sh" "$BUILD" --if-stale >&2
rig_init
rig_up 2>/dev/null

IQN=iqn.2026-11.org.compartd.rig:mirror0
mac=$(rig_conf_node a1 mac | head -n 1)

# compartd_boot TIMEOUT PATHS: sets t to the seconds from QEMU start until both event
# lines, or >TIMEOUT. (No subshell: the rig's state lives in this shell.)
compartd_boot() {
	local end
	t=">$1"
	end=$(($(date +%s) + $1))
	rig_node_start a1 2>/dev/null
	if rig_wait_for a1 'event=raid name=infra action=[a-z]+ state=[a-z]+ members=2/2' "$1" >/dev/null 2>&1 &&
		rig_wait_for a1 "event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=$2" \
			$((end - $(date +%s) > 1 ? end - $(date +%s) : 1)) >/dev/null 2>&1; then
		t=$(rig_elapsed a1)
	fi
	rig_kill a1 2>/dev/null
}

# dracut_boot TIMEOUT: sets t to the seconds from QEMU start until the hook's line, or >TIMEOUT.
dracut_boot() {
	local line
	t=">$1"
	RIG_IMAGES=$BUILD/images/dracut rig_node_start a1 --append "$dracut_cmdline" 2>/dev/null
	if line=$(rig_wait_for a1 '^bench: dracut-ready ' "$1" 2>/dev/null); then
		t=$(rig_elapsed a1)
		echo "  ($line)" >&2
	fi
	rig_kill a1 2>/dev/null
}

median() { # of numbers and >N (counted as N+1)
	printf '%s\n' "$@" | sed 's/^>\(.*\)/\1 >/' | sort -n | awk '
		{ v[NR] = $1; g[NR] = $2 }
		END { m = (NR + 1) / 2; i = int(m); print g[i] v[i] }'
}

run() { # LABEL N FN ARGS...: N boots, prints each, sets $med
	local label=$1 n=$2 i
	shift 2
	local ts=()
	for i in $(seq "$n"); do
		"$@"
		ts+=("$t")
		echo "$label boot $i: ${t}s" >&2
	done
	med=$(median "${ts[@]}")
}

# Lay out a1's disks (compartd's first boot) and read the infra array's UUID for dracut.
rig_node_start a1 2>/dev/null
rig_wait_for a1 'event=ready node=a1' "$READY_TIMEOUT" >/dev/null
uuid=$(rig_sh a1 'mdadm --detail /dev/md/infra' 60 | sed -n 's/^ *UUID : *\([0-9a-f:]*\).*/\1/p')
rig_kill a1 2>/dev/null
[ -n "$uuid" ] || { echo "bench: no UUID for a1's infra array" >&2; exit 1; }
addr=$(rig_conf_node a1 handshake)
dracut_cmdline="rd.neednet=1 ifname=bench0:$mac ip=$addr::10.77.1.1:255.255.255.0:a1:bench0:none
 rd.iscsi.initiator=iqn.2026-12.org.compartd.bench:a1
 netroot=iscsi:10.77.1.100::3260:1:$IQN netroot=iscsi:10.77.2.100::3260:1:$IQN
 rd.multipath=default rd.md.uuid=$uuid root=/dev/mapper/mpatha rd.shell=0"
# (dracut's init wants a root=; the marker comes before anything mounts it)
dracut_cmdline=$(echo $dracut_cmdline)
echo "dracut command line: $dracut_cmdline" >&2

run compartd "$boots" compartd_boot "$READY_TIMEOUT" 2/2
ready=$med
run dracut "$boots" dracut_boot "$READY_TIMEOUT"
ready_dracut=$med
rig_storage_link a down 2>/dev/null
run "compartd (portal a down)" "$onepath_boots" compartd_boot "$ONEPATH_TIMEOUT" '[12]/2'
onepath=$med
run "dracut (portal a down)" "$onepath_boots" dracut_boot "$ONEPATH_TIMEOUT"
onepath_dracut=$med
rig_storage_link a up 2>/dev/null

img=$(stat -c %s "$BUILD/images/initramfs.cpio.gz")
img_dracut=$(stat -c %s "$BUILD/images/dracut/initramfs.cpio.gz")
ratio=$(awk -v a="${ready_dracut#>}" -v b="$ready" 'BEGIN { printf "%.1f", a / b }')
[ "${ready_dracut#>}" = "$ready_dracut" ] || ratio=">$ratio"
printf '%-40s %14s %14s\n' "" compartd dracut
printf '%-40s %14s %14s\n' "initramfs bytes (gzip)" "$img" "$img_dracut"
printf '%-40s %14s %14s\n' "QEMU start -> storage + md (s)" "$ready" "$ready_dracut"
printf '%-40s %14s %14s\n' "the same, portal a down (s)" "$onepath" "$onepath_dracut"
echo "(TCG on a shared host; medians of $boots boots, $onepath_boots with portal a down; kernel $(cat "$BUILD/kernel/"*+compare/version 2>/dev/null | head -n 1); $(grep -E '^dracut ' "$BUILD/dracut/versions"))"
echo "result: ready_s=$ready ready_dracut_s=$ready_dracut ratio=$ratio image_bytes=$img image_dracut_bytes=$img_dracut onepath_ready_s=$onepath onepath_dracut_s=$onepath_dracut"
