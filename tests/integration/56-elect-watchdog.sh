#!/usr/bin/env bash
# timeout: 150
# Watchdog fencing (SPEC §7 Fencing) with real agents in network namespaces and a tgtd
# quorum LU. A host-mode agent never arms the host's watchdog, so each node's watchdog is
# a plain file here, and lib-elect.sh's el_wd_setup plays the device: a node whose file
# has not grown (no keep-alive) for watchdog_timeout is reset (kill -9, as a hardware
# reset would).
#  - every node pets its watchdog; role shows the fencing state;
#  - the master's agent is stopped (SIGSTOP) for 3 s: it cannot demote itself; its pets
#    stop, the "watchdog" resets it, and the other compartment's candidate promotes only
#    after the reset could have happened (the takeover waits lease + watchdog_timeout);
#  - a slave stopped cleanly (SIGTERM) disarms its watchdog with the magic 'V'.
# Timelines from promote hook start to demote hook end (or reset), checked for overlap.
source "$(dirname "$0")/lib-elect.sh"
el_setup
el_wd_setup
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 15)
s=$(el_other_candidate "$m")
echo "master: $m"
el_wait_complete "$m"
ctl "$m" role | grep -q "fencing: watchdog $EL_TMP/wd-$m (1000 ms)" ||
	fail "role does not show the watchdog: $(ctl "$m" role)"
ctl "$m" role --json | jq -e '.roles[0].unfenced == false' >/dev/null || fail "role --json: unfenced?"
sleep 1
for n in $EL_NODES; do
	sz=$(stat -c %s "$EL_TMP/wd-$n")
	[ "$sz" -ge 4 ] || fail "$n petted its watchdog $sz times in over a second"
done

t0=$(now_us)
kill -STOP "${EL_PID[$m]}"
for ((i = 0; i < 60; i++)); do
	grep -q " $m watchdog-reset" "$EL_TMP/resets" 2>/dev/null && break
	sleep 0.05
done
reset=$(el_wd_reset_of "$m")
[ -n "$reset" ] || fail "$m was not reset by its watchdog within 3 s of being stopped"
wait "${EL_PID[$m]}" 2>/dev/null
unset "EL_PID[$m]"
echo "$m reset by its watchdog $(((reset - t0) / 1000)) ms after SIGSTOP"
new=$(el_wait_master 10 "$m")
[ "$new" = "$s" ] || fail "new master $new, expected $s"
prom=$(grep -E "^[0-9]+ $new promote infra" "$EL_TMP/hooks.log" | tail -n 1 | cut -d' ' -f1)
echo "$new's promote hook started $(((prom - t0) / 1000)) ms after the SIGSTOP," \
	"$(((prom - reset) / 1000)) ms after the reset"
[ "$prom" -gt "$reset" ] || fail "$new promoted before $m's watchdog reset it"

# a clean stop of a node that is master of nothing disarms its watchdog (a master of the
# admin kind keeps it armed: its instance may still run)
q=
for n in $EL_NODES; do
	[ "$n" != "$new" ] && [ -n "${EL_PID[$n]:-}" ] || continue
	grep -E 'event=role .*kind="?admin' "$EL_TMP/$n.log" | tail -n 1 | grep -q 'role="\{0,1\}master' && continue
	q=$n
	break
done
[ -n "$q" ] || fail "no node is master of nothing"
kill -TERM "${EL_PID[$q]}"
wait "${EL_PID[$q]}" 2>/dev/null
echo "$(now_us) $q killed" >>"$EL_TMP/$q.log"
rm -f "$EL_TMP/$q.pid"
unset "EL_PID[$q]"
[ "$(tail -c 1 "$EL_TMP/wd-$q")" = V ] || fail "$q stopped cleanly without the magic close"
el_check_hook_timelines
echo "ok"
