#!/usr/bin/env bash
# timeout: 300
# PID 1 with a broken cluster.conf in its image boots with the last-known-good copy kept on
# its cmpt-state (SPEC §2a, §10), says so on the console, and joins the cluster.
# 1. a1 and b1 boot the rig's image: a1, ready with version 1, records it as
#    last-known-good (its copy on cmpt-state).
# 2. a1 is cut off (power) and boots again from the same disks with an image whose
#    /etc/compartd/cluster.conf does not parse (an extra cpio archive over the rig's
#    one): `event=boot config=last-known-good version=1 reason=…` on the serial console,
#    the broken file recorded as failed, and a1 decides with b1 contacted (not
#    wait-operator) and becomes ready.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up

rig_start_all a1 b1
rig_wait_for a1 'event=config action=last-known-good version=1' 150 >/dev/null
echo "a1 recorded version 1 as last-known-good after $(rig_elapsed a1)s"

# The broken image: the rig's initramfs and, after it, a cpio archive whose
# etc/compartd/cluster.conf replaces the rig's (the kernel unpacks them in order).
broken=$RIG_DIR/broken-images
mkdir -p "$broken/ov/etc/compartd"
{ cat "$RIG_CONF"; echo "colour = red"; } >"$broken/ov/etc/compartd/cluster.conf"
(cd "$broken/ov" && find . | cpio --quiet -o -H newc -R 0:0) | gzip -n >"$broken/ov.cpio.gz"
cat "$RIG_IMAGES/initramfs.cpio.gz" "$broken/ov.cpio.gz" >"$broken/initramfs.cpio.gz"
ln -sf "$(readlink -f "$RIG_IMAGES/vmlinuz")" "$broken/vmlinuz"

rig_kill a1
saved=$RIG_IMAGES
RIG_IMAGES=$broken
rig_node_start a1
RIG_IMAGES=$saved
rig_wait_for a1 'event=boot config=last-known-good version=1 reason=' 120
rig_events a1 | grep -q 'event=config action=failed version=0' ||
	{ echo "FAIL: the broken file is not recorded as failed"; exit 1; }
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
d=$(rig_events a1 | grep '^event=decision ' | tail -1)
echo "a1: $d"
case "$d" in
*wait-operator*) echo "FAIL: a1 did not contact b1: $d"; exit 1 ;;
esac
case "$d" in
*contacted=0/*) echo "FAIL: a1 decided alone: $d"; exit 1 ;;
esac
echo "a1 booted its last-known-good version 1 with a broken image config and joined (ready after $(rig_elapsed a1)s)"
echo PASS
