#!/usr/bin/env bash
# timeout: 60
# SPEC §11: the handshake address is not assigned when the agent starts (a NIC whose
# driver probes late): in a network namespace of this test, the address appears on a veth
# interface only after 10 s. The agent waits (EADDRNOTAVAIL), serves its console, and
# waits again while the link holding it has no carrier (the veth's peer is down), and comes
# up to a decision within seconds after the carrier is there.
HS_PORT=${HS_PORT:-7537}
. "$(dirname "$0")/lib-hs.sh"
NS=compartd-h35-$$
ADDR=10.99.35.12
trap 'hs_cleanup; ip netns del "$NS" 2>/dev/null' EXIT
if ! ip netns add "$NS" 2>/dev/null; then
	[ "${CI:-}" = true ] && fail "cannot create a network namespace (CI: no skipping)"
	echo "SKIP: cannot create a network namespace"
	exit 77
fi
ip -n "$NS" link set lo up
ip -n "$NS" link add late0 type veth peer name late1 || fail "no veth pair"
# late1 stays down: late0 has no carrier until the end
ip -n "$NS" link set late0 up
hs_setup
hs_cmdline a2 compartd.node.a2.handshake=$ADDR
# the agent runs inside the namespace; its console socket is a path, reachable from here
mkdir -p "$HS_TMP/a2"
: >"$HS_TMP/a2.log"
ip netns exec "$NS" "$BUILD/compartd" run --foreground --config "$HS_TMP/cluster.conf" \
	--state-dir "$HS_TMP/a2" --cmdline "$HS_TMP/a2.cmdline" >"$HS_TMP/a2.log" 2>&1 &
HS_PID[a2]=$!
hs_wait a2 "event=boot stage=handshake waiting=\"cannot bind $ADDR:$HS_PORT: Cannot assign requested address\"" 10
t_start=$(date +%s.%N)
for _ in $(seq 30); do hs_ctl a2 status >/dev/null 2>&1 && break; sleep 0.1; done
out=$(timeout 5 "$BUILD/compartctl" --socket "$HS_TMP/a2/console.sock" status) || fail "console silent while waiting"
grep -q '^waiting *cannot bind' <<<"$out" || fail "status does not say what it waits for: $out"
sleep 8
# progress is said at the first attempt after 10 s of waiting (attempts at most 5 s apart)
hs_wait a2 'stage=handshake still_waiting_s=[0-9.]+ attempts=' 9
grep -q 'event=decision' "$HS_TMP/a2.log" && fail "a decision without a handshake socket"
n=$(grep -c 'stage=handshake waiting=' "$HS_TMP/a2.log")
[ "$n" = 1 ] || fail "the waiting reason was said $n times, not once"
ip -n "$NS" addr add $ADDR/24 dev late0 || fail "cannot add the address"
hs_wait a2 'event=boot stage=handshake waiting="link down on late0 \(the handshake address.s link\)"' 5
sleep 2
grep -q 'event=decision' "$HS_TMP/a2.log" && fail "a decision with the handshake link down"
t0=$(date +%s.%N)
ip -n "$NS" link set late1 up
# the address notification (rtnetlink) wakes the wait: no back-off to sit out
hs_wait a2 'event=boot stage=handshake waited_s=[0-9.]+ attempts=[0-9]+' 3
hs_wait a2 'event=decision rule=alone' 6
t1=$(date +%s.%N)
grep -q "handshake socket on $ADDR:$HS_PORT" "$HS_TMP/a2.log" || fail "not bound to $ADDR"
echo "late address and carrier: decision $(echo "$t1 - $t0" | bc)s after the carrier came (waited $(echo "$t0 - $t_start" | bc)s)"
