#!/usr/bin/env bash
# timeout: 480
# md:infra is a core health component (SPEC §7, §8), in the QEMU rig with real md: a1 and
# b1 elect an infra master; the master's /dev/md/infra is stopped under it -> health fails
# md:infra (not running) -> the node leaves eligibility (event=role role=none
# reason=ineligible cause="md:infra …") and the other compartment's node becomes master;
# md:infra's ladder assembles the array again (reload: mdadm --assemble; or, failing that,
# rebuild: the disks stage in a child process) -> recovered -> eligible again, as slave
# (no preemption).
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
fail() {
	echo "FAIL: $*"
	for n in a1 b1; do
		echo "---- $n"
		tail -c +$(($(cat "$RIG_DIR/$n.start") + 1)) "$RIG_DIR/$n.log" | tr -d '\r' |
			grep -E 'md:infra|disks stage|raid|mdadm|event=role|election|child' | tail -n 40
	done
	exit 1
}
# TCG is slow: slot writes alone (while the other node is ineligible, nobody acknowledges
# the master's heartbeats) need a longer lease than the default 500 ms to keep it.
opt="compartd.timeouts.health_interval=1s compartd.timeouts.lease=2s"
rig_node_start a1 --append "$opt"
rig_node_start b1 --append "$opt"
rig_wait_all 'event=ready node=' 300 a1 b1
master_of() { rig_events "$1" | grep -E '^event=role .*kind=infra' | tail -n 1 | grep -q ' role=master'; }
m=
for ((i = 0; i < 120; i++)); do
	for n in a1 b1; do master_of "$n" && m=$n; done
	[ -n "$m" ] && break
	sleep 0.5
done
[ -n "$m" ] || fail "no infra master among a1 b1"
case $m in a1) o=b1 ;; *) o=a1 ;; esac
echo "infra master: $m"
rig_wait_for "$m" 'event=health component=md:infra' 5 >/dev/null 2>&1 || true

rig_mark "$o"
rig_sh "$m" "mdadm --stop /dev/md/infra" 60 | tail -n 3
line=$(rig_wait_for "$m" 'event=role .*kind=infra.* role=none.* reason=ineligible' 60) ||
	fail "$m did not leave the infra election"
echo "$line" | grep -Eq 'cause="md:infra (failed|needs-operator)"' || fail "cause: $line"
rig_wait_for "$o" 'event=role .*kind=infra.* role=master' 60 >/dev/null ||
	fail "$o did not take over"
rec=$(rig_wait_for "$m" 'event=health component=md:infra state=recovered stage=[a-z]* action=(reload|rebuild)' 180) ||
	fail "md:infra of $m not recovered by its reload or rebuild"
rig_wait_for "$m" 'event=role .*kind=infra.* role=slave' 60 >/dev/null ||
	fail "$m not back as slave"
sleep 3
ev=$(rig_events "$m")
grep -E '^event=(health component=md:infra|role .*kind=infra|raid name=infra)' <<<"$ev" | tail -n 12
master_of "$m" && fail "$m took the mastership back"
master_of "$o" || fail "$o is no longer master"
if grep -q 'action=rebuild' <<<"$rec"; then
	grep -Eq '^event=raid name=infra action=assemble' <<<"$ev" || fail "no assemble by the rebuild"
fi
out=$(rig_md_detail "$m" infra)
grep -Eq 'State : (clean|active)' <<<"$out" || fail "md infra of $m: $out"
echo PASS
