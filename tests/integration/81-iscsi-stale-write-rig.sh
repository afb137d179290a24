#!/usr/bin/env bash
# timeout: 600
# No stale writes on multipath, in the QEMU rig through the kernel (SPEC §4; the host
# version is 80-iscsi-stale-write). Portal b gets a tgtd of its own (same backing file,
# tid and LUN: the same LU, as in bench/mpath.sh). Node a1 boots, exports mirror0 as
# /dev/nbd0 over both portals. b's tgtd is stopped (SIGSTOP) and the guest writes pattern A
# as two concurrent 4 KiB O_DIRECT writes (round-robin: one per path); portal b fails by
# timeout and its write is held (not re-issued on a, the guest's write still under way);
# b's tgtd is resumed; the guest's writes complete, it writes pattern B over the same
# 8 KiB; read back B in the guest (two concurrent reads: both paths) and in the backing
# file. A re-issue of A on portal a after path_timeout would let the resumed tgtd write A
# over B.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. images/rig/lib.sh
rig_require
rig_init
TARGET=iqn.2026-11.org.compartd.rig:mirror0
PORTAL_B=10.77.2.100:3260
TGT_B_PID=
trap '[ -n "$TGT_B_PID" ] && kill -CONT "$TGT_B_PID" 2>/dev/null; rig_down' EXIT
rig_up
HANG_S=15

fail() {
	echo "FAIL: $*"
	rig_events a1 | grep -E 'event=(path|storage)' | tail -n 20
	grep -E 'held|reinstated' "$RIG_DIR/a1.log" | tail -n 10
	exit 1
}

# Portal b on a tgtd of its own, serving mirror0's backing file as tid 1, LUN 1.
tgtadm -C "${RIG_CTL[0]}" --lld iscsi --op delete --mode portal --param "portal=$PORTAL_B"
ctl=$(rig_free_ctl)
ip netns exec "$RIG_NS_ST" tgtd -f -C "$ctl" --iscsi "portal=$PORTAL_B" \
	>>"$RIG_DIR/tgtd-mirror0-b.log" 2>&1 &
TGT_B_PID=$!
RIG_TGTD+=("$TGT_B_PID")
disown "$TGT_B_PID"
RIG_CTL+=("$ctl")
t="tgtadm -C $ctl --lld iscsi"
for _ in $(seq 50); do $t --op show --mode target >/dev/null 2>&1 && break; sleep 0.1; done
$t --op new --mode target --tid 1 -T "$TARGET"
$t --op new --mode logicalunit --tid 1 --lun 1 -b "$RIG_DIR/mirror0.img"
$t --op bind --mode target --tid 1 -I ALL

# path_timeout 5 s: the guest's writes (started through the serial console) are surely
# under way before portal b fails. no_path_timeout 60 s: longer than the hang.
rig_node_start a1 --append "compartd.timeouts.path_timeout=5s compartd.timeouts.no_path_timeout=60s"
rig_wait_for a1 'event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=2/2' 150 >/dev/null ||
	fail "no kernel device with 2 paths"
rig_sh a1 "head -c 4096 /dev/zero | tr '\\0' '\\252' >/tmp/A; head -c 8192 /dev/zero | tr '\\0' '\\273' >/tmp/B
head -c 8192 /dev/zero | tr '\\0' '\\021' >/tmp/Z; dd if=/tmp/Z of=/dev/nbd0 bs=8k count=1 oflag=direct 2>&1
printf '%s\\n' 'dd if=/tmp/A of=/dev/nbd0 bs=4k seek=0 oflag=direct 2>/tmp/e0 & p0=\$!' \
 'dd if=/tmp/A of=/dev/nbd0 bs=4k seek=1 oflag=direct 2>/tmp/e1 & p1=\$!' \
 'wait \$p0 || echo A-ERROR; wait \$p1 || echo A-ERROR; touch /tmp/a.done' \
 'dd if=/tmp/B of=/dev/nbd0 bs=8k seek=0 oflag=direct 2>/tmp/e2 || echo B-ERROR; touch /tmp/b.done' \
 >/tmp/writer.sh" 60 || fail "guest set-up"

rig_mark a1
kill -STOP "$TGT_B_PID"
t_stop=$(date +%s.%N)
rig_log "portal b: tgtd $TGT_B_PID stopped"
rig_sh a1 'rm -f /tmp/a.done /tmp/b.done; setsid sh /tmp/writer.sh </dev/null >/tmp/writer.log 2>&1 & sleep 0.2' 30 ||
	fail "writer not started"
rig_wait_for a1 "event=path storage=mirror0 portal=$PORTAL_B state=failed reason=timeout" 30 >/dev/null ||
	fail "portal b did not fail by timeout"
out=$(rig_sh a1 'compartctl paths --json; echo; ls /tmp/a.done 2>/dev/null || echo A-PENDING' 60)
echo "$out"
grep -q A-PENDING <<<"$out" || fail "write A completed while portal b hung"
held=$(grep '^{' <<<"$out" | jq '[.storage[] | select(.name == "mirror0") | .paths[1].held] | add')
[ "$held" = 1 ] || fail "portal b's write is not held (held=$held)"
sleep "$(echo "$t_stop + $HANG_S - $(date +%s.%N)" | bc)" 2>/dev/null || true
kill -CONT "$TGT_B_PID"
rig_log "portal b: tgtd $TGT_B_PID resumed"

done_=
for _ in $(seq 20); do
	out=$(rig_sh a1 'cat /tmp/writer.log; ls /tmp/b.done 2>/dev/null || echo B-PENDING' 30) || true
	grep -q B-PENDING <<<"$out" || { done_=1; break; }
	sleep 2
done
echo "$out"
[ -n "$done_" ] || fail "the guest's writes did not finish after SIGCONT"
! grep -qE 'A-ERROR|B-ERROR' <<<"$out" || fail "the guest saw an I/O error"
sleep 2 # the resumed tgtd has run whatever it still held
out=$(rig_sh a1 'dd if=/dev/nbd0 of=/tmp/r0 bs=4k count=1 skip=0 iflag=direct 2>/dev/null &
dd if=/dev/nbd0 of=/tmp/r1 bs=4k count=1 skip=1 iflag=direct 2>/dev/null; wait
cat /tmp/r0 /tmp/r1 | cmp - /tmp/B && echo READ-B; compartctl paths' 60)
echo "$out"
grep -q READ-B <<<"$out" || fail "the guest reads back other than B (a stale write landed)"
cmp <(head -c 8192 "$RIG_DIR/mirror0.img") <(head -c 8192 /dev/zero | tr '\0' '\273') ||
	fail "the backing file does not hold B"
grep -q 'storage mirror0 .*paths 2/2 up' <<<"$out" || fail "portal b not back in service"
echo "PASS (portal b hung ${HANG_S}s with a write held; B read back on both paths)"
