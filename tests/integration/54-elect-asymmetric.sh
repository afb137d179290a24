#!/usr/bin/env bash
# timeout: 150
# SPEC §7 (holder and taker judge on the same facts), real agents in network namespaces and a tgtd quorum LU. The master m and
# the other compartment's candidate s (whose acknowledgements renew m's lease) lose the
# quorum LU; s's compartment mate x loses the network to m and s (both directions) but
# keeps the LU. x sees s and m silent and takes over — but only once s can no longer be
# renewing m's lease: s acknowledges only on facts x shares (a fresh slot of its own, or
# every compartment mate heard), so m steps down first. Then the cuts heal.
# Timelines from promote hook start to demote hook end, checked for overlap.
source "$(dirname "$0")/lib-elect.sh"
el_setup
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 15)
s=$(el_other_candidate "$m")
x=$(el_mate "$s")
echo "master $m, its acknowledging slave $s, the cut-off mate $x"
el_wait_complete "$m"
sleep 0.5

t0=$(now_us)
el_cut_qdev "$m"
el_cut_qdev "$s"
for n in "$m" "$s"; do
	el_cut_link "$x" "$n"
	el_cut_link "$n" "$x"
done
new=$(el_wait_master 15 "$m")
[ "$new" = "$x" ] || fail "new master $new, expected $x (the only node with the LU on its side)"
t1=$(el_master_since "$x" "$t0")
echo "$x master $(((t1 - t0) / 1000)) ms after the cuts"
grep -E 'event=role .*kind="?infra.* reason="?lease-lapsed' "$EL_TMP/$m.log" >/dev/null ||
	fail "$m did not step down with reason=lease-lapsed"
sleep 2
[ "$(el_masters | tr -d '\n')" = "$x" ] || fail "masters: $(el_masters | tr '\n' ' ')"

for n in "$m" "$s"; do
	el_heal_link "$x" "$n"
	el_heal_link "$n" "$x"
	el_heal_qdev "$n"
done
sleep 3
[ "$(el_masters | tr -d '\n')" = "$x" ] || fail "after healing, masters: $(el_masters | tr '\n' ' ')"
el_check_hook_timelines
el_check_timelines
echo "ok"
