#!/usr/bin/env bash
# Boots the rig by hand and keeps it up until Ctrl-C (then tears everything down).
#
#   images/rig/rig.sh [--pxe] [NODE...]      (default: a1 a2 b1 b2; BUILD=build)
#
# While it runs: each console is $RIG_DIR/<node>.log (tail -f it); type into one with
#   printf 'status\n' > $RIG_DIR/<node>.ser.in
# ('sh' there gives a rescue shell, 'exit' leaves it). Other shells can reach the rig's
# networks with `ip netns exec rig-<id> ...` (ids are printed below).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pxe=()
if [ "${1:-}" = --pxe ]; then pxe=(--pxe); shift; fi
nodes=("$@")
[ ${#nodes[@]} -gt 0 ] || nodes=(a1 a2 b1 b2)
rig_require
rig_init
rig_up
for n in "${nodes[@]}"; do rig_node_start "$n" "${pxe[@]}"; done
echo "rig $RIG_ID up: namespaces $RIG_NS (bridges, router, nodes) and $RIG_NS_ST (storage)"
echo "consoles: $RIG_DIR/<node>.log, input: $RIG_DIR/<node>.ser.in; Ctrl-C tears down"
for n in "${nodes[@]}"; do
	rig_wait_for "$n" 'event=ready ' 300 | sed "s/^/[$n] /" || true
done
while :; do sleep 3600; done
