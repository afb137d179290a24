#!/usr/bin/env bash
# timeout: 150
# PID 1 never exits: a node that cannot find itself in the configuration (a wrong
# compartd.node= on the command line) says why and what to do on the console, and its
# rescue prompt gives a working shell; the kernel does not panic.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
rig_node_start a1 --no-disks --append "compartd.node=nosuchnode"
rig_wait_for a1 "identity: node 'nosuchnode' is not in" 90
rig_wait_for a1 'rescue> ' 30 >/dev/null
rig_output a1 | { grep -E 'FATAL|Fix the cause|Type .sh.' || true; } | sed -n 1,5p
rig_mark a1
rig_send a1 sh
sleep 1
rig_send a1 "echo @@RESCUE''-\$((6*7)); exit"
rig_wait_for a1 '^@@RESCUE-42' 30
rig_wait_for a1 'rescue> ' 30 >/dev/null
if grep -q 'Kernel panic' "$RIG_DIR/a1.log"; then echo "FAIL: kernel panic"; exit 1; fi
kill -0 "${RIG_PID[a1]}" || { echo "FAIL: QEMU is gone"; exit 1; }
echo PASS
