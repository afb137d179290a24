#!/usr/bin/env bash
# make demo: boots the rig's four nodes (a1 a2 in compartment a, b1 b2 in b) with the
# storage, streams their event= lines with the node's name in front, then prints a table
# per node and tears everything down. Exit 0 when the cluster reached its expected state:
#   - every node ready (event=ready);
#   - /dev/md/infra clean with 2/2 members on every node;
#   - mirror0 on every node through both portals (2/2);
#   - exactly one node starts management
#     (profile infra-and-mgmt), the others run infra-only;
#   - exactly one infra master in pair p1, and one admin master among its MZ nodes.
#
#   images/rig/demo.sh BUILD      (DEMO_TIMEOUT=seconds, default 240; DEMO_SETTLE=8)
set -uo pipefail
BUILD=${1:-build}
. "$(dirname "$0")/lib.sh"
rig_require
rig_init
rig_up
nodes=(a1 a2 b1 b2)
timeout=${DEMO_TIMEOUT:-240}
settle=${DEMO_SETTLE:-8}

echo "demo: rig $RIG_NS, nodes ${nodes[*]}, storage on 10.77.1.100 / 10.77.2.100"
streams=()
tails=()
for n in "${nodes[@]}"; do
	rig_node_start "$n"
	mkfifo "$RIG_DIR/$n.stream"
	tail -n +1 -F "$RIG_DIR/$n.log" 2>/dev/null >"$RIG_DIR/$n.stream" &
	tails+=($!)
	grep --line-buffered -o 'event=.*' <"$RIG_DIR/$n.stream" | sed -u "s/^/[$n] /" &
	streams+=($!)
done
# Each stream is tail | grep | sed; $! is the sed. Ending tail ends the rest.
stop_streams() {
	local p
	for p in "${tails[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${streams[@]}"; do wait "$p" 2>/dev/null; done
}

# Wait for every node's ready, then let the cluster settle.
end=$(($(date +%s) + timeout))
ready_t=()
for n in "${nodes[@]}"; do
	left=$((end - $(date +%s)))
	[ $left -gt 0 ] || left=1
	if rig_wait_for "$n" 'event=ready ' "$left" >/dev/null 2>&1; then
		ready_t+=("$n=$(rig_elapsed "$n")")
	fi
done
sleep "$settle"
# The mirrors' state now (events only mark changes; the resync ends quietly): read in
# each guest, through its console's rescue shell, waiting for the resync to finish.
declare -A md_now=()
for n in "${nodes[@]}"; do
	grep -q '^event=raid name=infra' <<<"$(rig_events "$n")" || continue
	left=$((end - $(date +%s)))
	[ $left -gt 10 ] || left=10
	out=$(rig_md_wait "$n" infra 'State : (clean|active) *$' "$left" 2>/dev/null) || out=$(rig_md_detail "$n" infra 2>/dev/null) || true
	st=$(sed -n 's/^ *State : \(.*[^ ]\) *$/\1/p' <<<"$out" | tr -d ' ' | head -1)
	act=$(sed -n 's/^ *Active Devices : \([0-9]*\).*/\1/p' <<<"$out" | head -1)
	tot=$(sed -n 's/^ *Raid Devices : \([0-9]*\).*/\1/p' <<<"$out" | head -1)
	md_now[$n]="infra ${st:-?} ${act:-?}/${tot:-?}"
done
stop_streams

# The table, from each node's event lines (the last value of each kind wins).
ok=1
raid_seen=0
role_seen=0
masters=0
admin_masters=0
storage_seen=0
mgmt=0
decided=0
printf '\n%-4s %-4s %-7s %-34s %-26s %-12s %-16s %s\n' node comp ready disks raid paths profile role
for n in "${nodes[@]}"; do
	ev=$(rig_events "$n")
	comp=$(rig_conf_node "$n" compartment)
	rt=$(printf '%s\n' "${ready_t[@]}" | sed -n "s/^$n=//p")
	[ -n "$rt" ] || { rt=-; ok=0; }
	disks=$(grep '^event=disk ' <<<"$ev" | sed -n 's/.*dev=\([^ ]*\).*verdict=\([^ ]*\).*/\1:\2/p' |
		sed 's|/dev/||' | awk '!s[$0]++' | tr '\n' ' ')
	raid=${md_now[$n]:-}
	[ -n "$raid" ] && raid_seen=1
	[ -n "$raid" ] && ! grep -q 'infra clean 2/2' <<<"$raid" && ok=0
	paths=$(grep '^event=storage ' <<<"$ev" | tail -1 | sed -n 's/.*paths=\([^ ]*\).*/\1/p')
	[ -n "$paths" ] && storage_seen=1
	[ -n "$paths" ] && [ "$paths" != 2/2 ] && ok=0
	# the profile in force: the last decision (they are re-evaluated), else what ready said
	profile=$(grep '^event=decision ' <<<"$ev" | tail -1 | sed -n 's/.*profile=\([^ ]*\).*/\1/p')
	[ -n "$profile" ] ||
		profile=$(grep '^event=ready ' <<<"$ev" | tail -1 | sed -n 's/.*profile=\([^ ]*\).*/\1/p')
	grep -q '^event=decision ' <<<"$ev" && decided=$((decided + 1))
	[ "$profile" = infra-and-mgmt ] && mgmt=$((mgmt + 1))
	role=$(grep '^event=role ' <<<"$ev" | grep 'kind=infra' | grep "node=$n" | tail -1 |
		sed -n 's/.*role=\([^ ]*\).*epoch=\([^ ]*\).*/infra \1 e\2/p')
	[ -n "$role" ] && role_seen=1
	grep -q 'infra master' <<<"$role" && masters=$((masters + 1))
	# MZ nodes also elect the administrative instance among themselves.
	arole=$(grep '^event=role ' <<<"$ev" | grep 'kind=admin' | grep "node=$n" | tail -1 |
		sed -n 's/.*role=\([^ ]*\).*epoch=\([^ ]*\).*/admin \1 e\2/p')
	[ -n "$arole" ] && role="$role, $arole"
	grep -q 'admin master' <<<"$arole" && admin_masters=$((admin_masters + 1))
	printf '%-4s %-4s %-7s %-34s %-26s %-12s %-16s %s\n' "$n" "$comp" "$rt" "${disks:--}" \
		"${raid:--}" "${paths:--}" "${profile:--}" "${role:--}"
done
echo
# Every module runs in this image: a missing kind of event is a failure, not "not checked".
[ $storage_seen -eq 1 ] || { echo "demo: no node reported its storage (event=storage)"; ok=0; }
[ $raid_seen -eq 1 ] || { echo "demo: no node reported its mirror (/dev/md/infra)"; ok=0; }
[ $decided -gt 0 ] || { echo "demo: no node made a boot decision (event=decision)"; ok=0; }
if [ $mgmt -ne 1 ]; then
	echo "demo: expected exactly one node with management (infra-and-mgmt), saw $mgmt"
	ok=0
fi
[ $role_seen -eq 1 ] || { echo "demo: no node took part in the election (event=role)"; ok=0; }
if [ $masters -ne 1 ]; then
	echo "demo: expected exactly one infra master in pair p1, saw $masters"
	ok=0
fi
if [ $admin_masters -ne 1 ]; then
	echo "demo: expected exactly one admin master among the MZ nodes of p1, saw $admin_masters"
	ok=0
fi
if [ $ok -eq 1 ]; then
	echo "demo: the cluster reached its expected state"
	exit 0
fi
echo "demo: the cluster did NOT reach its expected state (serial logs: $RIG_LOGS)"
exit 1
