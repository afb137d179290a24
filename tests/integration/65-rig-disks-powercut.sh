#!/usr/bin/env bash
# timeout: 420
# Power cuts during the disks stage, then a boot to the end on the same disks: it converges.
# Cut points:
#   - deterministic, through the disks module's fault injection (COMPARTD_FAULT_AT on the
#     kernel command line reaches PID 1 as an environment variable; PID 1 exits there, the
#     kernel panics, QEMU stops: nothing still in the guest's caches reaches the disks):
#     inside libparted's GPT write of the first disk of the blank node (gpt-write,
#     COMPARTD_FAULT_TORN=2: PMBR and primary header written, entries not — no journal
#     exists yet, the torn table is provably ours and is finished, not reported foreign),
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

cut_at() { # STEP [VAR=value…]: boot with the fault point, wait for PID 1 to stop there
	echo "== cut at $*"
	local step=$1
	shift
	rig_node_start a1 --append "COMPARTD_FAULT_AT=$step${*:+ $*}"
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
# The first disk torn inside the GPT write; the next boot, stopped right after the first
# GPT write, wrote it to that disk again (had it been foreign, the second disk would be the
# first one written).
cut_at gpt-write@1 COMPARTD_FAULT_TORN=2
[ -z "$(rig_gpt_names "$d0")" ] || { echo "FAIL: the torn table already reads as complete"; exit 1; }
cut_at types@1
grep -qw cmpt-guest <<<"$(rig_gpt_names "$d0")" ||
	{ echo "FAIL: the torn first disk was not taken up again"; exit 1; }
[ -z "$(rig_gpt_names "$d1")" ] || { echo "FAIL: the second disk was written first"; exit 1; }
for d in "$d0" "$d1"; do # blank again for the cuts below
	size=$(stat -c %s "$d")
	truncate -s 0 "$d"
	truncate -s "$size" "$d"
done
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
