#!/usr/bin/env bash
# timeout: 300
# The cluster key typed on a rig node's serial console (SPEC §5): an image
# built without RIG_KEY carries no key; node a1 (PID 1 under QEMU, blank disks) waits at the
# handshake stage and says so on ttyS0; a wrong key typed after `key install` is refused and
# the node keeps waiting; the rig's key is taken without echo, stored on every cmpt-state,
# and the boot goes on to the decision. After a power cut the node boots again and reads
# the key from cmpt-state without asking.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up

# The keyless image, beside the rig's own.
mkdir -p "$RIG_DIR/b"
ln -s "$BUILD/compartd" "$BUILD/compartctl" "$BUILD/kernel" "$RIG_DIR/b/"
out=$(RIG_KEY= "$RIG_TOP/initramfs/build.sh" "$RIG_DIR/b")
grep -q "no cluster key" <<<"$out" || { echo "FAIL: the image build does not say it has no key"; exit 1; }
RIG_IMAGES=$RIG_DIR/b/images
hex=$(awk 'NR == 1 {print $1}' "$RIG_TOP/images/rig/cluster.key")
id=$(sed -n 's/^key_id = //p' "$RIG_CONF")
wrong=$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')

d0=$(rig_disk a1 0)
d1=$(rig_disk a1 1)
rig_node_start a1 --disk "$d0" --disk "$d1"
rig_wait_for a1 "event=boot stage=handshake waiting=\"cluster key: type 'key install' on the serial console\"" 120
rig_wait_for a1 'compartd a1> ' 20
waited=$(rig_elapsed a1)

rig_mark a1
rig_send a1 'key install'
rig_wait_for a1 'cluster key \(not echoed\): ' 20
rig_send a1 "$wrong"
rig_wait_for a1 "wrong key: its id is [0-9a-f]{16}, cluster.conf's key_id is $id; nothing stored" 20
grep -q "$wrong" "$RIG_DIR/a1.log" && { echo "FAIL: the typed key was echoed"; exit 1; }
rig_events a1 | grep -q '^event=ready' && { echo "FAIL: ready with a wrong key"; exit 1; }

rig_mark a1
rig_send a1 'key install'
rig_wait_for a1 'cluster key \(not echoed\): ' 20
rig_send a1 "$hex"
rig_wait_for a1 "key $id accepted and stored on 2 cmpt-states" 30
rig_wait_for a1 "event=key action=install id=$id stored=2" 10
rig_wait_for a1 'event=ready node=a1' 60
grep -q "$hex" "$RIG_DIR/a1.log" && { echo "FAIL: the typed key was echoed"; exit 1; }
echo "a1 waited for the key after ${waited}s; wrong key refused; the key stored on 2 cmpt-states; ready"

# Power cut, boot again from the same disks: the stored key, no question.
rig_kill a1
rig_node_start a1 --disk "$d0" --disk "$d1"
rig_wait_for a1 "event=key action=load id=$id from=cmpt-state" 120
rig_wait_for a1 'event=ready node=a1' 60
rig_events a1 | grep -q 'waiting=' && { echo "FAIL: asked for the key again"; exit 1; }
echo "after a power cut: key read from cmpt-state, ready after $(rig_elapsed a1)s"
echo PASS
