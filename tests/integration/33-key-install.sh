#!/usr/bin/env bash
# timeout: 150
# The cluster key typed on the serial console (SPEC §5), host mode with a
# state image file and a pty serial console (script(1) gives the agent one as /dev/tty):
# no key file and no stored key → the agent waits (event=boot stage=handshake waiting=…);
# `key install` is refused on the socket; a wrong key typed on the serial line is refused
# and nothing is stored; the right one (base64) is not echoed, is stored on cmpt-state and
# the boot goes on to the decision; a restart reads it from there; a corrupt stored copy is
# ignored (the agent waits again); a key file marked for another cluster is refused.
HS_PORT=${HS_PORT:-7533}
HS_KEY_SRC=$(cd "$(dirname "$0")/../.." && pwd)/images/rig/cluster.key
. "$(dirname "$0")/lib-hs.sh"
HS_KEY=$HS_TMP/keys/cluster.key # absent: the image has no key
command -v script >/dev/null || fail "script(1) missing"
command -v python3 >/dev/null || fail "python3 missing (to compute the key id)"
hex=$(awk 'NR == 1 {print $1}' "$HS_KEY_SRC")
id=$(python3 -c "import hashlib,sys; print(hashlib.blake2b(b'compartd cluster key id', key=bytes.fromhex(sys.argv[1]), digest_size=8).hexdigest())" "$hex")
b64=$(python3 -c "import base64,sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())" "$hex")
wrong=$(python3 -c "import os; print(os.urandom(32).hex())")
hs_setup
grep -q "^key_id = $id$" "$HS_TMP/cluster.conf" || fail "the rig config has no key_id $id"
mkdir -p "$HS_TMP/keys"
truncate -s 2M "$HS_TMP/state.img"
hs_cmdline a2

screen() { sed 's/\r$//; s/.*\r//' "$HS_TMP/serial.out"; }
serial_has() { screen | grep -qF -- "$1"; }
wait_serial() { # TEXT SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		serial_has "$1" && return 0
		sleep 0.1
	done
	fail "serial console: no '$1' after $2 s"
}
stored_magic() { dd if="$HS_TMP/state.img" bs=1k skip=512 count=1 status=none | head -c 8 | tr -d '\0'; }

APID=
start_serial() { # a2 with its serial console on a pty, log in a2.log
	: >"$HS_TMP/a2.log"
	: >"$HS_TMP/serial.out"
	rm -f "$HS_TMP/in"
	mkfifo "$HS_TMP/in"
	exec 3<>"$HS_TMP/in"
	mkdir -p "$HS_TMP/a2"
	script -qfec "exec $BUILD/compartd run --foreground --config $HS_TMP/cluster.conf \
		--state $HS_TMP/state.img --state-dir $HS_TMP/a2 --cmdline $HS_TMP/a2.cmdline \
		--console /dev/tty 2>$HS_TMP/a2.log" /dev/null <&3 >"$HS_TMP/serial.out" 2>&1 &
	HS_PID[a2]=$!
	local i
	for ((i = 0; i < 50; i++)); do
		APID=$(pgrep -P "${HS_PID[a2]}" compartd || true)
		[ -n "$APID" ] && return 0
		kill -0 "${HS_PID[a2]}" 2>/dev/null || return 0 # the agent stopped at once
		sleep 0.1
	done
	fail "cannot find the agent under script(1)"
}
stop_serial() {
	[ -n "$APID" ] && kill "$APID" 2>/dev/null
	hs_stop a2
	exec 3>&-
	APID=
}
cleanup_all() { [ -n "$APID" ] && kill "$APID" 2>/dev/null; hs_cleanup; }
trap cleanup_all EXIT

# 1. No key file, no stored key: the agent waits for the key and says so on the console.
start_serial
hs_wait a2 'event=boot stage=handshake waiting="cluster key: type '"'"'key install'"'"' on the serial console"' 15
wait_serial "waiting=\"cluster key" 5
wait_serial "compartd a2> " 5
out=$(hs_ctl a2 key install 2>&1) && fail "key install answered on the socket"
echo "$out" | grep -q "serial console only" || fail "socket refusal says: $out"
echo "waiting for the key; the socket refuses key install"

# 2. A wrong key is refused, nothing stored, nothing echoed.
printf 'key install\r' >&3
wait_serial "cluster key (not echoed): " 5
printf '%s\r' "$wrong" >&3
wait_serial "wrong key: its id is" 5
[ "$(stored_magic)" != CMPTKEY1 ] || fail "a wrong key was stored"
screen | grep -q "$wrong" && fail "the typed key was echoed"
grep -q 'event=ready' "$HS_TMP/a2.log" && fail "the boot went on with a wrong key"
echo "wrong key refused, nothing stored"

# 3. The right key, in base64: stored, the boot continues to the decision.
printf 'key install\r' >&3
wait_serial "cluster key (not echoed): " 5
printf '%s\r' "$b64" >&3
wait_serial "key $id accepted and stored on 1 cmpt-state" 5
hs_wait a2 "event=key action=install id=$id stored=1" 5
hs_wait a2 'event=ready node=a2 profile=wait-operator' 15
[ "$(stored_magic)" = CMPTKEY1 ] || fail "no key stored at 512 KiB of cmpt-state"
screen | grep -qF "$b64" && fail "the typed key was echoed"
hs_ctl a2 keys | grep -q "$id" || fail "keys does not show $id"
stop_serial
echo "key installed, stored, boot continued"

# 4. Restart: the stored key is read, no waiting.
start_serial
hs_wait a2 "event=key action=load id=$id from=cmpt-state" 10
hs_wait a2 'event=ready node=a2 profile=wait-operator' 15
grep -q 'waiting=' "$HS_TMP/a2.log" && fail "waited although a key is stored"
stop_serial
echo "restart read the stored key"

# 5. A corrupt stored key (one byte of the key flipped) is ignored: the agent waits again.
printf '\xff' | dd of="$HS_TMP/state.img" bs=1 seek=$((512 * 1024 + 70)) conv=notrunc status=none
start_serial
hs_wait a2 'stored cluster key is torn or corrupt' 10
hs_wait a2 'event=boot stage=handshake waiting=' 10
stop_serial
echo "corrupt stored key ignored"

# 6. A key file marked for another cluster (an image built with RIG_KEY=1) is refused.
{ echo "only-cluster other"; cat "$HS_KEY_SRC"; } >"$HS_KEY"
chmod 600 "$HS_KEY"
start_serial
for ((i = 0; i < 100; i++)); do
	kill -0 "${HS_PID[a2]}" 2>/dev/null || break
	sleep 0.1
done
kill -0 "${HS_PID[a2]}" 2>/dev/null && fail "the agent runs with a key file for another cluster"
grep -q "test key for cluster other only" "$HS_TMP/a2.log" || fail "no message for the marked key"
stop_serial
{ echo "only-cluster rig"; cat "$HS_KEY_SRC"; } >"$HS_KEY"
start_serial
hs_wait a2 'event=ready node=a2 profile=wait-operator' 15
stop_serial
echo "a key file marked for another cluster is refused; for this one it runs"
echo ok
