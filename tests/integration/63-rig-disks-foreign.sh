#!/usr/bin/env bash
# timeout: 200
# One disk carries an ext4 file system (foreign), the other is blank: the foreign disk is
# reported verdict=foreign with what blkid found and not one byte of it changes (sha256 of
# the whole image on the host); the blank one is laid out and /dev/md/infra runs degraded
# with 1 of 2 members.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
command -v mkfs.ext4 >/dev/null || { echo "needs mkfs.ext4 (e2fsprogs)"; exit 77; }
rig_init
rig_up
d0=$(rig_disk a1 0)
d1=$(rig_disk a1 1)
mkfs.ext4 -q -F -L precious "$d1"
before=$(sha256sum "$d1" | cut -c1-64)

rig_node_start a1
rig_wait_for a1 'event=ready node=a1' 120
ev=$(rig_events a1)
grep -E '^event=disk ' <<<"$ev"
grep -Eq '^event=disk dev=/dev/vdb .*verdict=foreign' <<<"$ev" || { echo "FAIL: vdb not foreign"; exit 1; }
grep -Eq '^event=disk dev=/dev/vdb .*found=.*ext4' <<<"$ev" || { echo "FAIL: found= does not name ext4"; exit 1; }
grep -Eq '^event=disk dev=/dev/vda .*verdict=create' <<<"$ev" || { echo "FAIL: vda not laid out"; exit 1; }
grep -E '^event=raid name=infra' <<<"$ev"
grep -Eq '^event=raid name=infra .*state=degraded .*members=1/2' <<<"$ev" || { echo "FAIL: infra not degraded 1/2"; exit 1; }
out=$(rig_md_detail a1 infra)
grep -E 'State :|Active Devices|Raid Devices' <<<"$out"
grep -Eq 'Active Devices : 1' <<<"$out" || { echo "FAIL: mdadm does not show 1 active device"; exit 1; }
# The console names the disk and how to authorize it.
rig_mark a1
rig_send a1 disks
rig_wait_for a1 'foreign' 20
rig_kill a1
after=$(sha256sum "$d1" | cut -c1-64)
[ "$before" = "$after" ] || { echo "FAIL: the foreign disk changed ($before -> $after)"; exit 1; }
echo "foreign disk unchanged: $after"
echo PASS
