#!/usr/bin/env bash
# timeout: 90
# TRIM through NBD: with a thin-provisioned LU (VPD 0xB2 LBPU) the export offers TRIM and
# the agent sends UNMAP (the backing file gets a hole, the range reads as zeros); with a
# fully provisioned LU the export offers no TRIM and a discard changes nothing. FLUSH is
# answered (SYNCHRONIZE CACHE(16) on a path). A client that breaks the NBD protocol is
# disconnected without harm to others.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init serve.log console.sock

base=13320
head -c 16M /dev/urandom >"$tmp/lu.img"
cp "$tmp/lu.img" "$tmp/orig"
tgt_pair $base "$tmp/lu.img"
write_conf "$tmp/c.conf" $base

# Fully provisioned: no TRIM offered, a discard leaves the data.
serve_start "$tmp/c.conf"
wait_for 'event=storage name=lu0 .*paths=2/2' 15 || fail "login"
grep -q 'unmap no' "$tmp/serve.log" || fail "UNMAP support misread"
qemu-io -f raw -c 'discard 0 8M' "$(nbd_url)" >"$tmp/d.out" 2>&1 || true
cmp "$tmp/lu.img" "$tmp/orig" || fail "a discard changed a LU without UNMAP"
qemu-io -f raw -c 'flush' "$(nbd_url)" >"$tmp/f.out" 2>&1
! grep -q 'failed' "$tmp/f.out" || fail "flush: $(cat "$tmp/f.out")"
serve_stop

# Thin provisioned: TRIM becomes UNMAP.
for n in a b; do
	tgtadm -C "${TGT_CPORT[$n]}" --lld iscsi --mode logicalunit --op update --tid 1 --lun 1 \
		--params thin_provisioning=1
done
: >"$tmp/serve.log"
MARK=0
serve_start "$tmp/c.conf"
wait_for 'event=storage name=lu0 .*paths=2/2' 15 || fail "login (thin)"
grep -q 'unmap yes' "$tmp/serve.log" || fail "UNMAP support not seen"
before=$(du -k "$tmp/lu.img" | cut -f1)
qemu-io -f raw -c 'discard 0 8M' "$(nbd_url)" | grep -q '^discard 8388608/8388608' || fail "discard"
after=$(du -k "$tmp/lu.img" | cut -f1)
echo "backing file ${before}k -> ${after}k"
[ "$after" -le $((before - 8000)) ] || fail "UNMAP left no hole"
qemu-io -f raw -c 'read -P 0 0 8M' -c "read -v 8M 512" "$(nbd_url)" >"$tmp/r.out"
grep -q 'verification failed' "$tmp/r.out" && fail "trimmed range does not read as zeros"
cmp -i 8388608 "$tmp/lu.img" "$tmp/orig" || fail "UNMAP touched data beyond the range"

# A client that breaks the protocol is disconnected; the export keeps serving others.
python3 - "$tmp/nbd.sock" <<'EOP' || fail "bad client not disconnected"
import socket, struct, sys
for junk in (b"\x00\x00\x00\x00", struct.pack(">I", 3) + b"NOTMAGIC" + b"\xff" * 40,
             struct.pack(">I", 3) + struct.pack(">QII", 0x49484156454f5054, 7, 0xffffff)):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sys.argv[1])
    greeting = s.recv(18)
    assert greeting[:8] == b"NBDMAGIC", greeting
    s.sendall(junk)
    data = b"x"
    while data:
        data = s.recv(4096)  # EOF: the server closed it
    s.close()
EOP
grep -q 'client broke the protocol' "$tmp/serve.log" || fail "no protocol error logged"
qemu-io -f raw -c 'read -P 0 0 8M' "$(nbd_url)" | grep -q '^read 8388608/8388608' || fail "export dead after a bad client"
echo PASS
