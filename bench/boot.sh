#!/usr/bin/env bash
# Boot time of one node under QEMU (TCG, no KVM): from starting QEMU to the agent's
# event=ready on the serial console, median of several boots on the same disks (the first
# boot lays the disks out, the later ones keep them), and the size of the image.
# Peer figure for comparison: a Debian dracut initramfs is ~30 MB.
#
#   bench/boot.sh BUILD [BOOTS]
set -euo pipefail
BUILD=${1:-build}
boots=${2:-${BOOTS:-5}}
. "$(dirname "$0")/../images/rig/lib.sh"
rig_require >/dev/null
rig_init
rig_up 2>/dev/null

times=()
for i in $(seq "$boots"); do
	rig_node_start a1 2>/dev/null
	rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
	t=$(rig_elapsed a1)
	times+=("$t")
	echo "boot $i: ready after ${t}s"
	rig_kill a1 2>/dev/null
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
img=$(stat -c %s "$BUILD/images/initramfs.cpio.gz")
kern=$(stat -c %s "$BUILD/images/vmlinuz")
printf '%-28s %12s %12s\n' "" "compartd" "dracut (peer)"
printf '%-28s %12s %12s\n' "initramfs bytes" "$img" "~30000000"
printf '%-28s %12s %12s\n' "vmlinuz bytes" "$kern" "same kernel"
printf '%-28s %12s %12s\n' "QEMU start -> ready (s)" "$median" "n/a"
echo "(TCG emulation on a shared 2-core host; $boots boots: ${times[*]})"
echo "result: ready_s=$median image_bytes=$img"
