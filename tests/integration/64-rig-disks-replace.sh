#!/usr/bin/env bash
# timeout: 240
# A disk is replaced: the node is laid out on two disks, boots once with only the first
# (the mirror runs degraded, 1/2), then with a new blank disk beside it: the new disk is
# partitioned (verdict=create), added to /dev/md/infra (action=add) and the resync starts.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
d0=$(rig_disk a1 0)
d1=$(rig_disk a1 1)

rig_node_start a1 --disk "$d0" --disk "$d1"
rig_wait_for a1 'event=raid name=infra .*members=2/2' 120
rig_wait_for a1 'event=ready node=a1' 60 >/dev/null
rig_kill a1

echo "== second disk removed"
rig_node_start a1 --disk "$d0"
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
ev=$(rig_events a1)
grep -E '^event=(disk|raid) ' <<<"$ev"
grep -Eq '^event=disk dev=/dev/vda .*verdict=keep' <<<"$ev" || { echo "FAIL: vda not kept"; exit 1; }
grep -Eq '^event=raid name=infra .*state=degraded .*members=1/2' <<<"$ev" || { echo "FAIL: infra not degraded 1/2"; exit 1; }
rig_kill a1

echo "== a blank disk attached"
d2=$(rig_disk a1 2)
rig_node_start a1 --disk "$d0" --disk "$d2"
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
ev=$(rig_events a1)
grep -E '^event=(disk|raid) ' <<<"$ev"
grep -Eq '^event=disk dev=/dev/vda .*verdict=keep' <<<"$ev" || { echo "FAIL: vda not kept"; exit 1; }
grep -Eq '^event=disk dev=/dev/vdb .*verdict=create' <<<"$ev" || { echo "FAIL: new disk not laid out"; exit 1; }
grep -Eq '^event=raid name=infra action=(add|re-add)' <<<"$ev" || { echo "FAIL: new member not added"; exit 1; }
out=$(rig_md_wait a1 infra 'Rebuild Status|recovery|Active Devices : 2' 60)
grep -E 'State :|Active Devices|Rebuild|recovery|\[[0-9]/[0-9]\]' <<<"$out"
rig_kill a1
names=$(rig_gpt_names "$d2")
grep -qw cmpt-infra <<<"$names" || { echo "FAIL: new disk has no cmpt-infra ($names)"; exit 1; }
echo PASS
