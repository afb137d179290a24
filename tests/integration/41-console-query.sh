#!/usr/bin/env bash
# timeout: 90
# Cluster queries on the host: four agents on 127.0.1.x (the rig's nodes), one of them
# stopped (SIGSTOP: alive but silent). `query all status` answers within the query
# timeout, grouped by compartment, and names the silent node; the peer-link health check
# reports the stopped node and its recovery once it runs again.
set -euo pipefail
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
tmp=$(mktemp -d)
declare -A pid=()
cleanup() {
	for n in "${!pid[@]}"; do kill -CONT "${pid[$n]}" 2>/dev/null; kill "${pid[$n]}" 2>/dev/null; done
	for n in "${!pid[@]}"; do wait "${pid[$n]}" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for n in a1 b2; do echo "--- $n"; tail -n 15 "$tmp/$n.log" 2>/dev/null; done
	exit 1
}
wait_for() {
	local n=$(($1 * 10)); shift
	for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}

sed "s|^key_file = .*|key_file = $tmp/cluster.key|" images/rig/cluster.conf >"$tmp/cluster.conf"
cp images/rig/cluster.key "$tmp/cluster.key"
cat > "$tmp/cmdline" <<EOC
compartd.timeouts.health_interval=300ms
compartd.timeouts.handshake_window=1s
compartd.node.a1.handshake=127.0.1.11:17480 compartd.node.a2.handshake=127.0.1.12:17480
compartd.node.b1.handshake=127.0.1.21:17480 compartd.node.b2.handshake=127.0.1.22:17480
compartd.node.a1.external=127.0.1.11:17481 compartd.node.a2.external=127.0.1.12:17481
compartd.node.b1.external=127.0.1.21:17481 compartd.node.b2.external=127.0.1.22:17481
EOC
for n in a1 a2 b1 b2; do
	"$BUILD/compartd" run --foreground --config "$tmp/cluster.conf" --cmdline "$tmp/cmdline" --node $n \
		--state-dir "$tmp/$n" 2>"$tmp/$n.log" &
	pid[$n]=$!
done
ctl() { local n=$1; shift; "$BUILD/compartctl" --socket "$tmp/$n/console.sock" "$@"; }
for n in a1 a2 b1 b2; do wait_for 10 test -S "$tmp/$n/console.sock" || fail "$n has no console"; done
# The console listens before the handshake starts (storage comes between): until then a
# query names "the handshake protocol is not running". It must start within the bound.
hs_carries() {
	local out
	out=$(ctl a1 query node a2 status 2>&1 || true)
	[[ $out != *"the handshake protocol is not running"* ]]
}
wait_for 10 hs_carries || fail "the handshake does not carry queries: $(ctl a1 query node a2 status)"

# Everyone answers.
wait_for 10 sh -c "'$BUILD/compartctl' --socket '$tmp/a1/console.sock' query all status --json | jq -e '.answered == 4' >/dev/null" \
	|| fail "not all four answer: $(ctl a1 query all status)"
out=$(ctl a1 query all status)
echo "$out"
grep -q "^query status: 4 of 4 nodes answered, 0 with an error, 0 silent" <<<"$out" || fail "headline: $out"
grep -q "^   node        b2$" <<<"$out" || fail "b2's own status missing"
wait_for 10 sh -c "'$BUILD/compartctl' --socket '$tmp/a1/console.sock' health | grep -q '^peer:b2  *ok'" \
	|| fail "peer:b2 not ok: $(ctl a1 health)"

# b2 stops: the query answers at its timeout, naming b2.
kill -STOP "${pid[b2]}"
start=$(date +%s%N)
out=$(ctl a1 query all status)
ms=$((($(date +%s%N) - start) / 1000000))
echo "$out"
echo "took ${ms}ms"
[ $ms -ge 900 ] && [ $ms -lt 2000 ] || fail "query took ${ms}ms (timeout 1s)"
grep -q "^query status: 3 of 4 nodes answered, 0 with an error, 1 silent (timeout 1s)$" <<<"$out" \
	|| fail "headline with b2 stopped"
grep -q "^-- b2: no answer$" <<<"$out" || fail "b2 not marked"
grep -q "^no answer from: b2$" <<<"$out" || fail "b2 not named"
# Grouped: a1 and a2 under compartment a, b1 and b2 under b.
[ "$(echo "$out" | grep -E '^(== compartment|-- )' | tr '\n' ' ')" = \
	"== compartment a (mz) -- a1 -- a2 == compartment b (dmz) -- b1 -- b2: no answer " ] || fail "grouping"
json=$(ctl a1 query compartment b health --json)
[ "$(echo "$json" | jq -c .no_answer)" = '["b2"]' ] || fail "json no_answer: $json"
[ "$(echo "$json" | jq -r '.compartments[0].nodes[0].answer.overall')" != null ] || fail "b1's JSON not embedded"

# The peer link: lost, then back.
wait_for 10 grep -q "event=health component=peer:b2 state=needs-operator stage=reachable" "$tmp/a1.log" \
	|| fail "peer:b2 loss not reported"
kill -CONT "${pid[b2]}"
wait_for 10 grep -q "event=health component=peer:b2 state=recovered" "$tmp/a1.log" || fail "peer:b2 recovery not reported"
[ "$(ctl a1 query all status --json | jq .answered)" = 4 ] || fail "b2 not answering again"
echo ok
