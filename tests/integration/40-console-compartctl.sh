#!/usr/bin/env bash
# timeout: 90
# The console against a host-mode agent: every console-module command through compartctl
# (text, JSON, exit codes), root-only access, the health engine repairing the config
# (edited file → reload) and the console socket (file removed → listens again), and the
# serial console on a pty (script(1) gives the agent one as /dev/tty): a typed command is
# answered, an event printed mid-typing leaves the typed text intact, `continue` releases
# the wait-operator profile of a node alone, and `shell` hands the line back when it exits.
set -euo pipefail
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
# The root-only check runs a client under another uid: it needs root and setpriv.
[ "$(id -u)" = 0 ] || { echo "needs root: the root-only check runs a client as another uid"; exit 77; }
command -v setpriv >/dev/null || { echo "needs setpriv (util-linux)"; exit 77; }
tmp=$(mktemp -d)
spid= apid=
cleanup() {
	[ -n "$apid" ] && kill "$apid" 2>/dev/null
	[ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
	exec 3>&- 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- agent log"; tail -n 30 "$tmp/agent.log" 2>/dev/null
	echo "--- serial"; screen 2>/dev/null | tail -n 30
	exit 1
}

# Profile hooks that only say they ran.
mkdir -p "$tmp/hooks"
for h in start-infra start-mgmt; do
	printf '#!/bin/sh\necho "%s $COMPARTD_PROFILE" >>"%s/hooks.log"\n' "$h" "$tmp" >"$tmp/hooks/$h"
	chmod +x "$tmp/hooks/$h"
done
sed -e "s|/etc/compartd/hooks/|$tmp/hooks/|" \
	-e "s|^key_file = .*|key_file = $tmp/cluster.key\nrules = $top/rules/boot.rules|" \
	images/rig/cluster.conf >"$tmp/cluster.conf"
cp images/rig/cluster.key "$tmp/cluster.key"
cat > "$tmp/cmdline" <<EOC
compartd.timeouts.health_interval=500ms
compartd.node.a1.handshake=127.0.1.11:17470 compartd.node.a2.handshake=127.0.1.12:17470
compartd.node.b1.handshake=127.0.1.21:17470 compartd.node.b2.handshake=127.0.1.22:17470
compartd.node.a1.external=127.0.1.11:17471 compartd.node.a2.external=127.0.1.12:17471
compartd.node.b1.external=127.0.1.21:17471 compartd.node.b2.external=127.0.1.22:17471
EOC
sock=$tmp/s/console.sock
ctl() { "$BUILD/compartctl" --socket "$sock" "$@"; }
wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
	local n=$(($1 * 10)); shift
	for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
# What a dumb terminal shows: a carriage return starts the line over.
screen() { sed 's/\r$//; s/.*\r//' "$tmp/serial.out"; }
# Under pipefail, `producer | grep -q` fails when grep exits at the first match and the
# producer's next write gets SIGPIPE (about 1 in 200 here): matches read here-strings.
serial_has() { grep -qF -- "$1" <<<"$(screen)"; }
# typed_text_redrawn: since "hea" was echoed at the prompt, the config's recovery event was
# printed, and each printed line is followed by the prompt and "hea", which end the output.
typed_text_redrawn() {
	local typed="compartd a1> hea" raw seg lines=0
	raw=$(cat "$tmp/serial.out")
	[[ $raw == *"$typed"* ]] || return 1
	seg=${raw#*"$typed"}
	[[ $seg == *"event=health component=config:cluster state=recovered"* ]] || return 1
	while [[ $seg == *$'\r\n'* ]]; do
		seg=${seg#*$'\r\n'}
		[[ $seg == "$typed"* ]] || return 1
		lines=$((lines + 1))
	done
	[ "$seg" = "$typed" ] && [ $lines -ge 1 ] && redrawn=$lines
}

# The agent, with its serial console on the pty that script(1) makes its /dev/tty.
mkfifo "$tmp/in"
exec 3<>"$tmp/in"
script -qfec "exec $BUILD/compartd run --foreground --config $tmp/cluster.conf --cmdline $tmp/cmdline \
	--node a1 --state-dir $tmp/s --console /dev/tty 2>$tmp/agent.log" /dev/null <&3 >"$tmp/serial.out" 2>&1 &
spid=$!
wait_for 10 test -S "$sock" || fail "no console socket"
apid=$(pgrep -P "$spid" compartd || true)
[ -n "$apid" ] || fail "cannot find the agent under script(1)"

# --- compartctl: every command of the console module, text and JSON
help=$(ctl help)
for c in status log health approve-wipe continue promote demote query shell; do
	grep -q "^  $c" <<<"$help" || fail "help does not list $c: $help"
done
# The other nodes are not running here: their peer links fail; everything local is ok.
comp_state() { ctl health --json | jq -r --arg c "$1" '.components[] | select(.component == $c) | .state'; }
wait_for 5 sh -c "'$BUILD/compartctl' --socket '$sock' health | grep -q '^config:cluster  *ok'" || fail "health: $(ctl health)"
grep -q '^config:cluster  *ok' <<<"$(ctl health)" || fail "no config component"
grep -q '^clock:realtime  *ok' <<<"$(ctl health)" || fail "no clock component"
grep -q '^console:socket  *ok' <<<"$(ctl health)" || fail "no socket component"
[ "$(comp_state config:cluster)" = ok ] || fail "health --json"
grep -q '^peer:b2 ' <<<"$(ctl health)" || fail "no peer components"
[ "$(ctl status --json | jq -r .health)" != null ] || fail "status --json has no health"

expect_err() { # expect_err PATTERN CMD...: exit 1 and the message
	local out rc
	set +e; out=$(ctl "$@" 2>&1); rc=$?; set -e
	[ $rc -eq 1 ] || fail "'$*' exit $rc (want 1): $out"
	grep -qE -- "$PAT" <<<"$out" || fail "'$*' said: $out"
}
PAT="not available on this node|refused"; expect_err approve-wipe /dev/nonexistent
PAT="not available on this node|refused"; expect_err continue
PAT="^error: usage: promote <infra\|admin>"; expect_err promote everything
PAT="^error: usage: demote <infra\|admin>"; expect_err demote
PAT="only on the serial console"; expect_err shell
PAT="unknown command 'frobnicate'"; expect_err frobnicate
PAT="no node 'zz'"; expect_err query node zz status
PAT="\"error\":"; expect_err query all shell --json

# query: this node answers itself; the others are named as errors or silent, and the
# answer comes within the query timeout (1 s) plus slack.
start=$(date +%s%N)
out=$(ctl query all status)
ms=$((($(date +%s%N) - start) / 1000000))
[ $ms -lt 2500 ] || fail "query took ${ms}ms"
grep -q "^-- a1$" <<<"$out" || fail "query: no a1 answer: $out"
grep -q "== compartment b (dmz)" <<<"$out" || fail "query: not grouped: $out"
[ "$(ctl query all status --json | jq '.targets')" = 4 ] || fail "query --json targets"
[ "$(ctl query node a1 health --json | jq -r '.compartments[0].nodes[0].answer.components[0].component')" != null ] \
	|| fail "query node a1 health --json"

# --- root only: a non-root client is refused, even with the path open to it.
chmod 0755 "$tmp" "$tmp/s"; chmod 0666 "$sock"
set +e
out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$BUILD/compartctl" --socket "$sock" status 2>&1); rc=$?
set -e
chmod 0700 "$tmp/s"; chmod 0600 "$sock"
[ $rc -ne 0 ] || fail "non-root client got an answer: $out"
grep -q "for root only" <<<"$out" || fail "non-root refusal: $out"

# --- health: the config file is edited → failed integrity → reload → recovered.
sed -i 's/^handshake_window = 3s$/handshake_window = 4s/' "$tmp/cluster.conf"
wait_for 10 grep -q "event=health component=config:cluster state=recovered stage=integrity action=reload" \
	"$tmp/agent.log" || fail "config edit not repaired"
grep -q "event=health component=config:cluster state=failed stage=integrity action=isolate" "$tmp/agent.log" \
	|| fail "no failure line before the repair"
grep -q "configuration reloaded" "$tmp/agent.log" || fail "not reloaded"
# An invalid edit: needs an operator, the running config stays.
echo "colour = red" >> "$tmp/cluster.conf"
wait_for 10 grep -q "event=health component=config:cluster state=needs-operator stage=parses action=reload" \
	"$tmp/agent.log" || fail "invalid config not reported"
grep -q "^config:cluster  *needs-operator@parses" <<<"$(ctl health)" || fail "health does not show it: $(ctl health)"
[ "$(comp_state config:cluster)" = needs-operator ] || fail "config not needs-operator"
sed -i '/^colour = red$/d' "$tmp/cluster.conf"
wait_for 10 sh -c "'$BUILD/compartctl' --socket '$sock' health | grep -q '^config:cluster  *ok'" || fail "not ok after the fix"

# --- health: the socket file is removed → the agent listens again.
rm -f "$sock"
wait_for 10 test -S "$sock" || fail "socket not re-created"
wait_for 5 sh -c "'$BUILD/compartctl' --socket '$sock' status >/dev/null" || fail "socket does not answer"
grep -q "event=health component=console:socket state=recovered stage=reachable action=restart" "$tmp/agent.log" \
	|| fail "no socket recovery line"

# --- the serial console
wait_for 5 serial_has "compartd a1> " || fail "no prompt on the serial console"
printf 'status\r' >&3
wait_for 5 serial_has "node        a1" || fail "serial: status not answered"
# Half a command typed, then an event happens (the config is edited again).
printf 'hea' >&3
wait_for 3 serial_has "compartd a1> hea" || fail "serial: no echo"
recovered() { screen | grep -c "^event=health component=config:cluster state=recovered" || true; }
n0=$(recovered)
sed -i 's/^handshake_window = 4s$/handshake_window = 3s/' "$tmp/cluster.conf"
wait_for 10 sh -c "[ \$(sed 's/\r\$//; s/.*\r//' '$tmp/serial.out' | grep -c '^event=health component=config:cluster state=recovered') -gt $n0 ]" \
	|| fail "serial: no event line"
# Other lines (health events of the quorum devices and peers) come at their own times; one
# printed right after the config's event takes the redrawn prompt's place on the screen. So
# the raw output is checked: after the typed text was echoed, every line the agent printed
# ends in CR LF followed by the prompt and the typed text again, and the output ends with
# them.
wait_for 5 typed_text_redrawn || fail "serial: typed text not redrawn after every event line"
echo "the typed text was redrawn after each of the $redrawn lines printed while typing"
printf 'lth\r' >&3
wait_for 5 serial_has "COMPONENT" || fail "serial: the completed line 'health' was not run"
# Alone in its cluster, the node waits for an operator; `continue` typed here releases it.
wait_for 10 serial_has "event=decision rule=alone profile=wait-operator" || fail "serial: no wait-operator decision"
printf 'continue\r' >&3
wait_for 5 serial_has "released: starting profile infra-and-mgmt" || fail "serial: continue not answered"
wait_for 5 serial_has "event=decision rule=operator-continue profile=infra-and-mgmt" || fail "serial: no release event"
printf 'continue\r' >&3
wait_for 5 serial_has "error: continue refused: this node is not waiting for an operator" \
	|| fail "serial: a second continue was not refused"
printf 'shell\r' >&3
wait_for 5 grep -q "rescue shell started" "$tmp/agent.log" || fail "serial: no shell"
printf 'echo in-the-$((6*7))-shell; exit 0\n' >&3
wait_for 5 serial_has "in-the-42-shell" || fail "serial: the shell did not run a command"
wait_for 5 serial_has "console resumed" || fail "serial: shell did not hand the console back"
printf 'status --json\r' >&3
wait_for 5 serial_has '"node":"a1"' || fail "serial: no answer after the shell"
echo ok
