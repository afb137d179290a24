#!/usr/bin/env bash
# timeout: 480
# One node, two blank disks: the agent as PID 1 lays out a GPT on both (names seen from
# the host), creates /dev/md/infra which reaches clean with 2/2 members (mdadm --detail and
# /proc/mdstat read in the guest through the console's rescue shell), and writes its
# journal. Then the same node boots again on the same disks: nothing is repartitioned
# (verdict=keep, same partition table), the arrays are assembled, and the bytes of
# cmpt-guest are unchanged. On that second boot a member of /dev/md/infra is failed in the
# guest: the health ladder isolates it (mdadm --fail/--remove), tries to re-add it, and
# md:infra recovers with 2 active members (SPEC §8); the journal holds the array's UUID.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
d0=$(rig_disk a1 0)
d1=$(rig_disk a1 1)

rig_node_start a1
rig_wait_for a1 'event=ready node=a1' 120
ev=$(rig_events a1)
for dev in vda vdb; do
	grep -Eq "^event=disk dev=/dev/$dev .*verdict=create" <<<"$ev" || { echo "FAIL: $dev not laid out"; exit 1; }
done
grep -Eq '^event=raid name=infra action=create .*members=2/2' <<<"$ev" || { echo "FAIL: no infra create 2/2"; exit 1; }
grep -Eq '^event=journal action=write' <<<"$ev" || { echo "FAIL: journal not written"; exit 1; }
rig_md_wait a1 infra 'State : (clean|active) *$' 150 | grep -E 'State :|Active Devices|md[0-9]+ :|\[[0-9]/[0-9]\]'
out=$(rig_md_detail a1 infra)
grep -Eq 'Active Devices : 2' <<<"$out" || { echo "FAIL: infra not 2 active"; exit 1; }
grep -Eq '\[2/2\] \[UU\]' <<<"$out" || { echo "FAIL: /proc/mdstat does not show [2/2] [UU]"; exit 1; }
rig_kill a1

for d in "$d0" "$d1"; do
	names=$(rig_gpt_names "$d")
	echo "$(basename "$d"): $names"
	for p in cmpt-boot cmpt-state cmpt-infra cmpt-admin cmpt-guest; do
		grep -qw -- "$p" <<<"$names" || { echo "FAIL: $p missing on $d"; exit 1; }
	done
done

# Second boot on the same disks, with recognizable bytes in cmpt-guest.
rig_part_fill "$d0" cmpt-guest 1048576
rig_part_fill "$d1" cmpt-guest 1048576
pt0=$(sfdisk -d "$d0" | sha256sum)
pt1=$(sfdisk -d "$d1" | sha256sum)
g0=$(rig_part_sha "$d0" cmpt-guest)
g1=$(rig_part_sha "$d1" cmpt-guest)

rig_node_start a1
rig_wait_for a1 'event=ready node=a1' 120
ev=$(rig_events a1)
for dev in vda vdb; do
	grep -Eq "^event=disk dev=/dev/$dev .*verdict=keep" <<<"$ev" || { echo "FAIL: $dev not kept"; exit 1; }
done
grep -Eq '^event=raid name=infra action=assemble' <<<"$ev" || { echo "FAIL: infra not assembled"; exit 1; }
if grep -Eq '^event=raid .*action=create' <<<"$ev"; then echo "FAIL: an array was created again"; exit 1; fi
rig_md_wait a1 infra 'Active Devices : 2' 60 | grep -E 'State :|Active Devices'

# The md ladder: isolate, restart (re-add; without a bitmap md may refuse it, then the
# rebuild — the disks stage — adds it back), recovered.
rig_mark a1
rig_sh a1 "mdadm /dev/md/infra --fail /dev/vdb3" 30 >/dev/null
rig_wait_for a1 'event=health component=md:infra state=failed stage=integrity action=isolate' 60 >/dev/null
rig_wait_for a1 'event=raid name=infra action=fail-remove dev=/dev/vdb3 status=ok' 30 >/dev/null
rig_wait_for a1 'event=raid name=infra action=re-add dev=/dev/vdb3' 30 >/dev/null
rig_wait_for a1 'event=health component=md:infra state=recovered' 180 >/dev/null
rig_md_wait a1 infra 'Active Devices : 2' 180 | grep -E 'State :|Active Devices'
rig_events a1 | { grep -E '^event=(raid|health component=md:)' || true; } | sed 's/^/  /'
rig_kill a1
uuid=$("$BUILD/compartd" state show --disk "$d0" --disk "$d1" --json | jq -r '.journal.md_uuids.infra // ""')
grep -Eq '^[0-9a-f]{8}(:[0-9a-f]{8}){3}$' <<<"$uuid" || { echo "FAIL: no md uuid in the journal ($uuid)"; exit 1; }
md_uuid=$(sed -n 's/^ *UUID : \([0-9a-f:]*\).*/\1/p' <<<"$out" | head -1)
[ "$uuid" = "$md_uuid" ] || { echo "FAIL: journal md uuid $uuid, mdadm --detail says $md_uuid"; exit 1; }
echo "journal: md infra uuid $uuid (= mdadm --detail)"
[ "$(sfdisk -d "$d0" | sha256sum)" = "$pt0" ] || { echo "FAIL: partition table of disk 0 changed"; exit 1; }
[ "$(sfdisk -d "$d1" | sha256sum)" = "$pt1" ] || { echo "FAIL: partition table of disk 1 changed"; exit 1; }
[ "$(rig_part_sha "$d0" cmpt-guest)" = "$g0" ] || { echo "FAIL: cmpt-guest of disk 0 changed"; exit 1; }
[ "$(rig_part_sha "$d1" cmpt-guest)" = "$g1" ] || { echo "FAIL: cmpt-guest of disk 1 changed"; exit 1; }
echo PASS
