#!/usr/bin/env bash
# timeout: 90
# A replayed HELLO (no key needed) must not keep a peer "not contacted" (SPEC §5).
# Phase 1: b1 runs alone; a relay in front of a1's address captures b1's HELLOs to a1.
# Phase 2: b1 restarts (a new boot); a1 and b1 reach each other through relays that add
# 12 ms each way (a 25 ms round trip), and the relay in front of a1 replays the captured
# HELLOs of b1's previous boot to a1 at 200/s. a1 must contact b1 and keep it contacted,
# and count the replayed HELLOs as drops (`peers`). Answers go to the configured address,
# so every answer crosses the relays too.
HS_PORT=7465 # its own port: the relays bind handshake addresses
. "$(dirname "$0")/lib-hs.sh"
DELAY=$HS_TMP/delay
CAP=$HS_TMP/hellos.hex
relay() { # relay NAME LISTEN TARGET [options…]
	local name=$1 listen=$2 target=$3
	shift 3
	python3 "$REPO/tests/udp_delay.py" "$listen:$HS_PORT" "$target:$HS_PORT" "$DELAY" 60 "$@" \
		>"$HS_TMP/$name.out" 2>&1 &
	HS_PID[$name]=$!
}
hs_setup
echo 12 >"$DELAY"
hs_cmdline a1 compartd.node.a1.handshake=127.0.1.111
hs_cmdline b1 compartd.node.b1.handshake=127.0.1.121

relay cap 127.0.1.11 127.0.1.111 --capture "$CAP"
sleep 0.5
kill -0 "${HS_PID[cap]}" || fail "the capturing relay did not start"
hs_start b1
for ((i = 0; i < 50; i++)); do
	[ "$(wc -l 2>/dev/null <"$CAP" || echo 0)" -ge 4 ] && break
	sleep 0.1
done
[ "$(wc -l <"$CAP")" -ge 4 ] || fail "no HELLOs of b1 captured"
hs_stop b1
hs_stop cap
mv "$HS_TMP/b1.log" "$HS_TMP/b1-first-boot.txt"
echo "captured $(wc -l <"$CAP") HELLOs of b1's first boot"

relay front-a1 127.0.1.11 127.0.1.111 --replay "$CAP" --rate 200
relay front-b1 127.0.1.21 127.0.1.121
sleep 0.5
kill -0 "${HS_PID[front-a1]}" || fail "the replaying relay did not start"
kill -0 "${HS_PID[front-b1]}" || fail "the b1 relay did not start"
hs_start b1
hs_start a1
hs_wait a1 'event=ready' 15
hs_wait a1 'event=peer node=b1 state=contacted' 10
sleep 3 # the replay goes on
grep -q 'event=peer node=b1 state=lost' "$HS_TMP/a1.log" && fail "a1 lost b1 under the replay"
hs_ctl a1 peers
json=$(hs_ctl a1 peers --json)
echo "$json" | jq -e '.peers[] | select(.node == "b1") | .state == "contacted"' >/dev/null ||
	fail "b1 not contacted at the end"
limited=$(echo "$json" | jq '.drops["hello-rate"]')
echo "replayed HELLOs dropped as hello-rate: $limited"
[ "${limited:-0}" -ge 300 ] || fail "the replayed HELLOs were not counted as drops ($limited)"
hs_ctl a1 peers | grep -Eq 'dropped:.* hello-rate=[0-9]+' || fail "peers does not show the reason"
echo "a replayed HELLO of an old boot neither blocks the peer nor goes uncounted"
