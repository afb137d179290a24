#!/usr/bin/env bash
# timeout: 300
# Power cuts during the disks stage, then a boot to the end on the same disks: it converges.
# Cut points:
#   - deterministic, through the disks module's fault injection (COMPARTD_FAULT_AT on the
#     kernel command line reaches PID 1 as an environment variable; PID 1 exits there, the
#     kernel panics, QEMU stops: nothing still in the guest's caches reaches the disks):
#     the first and the second disk's GPT write, a disk's done record, the intent of
#     the first mdadm action;
#   - timed: QEMU killed (SIGKILL) as soon as /dev/md/infra has been created.
# At the end both disks carry the layout, /dev/md/infra has 2 of 2 members, and the array
# created before the last cut is assembled, not created again.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
d0=$(rig_disk a1 0)
d1=$(rig_disk a1 1)

cut_at() { # STEP: boot with the fault point, wait for PID 1 to stop there and QEMU to end
	echo "== cut at $1"
	rig_node_start a1 --append "COMPARTD_FAULT_AT=$1"
	# exit status 99 of PID 1, in the kernel's panic line (shown whatever the console level)
	rig_wait_for a1 'Attempted to kill init! exitcode=0x00006300' 120 >/dev/null
	local i
	for i in $(seq 100); do
		kill -0 "${RIG_PID[a1]}" 2>/dev/null || break
		sleep 0.2
	done
	rig_kill a1
	echo "   layout now: [$(rig_gpt_names "$d0")] [$(rig_gpt_names "$d1")]"
}
cut_at partition@1
cut_at partition@2
cut_at done@1
cut_at raid@1

echo "== cut by SIGKILL right after /dev/md/infra is created"
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
