#!/usr/bin/env bash
# timeout: 600
# SPEC §11, seed 002: the four nodes and the storage start in a random order with random
# delays (up to RIG_MAX_DELAY s, default 30), as after a power cut of a whole room, on the
# same disks run after run. Every run (RIG_ORDERS, default 2; bench/random-order.sh runs 10)
# must end with every node ready, exactly one infra master and one admin master, mirror0
# 2/2 on every node, and no disk repartitioned after the first run. RIG_SEED repeats runs.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
RIG_NO_STORAGE=1
rig_init
rig_up
fail() { echo "FAIL: $*"; exit 1; }
ORDERS=${RIG_ORDERS:-2}
MAX_DELAY=${RIG_MAX_DELAY:-30}
SEED=${RIG_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
NODES=(a1 a2 b1 b2)
echo "seed $SEED, $ORDERS orders, delays up to ${MAX_DELAY}s"

# last_role NODE KIND: the node's last role of that kind in this run
last_role() {
	rig_events "$1" | grep "^event=role .*kind=$2 node=$1 " | tail -1 | sed -n 's/.* role=\([^ ]*\).*/\1/p'
}

# settled: every node ready, one master per kind, storage 2/2 everywhere
settled() {
	local n infra=0 admin=0 p
	for n in "${NODES[@]}"; do
		grep -q '^event=ready ' <<<"$(rig_events "$n")" || return 1
		p=$(rig_events "$n" | grep '^event=storage name=mirror0 ' | tail -1 | sed -n 's/.*paths=\([^ ]*\).*/\1/p')
		[ "$p" = 2/2 ] || return 1
		[ "$(last_role "$n" infra)" = master ] && infra=$((infra + 1))
		[ "$(last_role "$n" admin)" = master ] && admin=$((admin + 1))
	done
	[ $infra -eq 1 ] && [ $admin -eq 1 ]
}

summary() {
	local n
	for n in "${NODES[@]}"; do
		echo "  $n: ready=$(rig_events "$n" | grep -c '^event=ready ' || true)" \
			"paths=$(rig_events "$n" | grep '^event=storage name=mirror0 ' | tail -1 | sed -n 's/.*paths=\([^ ]*\).*/\1/p')" \
			"infra=$(last_role "$n" infra) admin=$(last_role "$n" admin)"
	done
}

for ((run = 1; run <= ORDERS; run++)); do
	# a schedule: "delay what" for the four nodes and the storage, sorted by delay
	sched=$(for w in "${NODES[@]}" storage; do echo "$((RANDOM % (MAX_DELAY + 1))) $w"; done | sort -n)
	echo "run $run: $(tr '\n' ' ' <<<"$sched")"
	t0=$(date +%s.%N)
	prev=0
	while read -r d w; do
		sleep $((d - prev))
		prev=$d
		if [ "$w" = storage ]; then rig_storage_up >/dev/null 2>&1; else rig_node_start "$w" 2>/dev/null; fi
	done <<<"$sched"
	ok=0
	for _ in $(seq 180); do # at most 180 s after the last start (TCG, four guests)
		# settled, and still so 5 s later (a lease lapsing under TCG load is not the end)
		settled && sleep 5 && settled && { ok=1; break; }
		sleep 1
	done
	t=$(echo "$(date +%s.%N) - $t0" | bc)
	if [ $ok -eq 0 ]; then
		summary
		fail "run $run did not settle (seed $SEED)"
	fi
	if [ $run -gt 1 ]; then
		for n in "${NODES[@]}"; do
			if rig_events "$n" | grep -Eq '^event=disk .*verdict=(create|wiped)'; then
				fail "run $run: $n repartitioned a disk (seed $SEED)"
			fi
		done
	fi
	echo "run $run settled after ${t}s"
	for n in "${NODES[@]}"; do rig_kill "$n" 2>/dev/null; done
	rig_storage_down 2>/dev/null
done
echo "PASS: $ORDERS random orders (seed $SEED) each ended with one infra and one admin master, every node ready, storage 2/2, no disk repartitioned"
