#!/usr/bin/env bash
# timeout: 240
# SPEC §11: a node's compartment NIC is not there at boot (it is hot-plugged later,
# QEMU `device_add` on a PCIe root port, RIG_PLUG_S after boot, default 30 s). The node
# says it waits for the interface and for its handshake address, serves the console, and
# once the NIC appears configures it and comes up to a decision within seconds.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
fail() { echo "FAIL: $*"; exit 1; }
PLUG_S=${RIG_PLUG_S:-30}

rig_node_start a1 --hotplug-nic
rig_wait_for a1 'event=boot stage=network waiting="no interface 52:54:00:77:0a:01"' 90 ||
	fail "no network waiting line"
rig_wait_for a1 'event=boot stage=handshake waiting="cannot bind 10.77.1.11:[0-9]+: Cannot assign requested address"' 30 ||
	fail "the handshake does not wait for its address"
rig_mark a1
rig_send a1 status
rig_wait_for a1 '^waiting +no interface' 30 >/dev/null || fail "the console does not answer while waiting"
left=$(awk -v d="$PLUG_S" -v t="$(rig_elapsed a1)" 'BEGIN { s = d - t; print (s > 0 ? int(s + 0.5) : 0) }')
sleep "$left"
grep -q '^event=decision' <<<"$(rig_events a1)" && fail "a decision without the handshake NIC"
rig_mark a1
t0=$(date +%s.%N)
rig_nic_plug a1 || fail "device_add refused"
rig_wait_for a1 'event=boot stage=network waited_s=' 30 >/dev/null || fail "the network wait did not end"
rig_wait_for a1 'event=decision ' 40 >/dev/null || fail "no decision after the NIC appeared"
t_dec=$(echo "$(date +%s.%N) - $t0" | bc)
rig_wait_for a1 'event=ready node=a1' 30 >/dev/null || fail "not ready"
out=$(rig_sh a1 'ip -4 -o addr show' 60)
grep -q 'inet 10.77.1.11/24' <<<"$out" || fail "the hot-plugged NIC has no address: $out"
echo "PASS: decision ${t_dec}s after the NIC was plugged at $(rig_elapsed a1)s (TCG)"
