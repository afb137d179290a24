#!/usr/bin/env bash
# timeout: 180
# A portal that is dark from the start (a power cut: storage and switches come up after
# the servers) is one fault, reported once: the first login is progress, its failure is
# one `failed` line and, while it lasts, one `needs-operator` summary — no `recovered`
# because a new login was merely started, no new episode for each attempt. When the
# portal comes up, one `recovered` line. Both kinds of darkness: a portal that refuses
# (RST at once) and one whose SYNs go nowhere (a listener that never accepts and whose
# accept queue is full: the kernel drops them), where every login hangs until its timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init agent.log s/console.sock
SINK=
trap '[ -z "$SINK" ] || kill "$SINK" 2>/dev/null || true; iscsi_test_cleanup' EXIT
fail() {
	echo "FAIL: $*"
	grep -E 'event=(health|path)' "$tmp/agent.log" | tail -n 30
	exit 1
}

# A SYN sink on 127.0.0.2:PORT: backlog 0, its queue filled by two connections that are
# never accepted, so every further SYN is dropped (bounded: 150 s).
syn_sink() {
	python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", int(sys.argv[1]))); s.listen(0)
held = []
for _ in range(2):
    c = socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.2", int(sys.argv[1]))); held.append(c)
time.sleep(150)
' "$1" &
	SINK=$!
	sleep 0.5
}

# run_dark DARK PORT BASE: portal a serves, portal b at 127.0.0.2:PORT is dark (DARK:
# refused, or sink) for 10 s after its first failure, then comes up.
run_dark() {
	local dark=$1 bip=127.0.0.2 bport=$2 base=$3
	SINK=
	[ "$dark" = sink ] && syn_sink "$bport"
	truncate -s 16M "$tmp/lu.img"
	tgt_start a 127.0.0.1 "$base" $((base + 1)) "$tmp/lu.img" compartd-lu0 CMPT0001
	write_conf "$tmp/c.conf" $base "[timeouts]" "health_interval = 1s" "path_check_interval = 500ms"
	sed -i -e "s|^portal = b .*|portal = b $bip:$bport|" -e "s|^handshake = .*|handshake = 127.0.0.1:$((base + 9))|" "$tmp/c.conf"
	: >"$tmp/agent.log"
	"$BUILD/compartd" run --foreground --config "$tmp/c.conf" --node n1 --state-dir "$tmp/s" >"$tmp/agent.log" 2>&1 &
	apid=$!
	agent_wait "event=storage name=lu0 .*paths=1/2" 40 || { head -30 "$tmp/agent.log"; fail "storage not up on path a"; }
	local pb="path:lu0@$bip:$bport"
	agent_wait "event=health component=$pb state=needs-operator" 60 || fail "no needs-operator for $pb"
	sleep 10 # the fault lasts: more login attempts against the dark portal (3 s each)
	local n_failed n_needs n_rec
	n_failed=$(grep -c "component=$pb state=failed" "$tmp/agent.log" || true)
	n_needs=$(grep -c "component=$pb state=needs-operator" "$tmp/agent.log" || true)
	n_rec=$(grep -c "component=$pb state=recovered" "$tmp/agent.log" || true)
	echo "$pb while dark: failed=$n_failed needs-operator=$n_needs recovered=$n_rec"
	[ "$n_rec" = 0 ] || fail "recovered while the portal never answered"
	[ "$n_failed" = 1 ] || fail "the one fault was reported $n_failed times"
	[ "$n_needs" = 1 ] || fail "needs-operator reported $n_needs times"
	ctl health | grep -E "^ *$pb +needs-operator" || { ctl health; fail "health does not show it"; }

	# The portal comes up.
	[ -z "$SINK" ] || { kill "$SINK"; wait "$SINK" 2>/dev/null || true; SINK=; }
	tgt_start b "$bip" "$bport" $((base + 3)) "$tmp/lu.img" compartd-lu0 CMPT0001
	agent_wait "event=health component=$pb state=recovered" 60 || fail "$pb did not recover"
	agent_wait 'event=storage name=lu0 .*paths=2/2' 20 || fail "storage not 2/2"
	[ "$(grep -c "component=$pb state=recovered" "$tmp/agent.log")" = 1 ] || fail "more than one recovered line"
	kill -INT "$apid"
	wait "$apid" || true
	apid=
	tgt_kill a
	tgt_kill b
}

run_dark refused 13362 13360
run_dark sink 13372 13370
echo PASS
