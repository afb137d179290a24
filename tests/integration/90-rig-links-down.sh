#!/usr/bin/env bash
# timeout: 240
# SPEC §11: a node boots with the links of both its NICs down (QEMU `set_link off` before
# the guest runs). It says what it waits for on the serial console once, answers console
# commands meanwhile, takes no decision, and once the links go up (RIG_LINKS_DOWN_S later,
# default 60 s) it attaches its storage and comes up to a decision within seconds.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
fail() { echo "FAIL: $*"; exit 1; }
DOWN_S=${RIG_LINKS_DOWN_S:-60}

rig_node_start a1 --links-down
rig_wait_for a1 'event=boot stage=network waiting="link down on 52:54:00:77:0a:01; link down on 52:54:00:77:1a:01"' 90 ||
	fail "no network waiting line"
rig_wait_for a1 'event=boot stage=handshake waiting="link down on eth0 \(the handshake address.s link\)"' 30 ||
	fail "the handshake does not wait for its link"
t_wait=$(rig_elapsed a1)
rig_mark a1
rig_send a1 status
rig_wait_for a1 '^waiting +link down on' 30 >/dev/null || fail "the console does not answer while waiting"
left=$(awk -v d="$DOWN_S" -v t="$(rig_elapsed a1)" 'BEGIN { s = d - t; print (s > 0 ? int(s + 0.5) : 0) }')
sleep "$left"
ev=$(rig_events a1)
grep -q '^event=decision' <<<"$ev" && fail "a decision while the links were down"
n=$(grep -c '^event=boot stage=network waiting=' <<<"$ev" || true)
[ "$n" = 1 ] || fail "the network reason was said $n times, not once"
n=$(grep -c '^event=' <<<"$ev" || true)
echo "links down for $(rig_elapsed a1)s: $n event lines, waiting since ${t_wait}s"
rig_mark a1
t0=$(date +%s.%N)
rig_links a1 on
rig_wait_for a1 'event=boot stage=network waited_s=' 20 >/dev/null || fail "the network wait did not end"
rig_wait_for a1 'event=decision ' 40 >/dev/null || fail "no decision after the links came up"
t_dec=$(echo "$(date +%s.%N) - $t0" | bc)
rig_wait_for a1 'event=ready node=a1' 30 >/dev/null || fail "not ready"
rig_wait_for a1 'event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=2/2' 90 >/dev/null ||
	fail "storage not attached after the links came up"
t_st=$(echo "$(date +%s.%N) - $t0" | bc)
echo "PASS: decision ${t_dec}s, storage 2/2 ${t_st}s after the links came up (TCG)"
