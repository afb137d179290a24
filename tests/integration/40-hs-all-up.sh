#!/usr/bin/env bash
# timeout: 60
# Four agents of the rig config on loopback, all up: each contacts the other three and
# takes the profile SPEC §6 prescribes (rule 3 for a1, the best mgmt-capable node; rule 2
# or 5 for the others), and only a1 runs the management hook.
. "$(dirname "$0")/lib-hs.sh"
hs_setup
for n in a1 a2 b1 b2; do hs_start $n; done
for n in a1 a2 b1 b2; do
	hs_wait $n 'event=ready node='$n 15
done
for n in a1 a2 b1 b2; do
	hs_wait $n 'event=decision .*contacted=3/3' 1
	c=$(grep -c 'event=peer .*state=contacted' "$HS_TMP/$n.log")
	[ "$c" -eq 3 ] || fail "$n: $c peers contacted, expected 3"
	hs_ctl $n peers --json | grep -q '"contacted":3' || fail "$n: peers --json does not say 3"
done
hs_wait a1 'event=decision rule=majority profile=infra-and-mgmt contacted=3/3' 1
for n in a2 b1 b2; do
	hs_wait $n 'event=decision rule=(mgmt-elsewhere|default) profile=infra-only contacted=3/3' 1
	grep -q 'profile=infra-and-mgmt' "$HS_TMP/$n.log" && fail "$n started management too"
done
hs_wait a1 'event=hook name=.*start-mgmt status=ok exit=0' 5
[ "$(grep -c '^start-mgmt' "$HS_TMP/hooks.log")" -eq 1 ] || fail "start-mgmt ran $(grep -c '^start-mgmt' "$HS_TMP/hooks.log") times"
[ "$(grep -c '^start-infra' "$HS_TMP/hooks.log")" -eq 4 ] || fail "start-infra did not run once per node"
# a configuration reload (SIGHUP) does not disturb the handshake
kill -HUP "${HS_PID[a1]}"
hs_wait a1 'configuration reloaded' 5
sleep 1
hs_ctl a1 peers --json | grep -q '"contacted":3' || fail "a1 lost peers after a reload"
grep -q 'state=lost' "$HS_TMP"/*.log && fail "a peer was lost"
hs_ctl a1 peers
echo "all up: 3/3 everywhere, a1 infra-and-mgmt, others infra-only"
