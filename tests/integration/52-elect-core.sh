#!/usr/bin/env bash
# timeout: 120
# Core health and election eligibility (SPEC §7, §8) with real agents in network
# namespaces and a tgtd quorum LU: the master's configuration file is broken under it (a
# core component: the file no longer matches what it runs and cannot be reloaded) ->
# health fails it -> the node leaves eligibility in every election (infra and admin),
# steps down (demote hook, event=role role=none reason=ineligible cause=…) -> the other
# compartment's candidate becomes master; the file is repaired -> eligible again, as slave
# (no preemption); never two masters in the event=role timelines.
source "$(dirname "$0")/lib-elect.sh"
el_setup '/^\[timeouts\]/a health_interval = 300ms'
for n in $EL_NODES; do cp "$EL_TMP/cluster.conf" "$EL_TMP/$n.conf"; done
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 15)
echo "first master: $m"
case $m in a*) want=b1 ;; *) want=a1 ;; esac
el_wait_complete "$m" 10
ctl() { "$BUILD/compartctl" --socket "$EL_TMP/$1/console.sock" "${@:2}"; }
ctl "$m" status | grep -q '^election    eligible$' || fail "status of $m: $(ctl "$m" status)"
ctl "$m" health | grep -q '^core (config:cluster): ok$' || fail "health of $m: $(ctl "$m" health)"

t0=$(now_us)
echo "this line is not INI" >>"$EL_TMP/$m.conf"
new=$(el_wait_master 6 "$m")
t1=$(el_master_since "$new" "$t0")
[ -n "$t1" ] || fail "no role=master line of $new after the core failure"
echo "core failure of $m: $new master after $(((t1 - t0) / 1000)) ms (health_interval 300 ms)"
[ "$new" = "$want" ] || fail "takeover by $new, expected the other compartment's candidate $want"
log=$EL_TMP/$m.log
grep -q 'event=health component=config:cluster state=failed stage=parses' "$log" ||
	fail "$m: no event=health for the broken config"
grep -Eq 'event=role .*kind="?infra.* role="?none.* reason="?ineligible.* cause="config:cluster (failed|needs-operator)"' "$log" ||
	fail "$m: no infra event=role role=none reason=ineligible with the cause"
# The admin election runs among compartment a's nodes (zone mz, mgmt_capable): a master
# there leaves it too; a master of b (zone dmz) never took part in it.
case $m in
a*) grep -Eq 'event=role .*kind="?admin.* role="?none.* reason="?ineligible' "$log" ||
	fail "$m: the admin election kept $m eligible" ;;
*) ! grep -q 'kind="\{0,1\}admin' "$log" || fail "$m (zone dmz) took part in the admin election" ;;
esac
grep -q "$m demote infra" "$EL_TMP/hooks.log" || fail "demote hook of $m did not run"
out=$(ctl "$m" role)
echo "$out" | grep -Eq 'ineligible: config:cluster (failed|needs-operator)' || fail "role of $m: $out"
ctl "$m" status | grep -Eq '^election    ineligible: config:cluster' || fail "status: $(ctl "$m" status)"
ctl "$m" status --json | jq -e '.eligible == false and (.ineligible | test("config:cluster"))' \
	>/dev/null || fail "status --json: $(ctl "$m" status --json)"
out=$(ctl "$m" promote infra) && fail "promote of ineligible $m accepted: $out"
echo "$out" | grep -q 'not eligible' || fail "promote refusal: $out"
sleep 1
[ "$(el_masters | tr -d '\n')" = "$new" ] || fail "masters now: $(el_masters | tr '\n' ' ')"

# The file is repaired: eligible again, as slave; no preemption.
cp "$EL_TMP/cluster.conf" "$EL_TMP/$m.conf"
for ((i = 0; i < 60; i++)); do
	[ "$(el_role "$m")" = slave ] && break
	sleep 0.1
done
[ "$(el_role "$m")" = slave ] || fail "recovered $m is $(el_role "$m"), not slave"
grep -q 'event=health component=config:cluster state=recovered' "$log" || fail "$m: no recovered line"
ctl "$m" status | grep -q '^election    eligible$' || fail "status after recovery: $(ctl "$m" status)"
sleep 2
[ "$(el_masters | tr -d '\n')" = "$new" ] || fail "masters after recovery: $(el_masters | tr '\n' ' ')"
[ "$(el_role "$m")" = slave ] || fail "$m is $(el_role "$m") after recovery"
el_check_timelines
echo "ok"
