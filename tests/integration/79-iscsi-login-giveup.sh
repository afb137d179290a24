#!/usr/bin/env bash
# timeout: 90
# Portals that never answer a login: one drops every SYN (a neighbour that does not exist,
# in a network namespace of this test), one accepts TCP and stays silent. Each login attempt
# is given up after its timeout and retried with backoff, forever; none may leak. Runs the
# sanitizer build of the agent (make check builds it) for 15 s and requires at least three
# given-up logins per portal and no leak report at exit (libiscsi keeps a connect task until
# it calls the login back: a context destroyed before that leaked 24 bytes per attempt).
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
AGENT=$BUILD/asan/compartd
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
head -c 32 /dev/urandom >"$tmp/key"
cat >"$tmp/c.conf" <<EOC
[cluster]
name = t
key_file = $tmp/key
[pair p1]
[compartment a]
zone = mz
pair = p1
[compartment b]
zone = dmz
pair = p1
[node n1]
compartment = a
handshake = 127.0.0.1:17461
[storage lu0]
target = iqn.2026-11.org.compartd.test:none
lun = 1
portal = a 127.0.0.1:13997
portal = b 10.99.0.2:3260
EOC
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
grep -q 'AddressSanitizer' "$tmp/serve.log" && fail "the sanitizer reported (exit $rc)"
[ "$rc" = 0 ] || fail "the agent exited with $rc"
echo "logins given up again and again, nothing leaked"
