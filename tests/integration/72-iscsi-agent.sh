#!/usr/bin/env bash
# timeout: 90
# The storage stage inside `compartd run`: with loopback portals the agent logs in, emits
# event=boot stage=storage, event=path and event=storage, answers `paths` on its console
# and serves NBD on <state-dir>/nbd-<storage>.sock; with the rig's config on a host it
# skips storage it cannot reach (no traffic to the rig's addresses) and keeps running.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init agent.log s/console.sock

base=13290
truncate -s 16M "$tmp/lu.img"
tgt_pair $base "$tmp/lu.img"
write_conf "$tmp/c.conf" $base
"$BUILD/compartd" run --foreground --config "$tmp/c.conf" --node n1 --state-dir "$tmp/s" >"$tmp/agent.log" 2>&1 &
apid=$!
agent_wait 'event=storage name=lu0 .*paths=2/2' || fail "agent storage stage"
grep -q 'event=boot stage=storage node=n1' "$tmp/agent.log" || fail "no storage stage event"
s_line=$(grep -n 'event=boot stage=storage' "$tmp/agent.log" | cut -d: -f1)
h_line=$(grep -n 'event=boot stage=handshake' "$tmp/agent.log" | cut -d: -f1)
[ "$s_line" -lt "$h_line" ] || fail "storage stage not before handshake"
agent_wait 'event=ready' || fail "storage blocked the agent"
ctl paths | grep -q 'storage lu0 .*paths 2/2 up' || fail "paths on the agent's console"
[ "$(ctl paths --json | jq '.storage[0].paths | length')" = 2 ] || fail "paths --json"
head -c 1M /dev/urandom >"$tmp/data"
qemu-img convert -n -f raw -O raw "$tmp/data" "nbd+unix:///?socket=$tmp/s/nbd-lu0.sock" || fail "write via agent"
head -c 1M "$tmp/lu.img" | cmp - "$tmp/data" || fail "data not on the LU"
kill "$apid"
wait "$apid" || true
apid=

# The rig's config on a host: its portals are not reachable from here.
: >"$tmp/agent.log"
cat >"$tmp/cmdline" <<EOC
compartd.node.a1.handshake=127.0.1.11:17460 compartd.node.a2.handshake=127.0.1.12:17460
compartd.node.b1.handshake=127.0.1.21:17460 compartd.node.b2.handshake=127.0.1.22:17460
compartd.node.a1.external=127.0.1.11:17461 compartd.node.a2.external=127.0.1.12:17461
compartd.node.b1.external=127.0.1.21:17461 compartd.node.b2.external=127.0.1.22:17461
EOC
# The key file in the config: the command line may not override it (SPEC §2).
sed "s|^key_file = .*|key_file = $top/images/rig/cluster.key|" images/rig/cluster.conf >"$tmp/rig.conf"
"$BUILD/compartd" run --foreground --config "$tmp/rig.conf" --node a1 --state-dir "$tmp/s" \
	--cmdline "$tmp/cmdline" >"$tmp/agent.log" 2>&1 &
apid=$!
agent_wait 'event=boot stage=handshake' || fail "agent with the rig config"
for _ in $(seq 50); do [ -S "$tmp/s/console.sock" ] && break; sleep 0.1; done
grep -q 'storage mirror0: not reachable from node a1, skipped' "$tmp/agent.log" || fail "unreachable storage not skipped"
! grep -q 'logging in' "$tmp/agent.log" || fail "the agent tried the rig's portals from the host"
ctl paths | grep -q 'no storage on this node' || fail "paths without storage"
echo PASS
