#!/usr/bin/env bash
# timeout: 120
# Election with real agents in network namespaces and a tgtd quorum LU (SPEC §7):
# kill the master -> the other compartment's candidate is master within
# master_timeout + 1 s; the old master returns -> slave, no preemption; no two masters
# at any instant in the event=role timelines of all nodes.
source "$(dirname "$0")/lib-elect.sh"
el_setup
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 15)
echo "first master: $m"
sleep 2
[ "$(el_masters | wc -l)" = 1 ] || fail "not exactly one master: $(el_masters | tr '\n' ' ')"
case $m in a*) want=b1 ;; *) want=a1 ;; esac
grep -q "$m promote infra" "$EL_TMP/hooks.log" || fail "promote hook of $m did not run"

# The operator's promote/demote through the console: refused when unsafe, with the reason.
ctl() { "$BUILD/compartctl" --socket "$EL_TMP/$1/console.sock" "${@:2}"; }
case $m in a1) s=b1 ;; *) s=a1 ;; esac
out=$(ctl "$s" promote infra) && fail "promote of slave $s accepted while $m is master: $out"
echo "$out" | grep -q "refused: another master is alive: demote it first" || fail "promote refusal: $out"
out=$(ctl "$s" demote infra) && fail "demote of slave $s accepted: $out"
echo "$out" | grep -q "refused: this node is not master" || fail "demote refusal: $out"
out=$(ctl "$m" promote infra --json) && fail "promote of the master accepted: $out"
echo "$out" | jq -e '.error | test("already master")' >/dev/null || fail "promote --json refusal: $out"
out=$(ctl b2 demote admin) && fail "demote admin on a DMZ node accepted: $out"
echo "$out" | grep -q "takes no part in the admin election" || fail "admin on DMZ: $out"
ctl "$m" role | grep -q "infra.*master" || fail "role on $m does not say master: $(ctl "$m" role)"

t0=$(now_us)
el_kill "$m"
new=$(el_wait_master 5 "$m")
[ "$new" = "$want" ] || fail "takeover by $new, expected the other compartment's candidate $want"
t1=$(el_master_since "$new" "$t0")
[ -n "$t1" ] || fail "no role=master line of $new after the kill"
ms=$(((t1 - t0) / 1000))
echo "failover to $new after $ms ms"
# master_timeout = max(3 x 200 ms, 500 ms + 250 ms) = 750 ms; bound: + 1 s
[ "$ms" -le 1750 ] || fail "failover took $ms ms (> 1750)"
grep -q 'reason="\{0,1\}takeover' "$EL_TMP/$new.log" || fail "$new: no takeover reason"

el_start "$m"
sleep 3
[ "$(el_role "$m")" = slave ] || fail "returning $m is $(el_role "$m"), not slave"
[ "$(el_masters | tr -d '\n')" = "$new" ] || fail "masters now: $(el_masters | tr '\n' ' ')"
el_check_timelines
echo "ok"
