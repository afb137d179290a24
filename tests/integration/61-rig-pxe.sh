#!/usr/bin/env bash
# timeout: 240
# Network boot as in production: SeaBIOS runs the iPXE ROM, which gets boot.ipxe, the
# kernel and the initramfs over QEMU's built-in TFTP (a user-mode NIC with restrict=on,
# routed nowhere). The node finds its identity from BOOTIF= (the MAC iPXE booted from).
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
[ -f "$RIG_IPXE_ROM" ] || { echo "the PXE test needs $RIG_IPXE_ROM (ipxe-qemu)"; exit 77; }
rig_init
rig_up

rig_node_start a1 --pxe

rig_wait_for a1 'Run /init as init process' 180 >/dev/null
rig_wait_for a1 'event=ready node=a1' 60
t=$(rig_elapsed a1)
cmdline=$(rig_sh a1 'cat /proc/cmdline' 30)
echo "kernel command line: $cmdline"
grep -q 'BOOTIF=01-52-54-00-77-0a-01' <<<"$cmdline" || { echo "FAIL: BOOTIF not passed by iPXE"; exit 1; }
echo "PASS (PXE boot to ready in ${t}s)"
