#!/usr/bin/env bash
# timeout: 120
# SPEC §7 (the token is handed on only after the demote hook ended), real agents in network namespaces and a tgtd quorum LU: the operator
# demotes the master whose demote hook takes 2 s. Acting as master lasts until the demote
# hook ends (SPEC §7), so the token is handed on only then: the other compartment's
# candidate promotes after the old master's demote hook ended, never while it runs.
# Timelines of all nodes from promote hook start to demote hook end, checked for overlap.
source "$(dirname "$0")/lib-elect.sh"
el_setup
echo 2 >"$EL_TMP/demote-sleep"
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 15)
want=$(el_other_candidate "$m")
echo "master: $m"
el_wait_complete "$m"
sleep 0.5

t0=$(now_us)
out=$(ctl "$m" demote infra) || fail "demote of $m refused: $out"
new=$(el_wait_master 10 "$m")
[ "$new" = "$want" ] || fail "new master $new, expected $want"
for ((i = 0; i < 100; i++)); do
	grep -q " $m demote-end infra" "$EL_TMP/hooks.log" && break
	sleep 0.05
done
end=$(grep " $m demote-end infra" "$EL_TMP/hooks.log" | tail -n 1 | cut -d' ' -f1)
[ -n "$end" ] || fail "$m: the demote hook never ended"
prom=$(grep -E "^[0-9]+ $new promote infra" "$EL_TMP/hooks.log" | tail -n 1 | cut -d' ' -f1)
echo "demote hook of $m ended $(((end - t0) / 1000)) ms after the demote;" \
	"$new's promote hook started $(((prom - t0) / 1000)) ms after it"
[ "$prom" -gt "$end" ] || fail "$new promoted while $m's demote hook still ran"
sleep 1
[ "$(el_masters | tr -d '\n')" = "$new" ] || fail "masters now: $(el_masters | tr '\n' ' ')"
el_check_hook_timelines
el_check_timelines
echo "ok"
