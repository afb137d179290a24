#!/usr/bin/env bash
# timeout: 90
# Portals that never answer a login: one drops every SYN (a neighbour that does not exist,
# in a network namespace of this test), one accepts TCP and stays silent. Each login attempt
# is given up after its timeout and retried with backoff, forever; none may leak. Runs the
# sanitizer build of the agent (make check builds it) for 15 s and requires at least three
# given-up logins per portal and no leak report at exit (libiscsi keeps a connect task until
# it calls the login back: a context destroyed before that leaked 24 bytes per attempt).
# Then the same for the quorum device's sessions: a whole agent whose quorum portals are
# these two, 15 s, no leak.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
AGENT=$BUILD/asan/compartd
. "$REPO/tests/integration/iscsi-lib.sh" # write_conf (its fail is replaced below)
[ -x "$AGENT" ] || { echo "no sanitizer build at $AGENT (make check builds it)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "needs root for a network namespace"; exit 77; }
tmp=$(mktemp -d /tmp/compartd-giveup.XXXXXX)
ns=cgu$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	tail -n 40 "$tmp/serve.log"
	exit 1
}

# check_leaks LOG MAX: a session still logging in when the agent stops is destroyed at
# once (nobody waits at exit), so its connect task may show as a leak: at most one per
# session (MAX). Anything else the sanitizer says, or more leaks than that, fails.
check_leaks() {
	local log=$1 max=$2 n
	grep -q 'AddressSanitizer' "$log" || return 0
	n=$(sed -n 's/^SUMMARY: AddressSanitizer: [0-9]* byte(s) leaked in \([0-9]*\) allocation(s)\.$/\1/p' "$log")
	grep -A8 'Direct leak' "$log" | head -24
	[ -n "$n" ] || return 1 # not a leak report
	[ "$(grep -c 'Direct leak\|Indirect leak' "$log")" = "$(grep -c 'libiscsi' <<<"$(grep -A2 'Direct leak\|Indirect leak' "$log")")" ] ||
		return 1 # a leak that is not libiscsi's
	echo "leaked at exit: $n allocation(s) (at most $max: sessions still logging in)"
	[ "$n" -le "$max" ]
}

ip netns add "$ns" || fail "cannot create a network namespace"
ip -n "$ns" link set lo up
ip -n "$ns" link add v0 type veth peer name v1 # v1 stays down: nothing answers on v0
ip -n "$ns" addr add 10.99.0.1/24 dev v0
ip -n "$ns" link set v0 up
ip -n "$ns" neigh add 10.99.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent
# The silent portal: accepts connections, never says a word (bounded: 60 s).
ip netns exec "$ns" python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 13997)); s.listen(16); s.settimeout(0.5)
held, end = [], time.time() + 60
while time.time() < end:
    try: held.append(s.accept()[0])
    except socket.timeout: pass
' &
pids+=($!)
# The storage config of the other iSCSI tests, its portal b moved to the SYN-dropping one.
write_conf "$tmp/c.conf" 13997
sed -i 's|^portal = b .*|portal = b 10.99.0.2:3260|' "$tmp/c.conf"
sleep 0.5
ASAN_OPTIONS=intercept_strchr=0:detect_leaks=1 ip netns exec "$ns" "$AGENT" storage serve \
	--config "$tmp/c.conf" --node n1 --listen "$tmp/nbd.sock" --console "$tmp/console.sock" \
	>"$tmp/serve.log" 2>&1 &
agent=$!
pids+=($agent)
sleep 15
json=$(ip netns exec "$ns" "$BUILD/compartctl" --socket "$tmp/console.sock" paths --json) ||
	fail "the agent does not answer its console"
echo "$json" | jq -c '.storage[0].paths[] | {portal, state, timeouts}'
for portal in 127.0.0.1:13997 10.99.0.2:3260; do
	t=$(echo "$json" | jq --arg p "$portal" '.storage[0].paths[] | select(.portal == $p) | .timeouts')
	[ "${t:-0}" -ge 3 ] || fail "$portal: $t logins given up, expected at least 3"
	[ "$(echo "$json" | jq -r --arg p "$portal" '.storage[0].paths[] | select(.portal == $p) | .state')" != up ] ||
		fail "$portal is up?"
done
kill -INT "$agent"
wait "$agent"
rc=$?
[ "$rc" = 0 ] || grep -q AddressSanitizer "$tmp/serve.log" "$tmp/a1.log" 2>/dev/null || fail "the agent exited with $rc"
check_leaks "$tmp/serve.log" 2 || fail "the sanitizer reported more (exit $rc)"
echo "storage: logins given up again and again, no leak beyond the sessions open at exit"

# The quorum device: the rig's cluster, node a1 alone, its quorum portals the dark ones.
mkdir -p "$tmp/a1" "$tmp/hooks"
printf '#!/bin/sh\nexit 0\n' >"$tmp/hooks/start-infra"
cp "$tmp/hooks/start-infra" "$tmp/hooks/start-mgmt"
chmod +x "$tmp/hooks/"*
sed -e "s|/etc/compartd/hooks/|$tmp/hooks/|" -e "s|10\.77\.1\.100:3261|127.0.0.1:13997|" \
	-e "s|10\.77\.2\.100:3261|10.99.0.2:3261|" -e "s|^port = .*|port = 17470|" \
	-e "s|^key_file = .*|key_file = $REPO/images/rig/cluster.key\nrules = $REPO/rules/boot.rules|" \
	"$REPO/images/rig/cluster.conf" >"$tmp/rig.conf" # the command line may not set these (SPEC §2)
echo "compartd.node=a1 compartd.timeouts.handshake_window=500ms" \
	"compartd.node.a1.handshake=127.0.1.11 compartd.node.a1.external=127.0.2.11" \
	"compartd.node.a2.handshake=127.0.1.12 compartd.node.b1.handshake=127.0.1.21" \
	"compartd.node.b2.handshake=127.0.1.22" >"$tmp/a1.cmdline"
ASAN_OPTIONS=intercept_strchr=0:detect_leaks=1 ip netns exec "$ns" "$AGENT" run --foreground \
	--config "$tmp/rig.conf" --state-dir "$tmp/a1" --cmdline "$tmp/a1.cmdline" >"$tmp/a1.log" 2>&1 &
agent=$!
pids+=($agent)
sleep 15
health=$(ip netns exec "$ns" "$BUILD/compartctl" --socket "$tmp/a1/console.sock" health --json) ||
	{ tail -n 30 "$tmp/a1.log"; fail "the agent does not answer its console"; }
echo "$health" | jq -c '.components[] | select(.component | startswith("qdev:")) | {component, state}'
[ "$(echo "$health" | jq -r '.components[] | select(.component == "qdev:infra") | .state')" != ok ] ||
	fail "qdev:infra is ok without a quorum device?"
kill -INT "$agent"
wait "$agent"
rc=$?
[ "$rc" = 0 ] || grep -q AddressSanitizer "$tmp/serve.log" "$tmp/a1.log" 2>/dev/null || fail "the agent exited with $rc"
check_leaks "$tmp/a1.log" 4 || { tail -n 20 "$tmp/a1.log"; fail "the sanitizer reported more (exit $rc)"; }
grep -c 'qdev: session through' "$tmp/a1.log" | sed 's/^/quorum device sessions given up: /'
echo "quorum device: sessions given up again and again, no leak beyond the sessions open at exit"
