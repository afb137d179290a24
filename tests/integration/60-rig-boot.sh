#!/usr/bin/env bash
# timeout: 150
# One node boots the image as PID 1 under QEMU: stages in order, identity by MAC (no
# compartd.node=), its network from cluster.conf (reaches the rig router and the storage
# portals of both compartments), console commands and a rescue shell on the serial line,
# and `reboot` typed in that shell reboots the node.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up

rig_node_start a1
rig_wait_for a1 'event=ready node=a1' 90
ready_s=$(rig_elapsed a1)
stages=$(rig_events a1 | sed -n 's/^event=boot stage=\([a-z]*\).*/\1/p' | tr '\n' ' ')
echo "stages: $stages (ready after ${ready_s}s)"
case "$stages" in
"early identity "*ready*) ;;
*) echo "FAIL: stages out of order: $stages"; exit 1 ;;
esac
grep -q '^event=boot stage=identity' <<<"$(rig_events a1)" || { echo "FAIL: no identity stage"; exit 1; }

# A console command on the serial line.
rig_mark a1
rig_send a1 status
rig_wait_for a1 '^node +a1' 20

# The network, seen from a rescue shell: addresses by MAC, route to compartment b.
out=$(rig_sh a1 'ip -4 -o addr show; ip route; ping -c1 -W3 10.77.1.1 >/dev/null && echo PING-ROUTER-OK; ping -c1 -W3 10.77.2.100 >/dev/null && echo PING-PORTAL-B-OK; cat /proc/1/cmdline | tr "\0" " "; echo' 60)
echo "$out"
grep -q 'inet 10.77.1.11/24' <<<"$out" || { echo "FAIL: compartment address missing"; exit 1; }
grep -q 'inet 10.77.9.11/24' <<<"$out" || { echo "FAIL: external address missing"; exit 1; }
grep -q '10.77.2.0/24 via 10.77.1.1' <<<"$out" || { echo "FAIL: route to b missing"; exit 1; }
grep -q PING-ROUTER-OK <<<"$out" || { echo "FAIL: router unreachable"; exit 1; }
grep -q PING-PORTAL-B-OK <<<"$out" || { echo "FAIL: portal b unreachable through the router"; exit 1; }

# Cutting the compartments breaks the way to b's portal; joining restores it.
rig_cut
out=$(rig_sh a1 'ping -c1 -W2 10.77.2.100 >/dev/null && echo REACHED || echo UNREACHABLE' 30)
grep -q UNREACHABLE <<<"$out" || { echo "FAIL: portal b reachable while cut"; exit 1; }
rig_join

# Each storage leg carries its own portal's traffic both ways: with leg a down, portal b
# still answers a1 (through the router).
rig_storage_link a down
out=$(rig_sh a1 'ping -c1 -W3 10.77.2.100 >/dev/null && echo B-ANSWERS || echo B-SILENT; ping -c1 -W2 10.77.1.100 >/dev/null && echo A-ANSWERS || echo A-SILENT' 30)
rig_storage_link a up
grep -q B-ANSWERS <<<"$out" || { echo "FAIL: portal b silent while leg a is down"; exit 1; }
grep -q A-SILENT <<<"$out" || { echo "FAIL: portal a answers with its leg down"; exit 1; }

# Back at the console prompt after the shell: the agent still answers.
rig_mark a1
rig_send a1 status
rig_wait_for a1 '^stage +ready' 20
# busybox `reboot` in the rescue shell asks init (us) with SIGTERM: the node reboots
# (QEMU runs with -no-reboot, so it ends).
rig_mark a1
rig_send a1 sh
sleep 1
rig_send a1 reboot
for i in $(seq 100); do kill -0 "${RIG_PID[a1]}" 2>/dev/null || break; sleep 0.2; done
if kill -0 "${RIG_PID[a1]}" 2>/dev/null; then echo "FAIL: still running after reboot"; exit 1; fi
echo "PASS (ready in ${ready_s}s)"
