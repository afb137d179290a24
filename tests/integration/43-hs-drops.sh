#!/usr/bin/env bash
# timeout: 60
# Bad datagrams are dropped and counted by reason, and the agent keeps working: a1 and a2
# run as agents; tests/hs_inject.c poses as b2 and sends a wrong-key, a forged, a truncated,
# an oversize, an unknown-version and an unknown-sender datagram, a replayed heartbeat, one
# from a replaced boot and one from a boot never proven fresh. `peers --json` on a1 must
# count each; a1 must still see a2 contacted and answer its console.
. "$(dirname "$0")/lib-hs.sh"
# Linked against the agent's own library in BUILD (the plain build under make check).
cc -std=gnu17 -O1 -D_GNU_SOURCE -I"$REPO/agent/base" -I"$REPO/agent/config" -I"$REPO/agent/handshake" -o "$HS_TMP/hs_inject" "$REPO/tests/hs_inject.c" \
	"$BUILD/libcompart.a" -Wl,--as-needed $(pkg-config --libs libsodium libiscsi blkid libparted) || fail "cannot build hs_inject"
hs_setup
hs_start a1
hs_start a2
hs_wait a1 'event=peer node=a2 state=contacted' 10
hs_wait a1 'event=ready' 10
count() { # count NODE REASON
	hs_ctl "$1" peers --json | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}
declare -A before
reasons="bad-tag truncated oversize version unknown-sender replay old-boot unverified-boot"
declare -A want=([bad-tag]=2 [truncated]=1 [oversize]=1 [version]=1 [unknown-sender]=1
	[replay]=1 [old-boot]=1 [unverified-boot]=1)
# One injection, every reason counted exactly. The injector confirms each of its handshakes
# in a1's log and repeats one whose answer a1 had already replaced with a newer challenge;
# each such stale answer is one more unverified-boot drop, and it says how many there were.
for r in $reasons; do before[$r]=$(count a1 $r); done
"$HS_TMP/hs_inject" "$REPO/images/rig/cluster.key" 127.0.1.22:$HS_PORT 127.0.1.11:$HS_PORT 0 3 \
	"$HS_TMP/a1.log" | tee "$HS_TMP/inject.out" || fail "hs_inject failed"
stale=$(sed -n 's/^stale answers: //p' "$HS_TMP/inject.out")
[ -n "$stale" ] || fail "hs_inject did not finish"
want[unverified-boot]=$((want[unverified-boot] + stale))
sleep 0.5
for r in $reasons; do
	got=$(($(count a1 $r) - ${before[$r]}))
	echo "drops $r: $got (expected ${want[$r]})"
	[ "$got" -eq "${want[$r]}" ] || fail "a1 counted $got $r drops, expected ${want[$r]}"
done
hs_ctl a1 peers
hs_ctl a1 peers --json | grep -q '"node":"a2","compartment":"a","state":"contacted"' ||
	fail "a1 lost a2"
grep -q 'event=peer node=b2 state=contacted' "$HS_TMP/a1.log" ||
	fail "the impersonated b2 (with the right key) was never contacted"
hs_ctl a1 status >/dev/null || fail "a1 console does not answer"
kill -0 "${HS_PID[a1]}" || fail "a1 died"
echo "every bad datagram dropped and counted; a1 keeps working"
