#!/usr/bin/env bash
# timeout: 300
# SPEC §11, seed 002: a node boots while tgtd is not running (the storage comes up after
# the servers, as after a power cut of a whole room). It boots on its own to a decision,
# and attaches its storage over both portals when tgtd starts (RIG_TGT_S after boot,
# default 40 s), without an operator.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
RIG_NO_STORAGE=1
rig_init
rig_up
fail() { echo "FAIL: $*"; exit 1; }
TGT_S=${RIG_TGT_S:-40}

rig_node_start a1
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null || fail "not ready without storage"
t_ready=$(rig_elapsed a1)
left=$(awk -v d="$TGT_S" -v t="$(rig_elapsed a1)" 'BEGIN { s = d - t; print (s > 0 ? int(s + 0.5) : 0) }')
sleep "$left"
ev=$(rig_events a1)
grep -q '^event=storage name=mirror0 dev=/dev/nbd' <<<"$ev" && fail "storage attached without tgtd"
n=$(grep -c '^event=health component=path:' <<<"$ev" || true)
echo "ready at ${t_ready}s without storage; $n path health lines in $(rig_elapsed a1)s"
rig_mark a1
t0=$(date +%s.%N)
rig_storage_up
rig_wait_for a1 'event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=2/2' 120 >/dev/null ||
	fail "storage not attached after tgtd started"
t_st=$(echo "$(date +%s.%N) - $t0" | bc)
echo "PASS: storage 2/2 ${t_st}s after tgtd started (TCG)"
