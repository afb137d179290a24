#!/usr/bin/env bash
# timeout: 60
# SPEC §11: a handshake address that cannot be bound yet (taken by another socket) does
# not end the agent. It says once what it waits for, serves the console meanwhile, and
# comes up to a decision within seconds after the address is free.
HS_PORT=${HS_PORT:-7534}
. "$(dirname "$0")/lib-hs.sh"
HOLDER=
cleanup_holder() { [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null && wait "$HOLDER" 2>/dev/null; HOLDER=; }
trap 'cleanup_holder; hs_cleanup' EXIT
hs_setup
python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.1.12", int(sys.argv[1])))
print("bound", flush=True); time.sleep(50)' "$HS_PORT" >"$HS_TMP/holder.out" &
HOLDER=$!
for _ in $(seq 50); do grep -q bound "$HS_TMP/holder.out" && break; sleep 0.1; done
grep -q bound "$HS_TMP/holder.out" || fail "the holder could not bind 127.0.1.12:$HS_PORT"
hs_start a2
hs_wait a2 "event=boot stage=handshake waiting=\"cannot bind 127.0.1.12:$HS_PORT: Address already in use\"" 10
# the console answers meanwhile and says what the node waits for
out=$(timeout 5 "$BUILD/compartctl" --socket "$HS_TMP/a2/console.sock" status) || fail "console silent while waiting"
grep -q '^stage *handshake' <<<"$out" || fail "status does not show the handshake stage: $out"
grep -q '^waiting *cannot bind' <<<"$out" || fail "status does not say what it waits for: $out"
hs_ctl a2 status --json | grep -q '"waiting":"cannot bind' || fail "status --json has no waiting"
sleep 6 # two more back-off rounds: still one waiting line, no error, no exit
kill -0 "${HS_PID[a2]}" || fail "the agent stopped while waiting"
n=$(grep -c 'stage=handshake waiting=' "$HS_TMP/a2.log")
[ "$n" = 1 ] || fail "the waiting reason was said $n times, not once"
grep -q 'event=decision' "$HS_TMP/a2.log" && fail "a decision without a handshake socket"
t0=$(date +%s.%N)
cleanup_holder
hs_wait a2 'event=boot stage=handshake waited_s=[0-9.]+ attempts=[0-9]+' 12
hs_wait a2 'event=decision rule=alone' 10
t1=$(date +%s.%N)
hs_ctl a2 status --json | grep -q '"waiting":null' || fail "status still says waiting"
secs=$(echo "$t1 - $t0" | bc)
echo "bind wait: decision ${secs}s after the address was free (back-off at most 5 s + window 1.5 s)"
