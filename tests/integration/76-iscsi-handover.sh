#!/usr/bin/env bash
# timeout: 420
# The hand-over to a real root (SPEC §4, systemd's root-storage-daemon convention) and the
# NBD export's health check (SPEC §8), in the QEMU rig. Node a1 boots with mirror0 marked
# as its root file system's storage (compartd.storage.mirror0.root=yes): PID 1 stays a
# small init and the agent serves /dev/nbd0 from a child whose /proc/PID/cmdline starts
# with '@'.
#  1. SIGSTOP/SIGCONT: a checksummed write/read-verify workload runs on /dev/nbd0 while the
#     agent is stopped for 5 s (longer than path_timeout) and continued, 3 times: zero I/O
#     errors, zero mismatches, both paths 2/2 afterwards.
#     Then one stop longer than the kernel's per-request timeout (37 s with no_path_timeout
#     5s) with a write in flight: the kernel gives up on the socket and holds the request;
#     export:mirror0 re-exports (NBD_CMD_RECONFIGURE) and the write completes intact.
#  2. The export broken from outside (`compartd storage detach /dev/nbd0`, NBD_CMD_DISCONNECT
#     over netlink): export:mirror0 fails at reachable, is isolated, re-exported (reload)
#     and recovered; data written before reads back the same.
#  3. The killing spree of a switch_root (systemd-shutdown's broadcast): SIGSTOP to all,
#     SIGTERM to every process but PID 1, kernel threads and those whose argv[0] starts
#     with '@', SIGCONT to all, then the same with SIGKILL. The agent survives, a direct
#     SIGTERM is ignored, and I/O goes on with the same data.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/images/rig/lib.sh"
rig_require
rig_init
rig_up
CYCLES=${CYCLES:-3}
STOP_S=${STOP_S:-5}
LONG_S=40 # longer than the kernel's per-request timeout (37 s here)
fail() {
	echo "FAIL: $*"
	rig_events a1 | grep -E 'event=(path|storage|health)' | tail -n 20
	# what the agent and the kernel said meanwhile (events wait while a shell runs)
	echo "---- the agent's log and the kernel's, at the failure"
	rig_sh a1 "compartctl log 300 | grep -E 'nbd|export|storage mirror0' | tail -n 40; dmesg | grep -i nbd | tail -n 20" 40 || true
	exit 1
}

# While a rescue shell runs, the serial console prints nothing of the agent's: what happens
# then is read back from the agent's log ring (without its timestamps, which rig_sh would
# take for the kernel's).
guest_log() { rig_sh a1 "compartctl log 2000 | sed 's/^\\[[^]]*\\] //' | grep -E '$1' || true" 40; }
guest_count() { guest_log "$1" | grep -c . || true; }

# no_path_timeout 5s: the kernel's per-request timeout is 5 + 2 + 30 = 37 s.
rig_node_start a1 --append "compartd.storage.mirror0.root=yes compartd.timeouts.no_path_timeout=5s"
rig_wait_for a1 'event=storage name=mirror0 dev=/dev/nbd[0-9]+ paths=2/2' 180 >/dev/null ||
	fail "no kernel device with 2 paths"
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null || fail "not ready"

out=$(rig_sh a1 'p=$(compartctl status --json | sed -n "s/.*\"pid\":\([0-9]*\).*/\1/p"); echo PID $p
 echo CMDLINE $(tr "\0" " " </proc/$p/cmdline); echo COMM $(cat /proc/$p/comm)
 echo INIT $(tr "\0" " " </proc/1/cmdline); readlink /dev/compart/mirror0' 30)
echo "$out"
pid=$(sed -n 's/^PID //p' <<<"$out")
[ -n "$pid" ] && [ "$pid" != 1 ] || fail "the agent serving root storage is not a child of PID 1 (pid '$pid')"
grep -q '^CMDLINE @' <<<"$out" || fail "/proc/$pid/cmdline does not start with '@'"
grep -q '^COMM init' <<<"$out" || fail "the comm name changed (the convention leaves it)"
grep -q '^INIT /init' <<<"$out" || fail "PID 1 is not /init"
grep -q '^/dev/nbd0$' <<<"$out" || fail "/dev/compart/mirror0 does not point at /dev/nbd0"

# The checksummed workload on /dev/nbd0 (images/rig/lib.sh); stops when /tmp/stop exists.
rig_nbd_workload a1

# 1. Stopped and continued while the workload runs.
stalls0=$(guest_count 'the agent did not run for')
failed0=$(guest_count 'event=path storage=mirror0 .*state=failed')
start=$(date +%s)
out=$(rig_sh a1 "for c in \$(seq $CYCLES); do r0=\$(cat /tmp/rounds); kill -STOP $pid; sleep $STOP_S;
 echo STOPPED \$c \$(grep ^State: /proc/$pid/status); kill -CONT $pid; sleep 4;
 echo CYCLE \$c rounds \$r0 to \$(cat /tmp/rounds); done" $((CYCLES * (STOP_S + 4) + 60)))
echo "$out"
[ "$(grep -c '^STOPPED .*stopped' <<<"$out")" = "$CYCLES" ] || fail "the agent was not stopped $CYCLES times"
[ "$(grep -c '^CYCLE ' <<<"$out")" = "$CYCLES" ] || fail "not every cycle completed"
guest_log 'the agent did not run for'
stalls=$(($(guest_count 'the agent did not run for') - stalls0))
[ "$stalls" -ge "$CYCLES" ] || fail "$stalls stalls of the agent noticed, expected $CYCLES"
failed=$(($(guest_count 'event=path storage=mirror0 .*state=failed') - failed0))
echo "$CYCLES stops of ${STOP_S}s in $(($(date +%s) - start))s: $stalls stalls absorbed, $failed path failures"
sleep 3
out=$(rig_sh a1 'touch /tmp/stop; sleep 4; cat /tmp/wl.log; echo ROUNDS $(cat /tmp/rounds); compartctl paths' 60)
echo "$out"
grep -q '^DONE ' <<<"$out" || fail "the workload did not finish"
rounds=$(sed -n 's/^ROUNDS //p' <<<"$out")
[ "${rounds:-0}" -ge "$CYCLES" ] || fail "only ${rounds:-0} rounds of I/O"
! grep -qE 'WRITE-ERROR|READ-ERROR' <<<"$out" || fail "I/O errors in the guest"
! grep -q MISMATCH <<<"$out" || fail "checksum mismatches in the guest"
for _ in $(seq 20); do
	grep -q 'paths 2/2 up' <<<"$out" && break
	sleep 2
	out=$(rig_sh a1 'compartctl paths' 30)
done
grep -q 'paths 2/2 up' <<<"$out" || fail "the paths did not come back to 2/2"

# 1b. Stopped longer than the kernel's per-request timeout, with a write in flight: the
# kernel gives up on the socket and holds the request (dead_conn_timeout); after SIGCONT
# export:mirror0 re-exports on the same device and the write completes, no error.
rec0=$(guest_count 'component=export:mirror0 state=recovered')
out=$(rig_sh a1 "dd if=/dev/urandom of=/tmp/k2 bs=1M count=1 2>/dev/null; kill -STOP $pid
 (dd if=/tmp/k2 of=/dev/nbd0 bs=1M seek=210 oflag=direct conv=fsync 2>/tmp/k2err && echo K2-WRITTEN || { echo K2-ERROR; cat /tmp/k2err; }) >/tmp/k2.log 2>&1 &
 sleep $LONG_S; kill -CONT $pid; wait; cat /tmp/k2.log
 dd if=/dev/nbd0 of=/tmp/k2r bs=1M skip=210 count=1 iflag=direct 2>&1 && cmp /tmp/k2 /tmp/k2r && echo K2-SAME" $((LONG_S + 120)))
echo "$out"
grep -q '^K2-WRITTEN' <<<"$out" || fail "the write in flight across a ${LONG_S}s stop failed"
grep -q '^K2-SAME' <<<"$out" || fail "the write across a ${LONG_S}s stop does not read back the same"
ev=$(guest_log 'event=health component=export:mirror0')
echo "$ev"
[ "$(grep -c 'state=recovered stage=reachable action=reload' <<<"$ev")" -gt "$rec0" ] ||
	fail "the export was not re-exported after the kernel gave up on its socket"

# 2. The export broken from outside: isolate → re-export → recovered.
out=$(rig_sh a1 'dd if=/dev/urandom of=/tmp/keep bs=1M count=1 2>/dev/null
 dd if=/tmp/keep of=/dev/nbd0 bs=1M seek=230 oflag=direct conv=fsync 2>&1 && echo KEPT
 compartctl health | grep "^export:"' 30)
echo "$out"
grep -q KEPT <<<"$out" || fail "cannot write the kept block"
grep -qE '^export:mirror0 +ok' <<<"$out" || fail "export:mirror0 is not ok in health"
out=$(rig_sh a1 'compartd storage detach /dev/nbd0' 30)
echo "$out"
grep -q 'disconnected' <<<"$out" || fail "the detach tool did not disconnect /dev/nbd0"
for _ in $(seq 20); do
	ev=$(guest_log 'event=health component=export:mirror0')
	[ "$(grep -c 'state=recovered' <<<"$ev")" -gt "$((rec0 + 1))" ] && break
	grep -q 'state=needs-operator' <<<"$ev" && break
	sleep 2
done
echo "$ev"
grep -q 'reason="/dev/nbd0 is not connected"' <<<"$ev" || fail "no failed/isolate line for the detached export"
[ "$(grep -c 'state=recovered stage=reachable action=reload' <<<"$ev")" -gt "$((rec0 + 1))" ] ||
	fail "the detached export did not recover by re-export"
out=$(rig_sh a1 'dd if=/dev/nbd0 of=/tmp/back bs=1M skip=230 count=1 iflag=direct 2>&1 && cmp /tmp/keep /tmp/back && echo SAME
 compartctl health | grep "^export:"' 60)
echo "$out"
grep -q SAME <<<"$out" || fail "the kept block does not read back the same after the re-export"
guest_log 'health: export:mirror0: (reload|isolate)'
grep -qE '^export:mirror0 +ok' <<<"$out" || fail "export:mirror0 not ok after recovery"

# 3. The killing spree of a switch_root, as systemd-shutdown does it: everything but PID 1,
# kernel threads (empty cmdline), the spree itself and '@' processes gets SIGTERM, then
# SIGKILL, each between a SIGSTOP and a SIGCONT broadcast.
rig_mark a1
out=$(rig_sh a1 "sleep 600 </dev/null >/dev/null 2>&1 & echo \$! >/tmp/victim; sleep 1
 [ -e /proc/\$(cat /tmp/victim) ] && echo VICTIM-UP; printf '%s\n' \
 'spree() {' \
 '  kill -STOP -1; n=0' \
 '  for d in /proc/[0-9]*; do p=\${d#/proc/}' \
 '    [ \"\$p\" = 1 ] || [ \"\$p\" = \$\$ ] && continue' \
 '    c=\$(head -c 1 \$d/cmdline 2>/dev/null) || continue' \
 '    [ -z \"\$c\" ] || [ \"\$c\" = @ ] && continue' \
 '    kill -\$1 \$p 2>/dev/null && n=\$((n + 1))' \
 '  done; kill -CONT -1; echo SPREE \$1 \$n' \
 '}' \
 'spree TERM; sleep 2; spree KILL; echo SPREE-DONE' >/tmp/spree.sh
 setsid sh /tmp/spree.sh </dev/null >/tmp/spree.log 2>&1 & sleep 1" 30) || true
grep -q VICTIM-UP <<<"$out" || fail "the spree's victim did not start"
sleep 8
out=$(rig_sh a1 "cat /tmp/spree.log; [ -e /proc/\$(cat /tmp/victim) ] || echo VICTIM-GONE; echo ALIVE \$(tr '\0' ' ' </proc/$pid/cmdline)
 kill -TERM $pid; sleep 2; echo AFTER-TERM \$(tr '\0' ' ' </proc/$pid/cmdline)
 dd if=/dev/nbd0 of=/tmp/back2 bs=1M skip=230 count=1 iflag=direct 2>&1 && cmp /tmp/keep /tmp/back2 && echo SAME
 dd if=/dev/urandom of=/tmp/w2 bs=1M count=1 2>/dev/null
 dd if=/tmp/w2 of=/dev/nbd0 bs=1M seek=240 oflag=direct conv=fsync 2>&1 &&
 dd if=/dev/nbd0 of=/tmp/r2 bs=1M skip=240 count=1 iflag=direct 2>&1 && cmp /tmp/w2 /tmp/r2 && echo VERIFIED
 compartctl paths | head -1" 90)
echo "$out"
grep -q '^SPREE-DONE' <<<"$out" || fail "the spree did not run to its end"
grep -qE '^SPREE TERM [1-9]' <<<"$out" || fail "the spree signalled nothing: it proves nothing"
grep -q '^VICTIM-GONE' <<<"$out" || fail "a process without '@' survived the spree"
grep -q "^ALIVE @" <<<"$out" || fail "the agent did not survive the spree"
grep -q "^AFTER-TERM @" <<<"$out" || fail "the agent did not survive a direct SIGTERM"
[ "$(guest_count 'signal 15 ignored: this agent serves mirror0')" -ge 1 ] || fail "no word that SIGTERM was ignored"
grep -q SAME <<<"$out" || fail "the kept block differs after the spree"
grep -q VERIFIED <<<"$out" || fail "no verified I/O after the spree"
echo "PASS ($CYCLES stops of ${STOP_S}s with $rounds verified rounds and 0 errors, $failed path failures;" \
	"export re-exported; spree survived)"
