#!/usr/bin/env bash
# timeout: 240
# The serial console of a rig node under QEMU (PID 1 on ttyS0): the node boots with a
# foreign second disk (an ext4 file system), which the disks stage leaves alone and the
# health engine reports as needing an operator; `approve-wipe /dev/vdb` typed on the serial
# line lays it out and the disk's health check recovers. Alone in the cluster, the node
# waits for an operator; `continue` on the serial line releases it.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
command -v mkfs.ext4 >/dev/null || { echo "needs mkfs.ext4 (e2fsprogs)"; exit 77; }
rig_init
rig_up

d0=$(rig_disk a1 0)
d1=$(rig_disk a1 1)
mkfs.ext4 -q -F -L someones-data "$d1" >/dev/null
rig_node_start a1 --disk "$d0" --disk "$d1"

rig_wait_for a1 'event=disk dev=/dev/vdb .*verdict=foreign' 90
rig_wait_for a1 'event=decision rule=alone profile=wait-operator' 60
rig_wait_for a1 'event=health component=disk:vdb state=needs-operator' 30
# The arrays run on vda alone: degraded, and only an operator can supply the second disk.
rig_wait_for a1 'event=health component=md:infra state=needs-operator .*reason="degraded: 1/2 members"' 30
rig_events a1 | grep -q 'event=disk dev=/dev/vda .*verdict=create' || { echo "FAIL: vda not laid out"; exit 1; }

# The operator looks, then approves the wipe on the serial line.
rig_mark a1
rig_send a1 health
rig_wait_for a1 '^disk:vdb +needs-operator@parses .*found ext4' 20
rig_mark a1
rig_send a1 'approve-wipe /dev/vdb'
rig_wait_for a1 '/dev/vdb wiped and partitioned; authorization .* consumed' 90
rig_events a1 | grep -q 'event=disk dev=/dev/vdb .*verdict=wiped' || { echo "FAIL: no wiped event"; exit 1; }
rig_wait_for a1 'event=health component=disk:vdb state=recovered' 30
# The stage added vdb to the arrays: recovery shows its progress, then they are whole.
rig_wait_for a1 'event=health component=md:infra state=recovered' 60
rig_mark a1
rig_send a1 health
rig_wait_for a1 '^md:infra +ok .*(recover [0-9]+%|clean|active)' 20
rig_mark a1
rig_send a1 disks
rig_wait_for a1 'vdb.*(keep|wiped)' 20

# A second approval of the same disk is refused: it is ours now.
rig_mark a1
rig_send a1 'approve-wipe /dev/vdb'
rig_wait_for a1 'error: approve-wipe refused: /dev/vdb is .*not foreign' 20

# The node is alone: wait-operator until `continue`.
rig_mark a1
rig_send a1 continue
rig_wait_for a1 'released: starting profile infra-and-mgmt' 20
rig_wait_for a1 'event=decision rule=operator-continue profile=infra-and-mgmt' 20
rig_mark a1
rig_send a1 'status --json'
rig_wait_for a1 '"node":"a1"' 20
echo PASS
