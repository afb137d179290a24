#!/usr/bin/env bash
# timeout: 600
# iSCSI multipath in the QEMU rig, through the kernel: node a1 boots as PID 1, logs in to
# mirror0 on both portals and exports it as /dev/nbd0 (/dev/compart/mirror0) over the NBD
# netlink interface. A checksummed write/read-verify workload runs on /dev/nbd0 in the
# guest while portal b loses its storage link 20 times (the rig's one tgtd serves both
# portals, so a portal "dies" by its network leg going down): zero I/O errors and zero
# checksum mismatches in the guest. Then both portals go: I/O fails with EIO after
# no_path_timeout (5s here) and works again when a portal returns.
# Only leg b is cycled: leg a down with b up is the same one-path failure from the other
# side (each portal answers through its own leg, images/rig/lib.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/images/rig/lib.sh"
rig_require
rig_init
rig_up
CYCLES=${CYCLES:-20}
fail() {
	echo "FAIL: $*"
	rig_events a1 | grep -E 'event=(path|storage)' | tail -n 20
	exit 1
}

rig_node_start a1 --append "compartd.timeouts.no_path_timeout=5s"
rig_wait_for a1 'event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=2/2' 150 || fail "no kernel device with 2 paths"
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null || fail "not ready"
out=$(rig_sh a1 'readlink /dev/compart/mirror0; compartctl paths' 30)
echo "$out"
grep -q '^/dev/nbd0$' <<<"$out" || fail "/dev/compart/mirror0 does not point at /dev/nbd0"

# The checksummed workload on /dev/nbd0 (images/rig/lib.sh); stops when /tmp/stop exists.
rig_nbd_workload a1

start=$(date +%s)
for c in $(seq "$CYCLES"); do
	leg=b
	portal=10.77.2.100:3260
	rig_mark a1
	rig_storage_link "$leg" down
	rig_wait_for a1 "event=path storage=mirror0 portal=$portal state=failed" 15 >/dev/null ||
		fail "cycle $c: portal $portal not failed"
	rig_storage_link "$leg" up
	rig_wait_for a1 "event=path storage=mirror0 portal=$portal state=reinstated" 30 >/dev/null ||
		fail "cycle $c: portal $portal not reinstated"
	echo "cycle $c: $portal failed and reinstated"
done
echo "$CYCLES cycles in $(($(date +%s) - start))s"
out=$(rig_sh a1 'touch /tmp/stop; sleep 3; cat /tmp/wl.log; echo ROUNDS $(cat /tmp/rounds); compartctl paths' 60)
echo "$out"
grep -q '^DONE ' <<<"$out" || fail "the workload did not finish"
rounds=$(sed -n 's/^ROUNDS //p' <<<"$out")
[ "${rounds:-0}" -ge "$CYCLES" ] || fail "only ${rounds:-0} rounds of I/O"
! grep -qE 'WRITE-ERROR|READ-ERROR' <<<"$out" || fail "I/O errors in the guest"
! grep -q MISMATCH <<<"$out" || fail "checksum mismatches in the guest"

# Both portals gone: EIO after no_path_timeout; a returning portal serves again.
rig_mark a1
rig_storage_link a down
rig_storage_link b down
out=$(rig_sh a1 's=$(date +%s); dd if=/dev/nbd0 of=/dev/null bs=4k count=1 skip=7 iflag=direct 2>&1 && echo READ-OK || echo READ-FAILED; echo SECS $(($(date +%s) - s))' 120)
echo "$out"
grep -q READ-FAILED <<<"$out" || fail "I/O did not fail with no path"
grep -qi 'I/O error\|Input/output error' <<<"$out" || fail "the failure is not EIO"
secs=$(sed -n 's/^SECS //p' <<<"$out")
[ "$secs" -ge 4 ] && [ "$secs" -le 20 ] || fail "EIO after ${secs}s, expected about 5s (path_timeout + no_path_timeout)"
rig_mark a1
rig_storage_link a up
rig_wait_for a1 'event=path storage=mirror0 portal=10.77.1.100:3260 state=reinstated' 30 >/dev/null || fail "a not back"
out=$(rig_sh a1 'dd if=/dev/nbd0 of=/dev/null bs=4k count=1 skip=9 iflag=direct 2>&1 && echo READ-OK' 60)
grep -q READ-OK <<<"$out" || fail "no I/O after a portal returned: $out"
rig_storage_link b up
echo "PASS ($CYCLES path failures, ${rounds} verified rounds, EIO after ${secs}s with no path)"
