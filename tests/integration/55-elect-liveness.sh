#!/usr/bin/env bash
# timeout: 150
# SPEC §7 (a candidate without the quorum LU blocks nobody), real agents in network namespaces and a tgtd quorum LU: the other
# compartment's candidate s loses the quorum LU (network intact), then the master m dies.
# s cannot take the token; it must not keep the nodes that can from taking it: a node
# with the LU is master within a few seconds.
# Timelines from promote hook start to demote hook end, checked for overlap.
source "$(dirname "$0")/lib-elect.sh"
el_setup
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 15)
s=$(el_other_candidate "$m")
echo "master $m, the other compartment's candidate $s loses the quorum LU"
el_wait_complete "$m"
el_cut_qdev "$s"
sleep 2
[ "$(el_masters | tr -d '\n')" = "$m" ] || fail "masters: $(el_masters | tr '\n' ' ')"

t0=$(now_us)
el_kill "$m"
new=$(el_wait_master 10 "$m")
[ "$new" != "$s" ] || fail "$s became master without the quorum LU"
t1=$(el_master_since "$new" "$t0")
echo "$new master $(((t1 - t0) / 1000)) ms after $m died"
sleep 1
[ "$(el_masters | tr -d '\n')" = "$new" ] || fail "masters: $(el_masters | tr '\n' ' ')"
el_heal_qdev "$s"
el_start "$m"
sleep 3
[ "$(el_masters | tr -d '\n')" = "$new" ] || fail "after healing, masters: $(el_masters | tr '\n' ' ')"
el_check_hook_timelines
el_check_timelines
echo "ok"
