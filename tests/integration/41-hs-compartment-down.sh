#!/usr/bin/env bash
# timeout: 90
# Compartment a down, b1 and b2 up: both see 1/3 (33% < 50%).
#  1. rig config (with a quorum device, whose freshness nobody reports here: unknown, which
#     counts as alive): rule 4 must not fire; both take rule 5, infra-only.
#  2. config without a quorum device, a1 and a2 dead on their external interfaces too:
#     b1 (mgmt capable, best among b1 b2) takes rule 4, infra-and-mgmt; b2 (not capable)
#     rule 5, infra-only.
#  3. all four up, then a1 a2 stop: b1 re-evaluates (contacted 3 -> 1) and takes over the
#     management (rule 4), b2 stays infra-only.
. "$(dirname "$0")/lib-hs.sh"

hs_setup
hs_start b1
hs_start b2
for n in b1 b2; do
	hs_wait $n 'event=decision rule=default profile=infra-only contacted=1/3' 15
	hs_wait $n 'event=ready' 5
done
grep -q 'profile=infra-and-mgmt' "$HS_TMP"/b?.log && fail "infra-and-mgmt with unknown qdev liveness"
hs_ctl b1 peers --json | grep -q '"node":"a1".*"qdev":"unknown"' || fail "qdev of a1 not unknown"
hs_stop b1
hs_stop b2
echo "case 1 ok: unknown quorum-device liveness keeps rule 4 from firing"

hs_setup '/^\[quorum\]/,/^$/d'
: >"$HS_TMP/hooks.log"
hs_start b1
hs_start b2
hs_wait b1 'event=decision rule=minority-rest-dead profile=infra-and-mgmt contacted=1/3' 15
# b2 is not capable: infra-only, by the default rule, or by mgmt-elsewhere when b1's
# heartbeat saying it runs management arrived before b2's own window closed (a loaded machine).
hs_wait b2 'event=decision rule=(default|mgmt-elsewhere) profile=infra-only contacted=1/3' 15
hs_wait b1 'event=hook name=.*start-mgmt status=ok' 5
hs_ctl b1 peers --json | grep -q '"node":"a1".*"external":"dead"' || fail "a1's external interface not dead"
hs_stop b1
hs_stop b2
echo "case 2 ok: without a quorum device, dead externals: b1 runs management"

: >"$HS_TMP/hooks.log"
for n in a1 a2 b1 b2; do hs_start $n; done
for n in a1 a2 b1 b2; do hs_wait $n 'event=ready' 15; done
hs_wait a1 'event=decision rule=majority profile=infra-and-mgmt contacted=3/3' 1
hs_wait b1 'event=decision rule=(mgmt-elsewhere|default) profile=infra-only contacted=3/3' 1
hs_stop a1
hs_stop a2
hs_wait b1 'event=peer node=a1 state=lost' 5
hs_wait b1 'event=decision rule=minority-rest-dead profile=infra-and-mgmt contacted=1/3' 10
hs_wait b2 'event=peer node=a2 state=lost' 5
sleep 1
grep -q 'profile=infra-and-mgmt' "$HS_TMP/b2.log" && fail "b2 (not mgmt capable) took management"
[ "$(grep -c '^start-mgmt b1' "$HS_TMP/hooks.log")" -eq 1 ] || fail "b1 ran start-mgmt $(grep -c '^start-mgmt b1' "$HS_TMP/hooks.log") times"
echo "case 3 ok: compartment a lost, b1 takes over management once"

# 4. a1 unreachable on its handshake address (it listens elsewhere) but alive on its
#    external interface, a2 down, no quorum device: b1 sees 1/3, but a1's external
#    interface answers, so rule 4 must not fire.
hs_stop b1
hs_stop b2
hs_stop a1
hs_stop a2
hs_setup '/^\[quorum\]/,/^$/d'
: >"$HS_TMP/hooks.log"
for n in a1 b1 b2; do hs_cmdline $n; done
sed -i 's/compartd.node.a1.handshake=127.0.1.11/compartd.node.a1.handshake=127.0.1.99/' "$HS_TMP/a1.cmdline"
hs_start a1
hs_start b1
hs_start b2
hs_wait b1 'external interface of a1: alive' 10
hs_wait b1 'event=decision rule=default profile=infra-only contacted=1/3' 10
sleep 1
grep -q 'profile=infra-and-mgmt' "$HS_TMP/b1.log" && fail "b1 took management while a1's external interface answers"
hs_ctl b1 peers --json | grep -q '"node":"a1","compartment":"a","state":"not-contacted".*"external":"alive"' ||
	fail "b1 does not show a1 external alive"
echo "case 4 ok: an uncontacted node alive on its external interface blocks rule 4"
