#!/usr/bin/env bash
# timeout: 240
# Power cuts during the disks stage: QEMU is killed as soon as the console shows the disks
# stage starting (the cut lands somewhere in the layout: where exactly depends on timing),
# then right after /dev/md/infra is created; each time the node boots again on the same
# disks. It converges: both disks carry the layout, /dev/md/infra has 2 of 2 members, and
# the array created before the second cut is assembled, not created again.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
d0=$(rig_disk a1 0)
d1=$(rig_disk a1 1)

echo "== cut 1: as the disks stage starts"
rig_node_start a1
rig_wait_for a1 'event=boot stage=disks' 120
rig_kill a1
echo "   layout so far: $(rig_gpt_names "$d0") / $(rig_gpt_names "$d1")"

echo "== cut 2: right after the first array is created"
rig_node_start a1
rig_wait_for a1 'event=raid name=infra action=create' 120
rig_kill a1

echo "== boot to the end"
rig_node_start a1
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
ev=$(rig_events a1)
grep -E '^event=(disk|raid) ' <<<"$ev"
for dev in vda vdb; do
	grep -Eq "^event=disk dev=/dev/$dev .*verdict=(keep|create)" <<<"$ev" || { echo "FAIL: $dev not usable"; exit 1; }
done
grep -Eq '^event=raid name=infra .*members=2/2' <<<"$ev" || { echo "FAIL: infra not 2/2"; exit 1; }
if grep -Eq '^event=raid name=infra action=create' <<<"$ev"; then echo "FAIL: infra created again"; exit 1; fi
out=$(rig_md_wait a1 infra 'Active Devices : 2' 60)
grep -E 'State :|Active Devices' <<<"$out"
rig_kill a1
for d in "$d0" "$d1"; do
	names=$(rig_gpt_names "$d")
	for p in cmpt-boot cmpt-state cmpt-infra cmpt-admin cmpt-guest; do
		grep -qw -- "$p" <<<"$names" || { echo "FAIL: $p missing on $d"; exit 1; }
	done
done
echo PASS
