#!/usr/bin/env bash
# timeout: 90
# The peer link check measures the handshake round trip against t_max (SPEC §8: connectivity
# first). a1 reaches a2 through tests/udp_delay.py, a relay on loopback; a2 reaches a1
# directly. Answers go to the configured address (SPEC §5), so every round trip, a1's and
# a2's, crosses the relay once. With 130 ms added a1's link to a2 fails its integrity stage
# (round trip above t_max 100ms) while the peer stays contacted (below the 200 ms handshake
# timeout) and a2 sees the same slow link; with the delay gone, the link recovers by itself.
HS_PORT=7466 # its own port: the relay binds a handshake address
. "$(dirname "$0")/lib-hs.sh"
DELAY=$HS_TMP/delay
hs_setup
common="compartd.timeouts.health_interval=300ms compartd.timeouts.t_max=100ms"
hs_cmdline a1 $common # a1 sends to a2 at 127.0.1.12: the relay
hs_cmdline a2 $common compartd.node.a2.handshake=127.0.1.112
python3 "$REPO/tests/udp_delay.py" 127.0.1.12:$HS_PORT 127.0.1.112:$HS_PORT "$DELAY" 80 \
	>"$HS_TMP/relay.log" 2>&1 &
HS_PID[relay]=$!
sleep 0.5; kill -0 "${HS_PID[relay]}" || fail "the relay did not start"
hs_start a1
hs_start a2
hs_wait a1 'event=peer node=a2 state=contacted' 10
state() { # state NODE COMPONENT
	hs_ctl "$1" health --json | jq -r --arg c "$2" '.components[] | select(.component == $c) | .state'
}
for ((i = 0; i < 50; i++)); do
	[ "$(state a1 peer:a2)" = ok ] && break
	sleep 0.1
done
[ "$(state a1 peer:a2)" = ok ] || fail "peer:a2 not ok at the start: $(hs_ctl a1 health)"

echo 130 >"$DELAY"
hs_wait a1 'event=health component=peer:a2 state=failed stage=integrity .*reason="round trip [0-9]+ us above t_max 100ms"' 15
hs_wait a1 'event=health component=peer:a2 state=needs-operator stage=integrity' 10
hs_ctl a1 health
hs_ctl a1 health | grep -Eq '^peer:a2 .*above t_max' || fail "a1's health does not say why"
hs_ctl a1 peers --json | grep -q '"node":"a2","compartment":"a","state":"contacted"' ||
	fail "a slow link is still a contacted one"
hs_ctl a2 peers --json | grep -q '"node":"a1","compartment":"a","state":"contacted"' ||
	fail "a2 lost a1 over a slow link"

# The link may have flapped while a1 waited for its first answer: count recoveries from here.
recovered() { grep -c 'event=health component=peer:a2 state=recovered' "$HS_TMP/a1.log"; }
before=$(recovered)
echo 0 >"$DELAY"
for ((i = 0; i < 100; i++)); do
	[ "$(recovered)" -gt "$before" ] && break
	sleep 0.1
done
[ "$(recovered)" -gt "$before" ] || fail "peer:a2 did not recover: $(hs_ctl a1 health)"
[ "$(state a1 peer:a2)" = ok ] || fail "peer:a2 not ok after the delay went: $(hs_ctl a1 health)"
hs_ctl a1 health | grep -E '^peer:a2 '
echo "a link slower than t_max is reported, and recovers when it is fast again"
