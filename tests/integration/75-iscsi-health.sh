#!/usr/bin/env bash
# timeout: 120
# Health checks of the iSCSI paths inside `compartd run` (SPEC §8): one component per
# path; a portal that dies is reported failed, isolated (out of the rotation) and put
# through the ladder (login requested now), ends needs-operator while it stays away, and
# recovers with one summary line when it returns. I/O through the NBD socket never fails
# while the other path is up.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init agent.log s/console.sock
fail() {
	echo "FAIL: $*"
	grep -E 'event=(health|path)' "$tmp/agent.log" | tail -n 20
	exit 1
}

base=13330
truncate -s 16M "$tmp/lu.img"
tgt_pair $base "$tmp/lu.img"
write_conf "$tmp/c.conf" $base "[timeouts]" "health_interval = 1s"
"$BUILD/compartd" run --foreground --config "$tmp/c.conf" --node n1 --state-dir "$tmp/s" >"$tmp/agent.log" 2>&1 &
apid=$!
agent_wait 'event=storage name=lu0 .*paths=2/2' || fail "storage not up"
pa="path:lu0@127.0.0.1:$base"
pb="path:lu0@127.0.0.2:$((base + 2))"
for _ in $(seq 50); do
	ctl health | grep -q "^ *$pb *ok" && break
	sleep 0.2
done
ctl health | grep -q "^ *$pa *ok" || { ctl health; fail "path a not ok in health"; }
ctl health | grep -q "^ *$pb *ok" || { ctl health; fail "path b not ok in health"; }
grep -q "event=health component=path:" "$tmp/agent.log" && fail "an alarm during the first login"
ctl health --json | jq -e --arg c "$pb" '.components[] | select(.component == $c) | .state == "ok"' >/dev/null ||
	{ ctl health --json; fail "health --json"; }

# Portal b dies: failed → isolate → restart (login now) → needs-operator while it is away.
tgt_kill b
agent_wait "event=health component=$pb state=failed stage=reachable action=isolate" 20 ||
	fail "no failed/isolate line for path b"
agent_wait "event=health component=$pb state=needs-operator stage=reachable action=restart" 30 ||
	fail "no needs-operator summary for path b"
grep -q "component=$pa state=failed" "$tmp/agent.log" && fail "path a reported failed"
head -c 1M /dev/urandom >"$tmp/data"
qemu-img convert -n -f raw -O raw "$tmp/data" "nbd+unix:///?socket=$tmp/s/nbd-lu0.sock" ||
	fail "I/O failed with one path up"
ctl health | grep -q "needs-operator" || fail "health does not show needs-operator"

# Portal b returns: one recovered line, health ok again.
tgt_start b 127.0.0.2 $((base + 2)) $((base + 3)) "$tmp/lu.img" compartd-lu0 CMPT0001
agent_wait "event=health component=$pb state=recovered" 40 || fail "path b did not recover"
[ "$(grep -c "component=$pb state=recovered" "$tmp/agent.log")" = 1 ] || fail "more than one recovered line"
ctl health | grep -q "^ *$pb *ok" || { ctl health; fail "path b not ok after recovery"; }
echo PASS
