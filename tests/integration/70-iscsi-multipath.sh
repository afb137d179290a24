#!/usr/bin/env bash
# timeout: 240
# iSCSI multipath on the host, through the agent's own NBD socket: two tgtd (127.0.0.1
# and 127.0.0.2) serve one backing file as one LU; `compartd storage serve` logs in to
# both, exports over NBD; qemu-img writes and verifies checksummed data while one portal
# is stopped, killed and restarted (no I/O error may reach the client), UNIT ATTENTION
# is retried, and with both portals gone I/O fails with EIO after no_path_timeout and
# recovers when a portal returns.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init serve.log console.sock
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

base=13260
truncate -s 32M "$tmp/lu.img"
for k in 1 2 3; do head -c 32M /dev/urandom >"$tmp/data$k"; done
tgt_pair $base "$tmp/lu.img"
write_conf "$tmp/c.conf" $base
serve_start "$tmp/c.conf" --set timeouts.no_path_timeout=4s

# 1. Login on both portals, one identity, the export.
wait_for 'event=storage name=lu0 .*paths=2/2' 15 || fail "both paths did not come up"
grep -q "event=path storage=lu0 portal=127.0.0.1:$base state=up reason=login" "$tmp/serve.log" || fail "no up event for a"
grep -q "event=path storage=lu0 portal=127.0.0.2:$((base + 2)) state=up reason=login" "$tmp/serve.log" || fail "no up event for b"
grep -qE 'event=storage name=lu0 dev=none paths=1/2 size=33554432 designator=naa\.[0-9a-f]+' "$tmp/serve.log" || fail "storage event keys"
wait_for 'nbd lu0: serving on' 5 || fail "no NBD socket"
# A peer gone (a portal's TCP reset, an NBD client closing) is an EPIPE to handle: the
# agent, which is not PID 1 here, ignores SIGPIPE (libiscsi's writev cannot say MSG_NOSIGNAL).
sigign=$(sed -n 's/^SigIgn:[[:space:]]*//p' "/proc/$SERVE_PID/status")
(( 0x$sigign & (1 << 12) )) || fail "the agent does not ignore SIGPIPE (SigIgn $sigign)"

# 2. Checksummed write and read-verify through NBD; the backing file holds the bytes.
qemu-img convert -n -f raw -O raw "$tmp/data1" "$(nbd_url)" || fail "write through NBD"
qemu-img compare -f raw -F raw "$tmp/data1" "$(nbd_url)" || fail "read-verify through NBD"
cmp "$tmp/data1" "$tmp/lu.img" || fail "the backing file does not hold what was written"

# 3. Round-robin used both paths; the console shows the counters.
ctl paths | grep -q "storage lu0 .*paths 2/2 up  round-robin" || { ctl paths; fail "paths text"; }
json=$(ctl paths --json)
for i in 0 1; do
	[ "$(jq ".storage[0].paths[$i].state" <<<"$json")" = '"up"' ] || fail "path $i not up: $json"
	[ "$(jq ".storage[0].paths[$i].bytes_written > 0 and .storage[0].paths[$i].bytes_read > 0" <<<"$json")" = true ] \
		|| fail "path $i carried no I/O: $json"
done

# 4. Path failures under a checksummed workload: no error may reach the client.
workload() {
	for k in 2 3 2 3 2 3 2 3; do
		qemu-img convert -n -f raw -O raw "$tmp/data$k" "$(nbd_url)" || { echo "write $k failed"; return 1; }
		qemu-img compare -q -f raw -F raw "$tmp/data$k" "$(nbd_url)" || { echo "verify $k failed"; return 1; }
		echo "round $k ok"
	done
}
workload >"$tmp/workload.log" 2>&1 &
wl=$!
sleep 1
mark
kill -STOP "${TGT_PID[a]}"
t0=$(now)
wait_for "portal=127.0.0.1:$base state=failed reason=timeout" 6 || fail "stopped portal not failed"
d=$(elapsed "$t0")
echo "stopped portal failed after ${d}s"
# path_timeout (2s) after the oldest command, which is at most path_check_interval old.
[ "$(echo "$d <= 3.5" | bc)" = 1 ] || fail "failing took ${d}s, more than path_timeout + check interval"
mark
tgt_kill a
tgt_start a 127.0.0.1 $base $((base + 1)) "$tmp/lu.img" compartd-lu0 CMPT0001
wait_for "portal=127.0.0.1:$base state=reinstated" 15 || fail "a not reinstated"
mark
kill -9 "${TGT_PID[b]}"
wait_for "portal=127.0.0.2:$((base + 2)) state=failed reason=session-lost" 6 || fail "killed portal not failed"
TGT_PID[b]=
mark
tgt_start b 127.0.0.2 $((base + 2)) $((base + 3)) "$tmp/lu.img" compartd-lu0 CMPT0001
wait_for "portal=127.0.0.2:$((base + 2)) state=reinstated" 15 || fail "b not reinstated"
wait "$wl" || { cat "$tmp/workload.log"; fail "the client saw an I/O error or a checksum mismatch"; }
wl=
[ "$(grep -c 'ok$' "$tmp/workload.log")" = 8 ] || { cat "$tmp/workload.log"; fail "workload incomplete"; }
ctl paths

# 5. UNIT ATTENTION: a LU added to the target makes tgtd report REPORTED LUNS DATA HAS
# CHANGED on the next command of every session; the agent retries it.
truncate -s 1M "$tmp/lun2.img"
for n in a b; do
	tgtadm -C "${TGT_CPORT[$n]}" --lld iscsi --mode logicalunit --op new --tid 1 --lun 2 -b "$tmp/lun2.img"
done
qemu-img convert -n -f raw -O raw "$tmp/data1" "$(nbd_url)" || fail "write after UNIT ATTENTION"
qemu-img compare -q -f raw -F raw "$tmp/data1" "$(nbd_url)" || fail "verify after UNIT ATTENTION"
ua=$(ctl paths --json | jq '[.storage[0].paths[].unit_attentions] | add')
[ "$ua" -ge 1 ] || fail "no UNIT ATTENTION was seen (count $ua)"
echo "unit attentions retried: $ua"

# 6. No path: I/O waits no_path_timeout (4s), then EIO; a returning portal serves again.
# (The client's flush at exit waits its own 4s: the time is taken from the agent's log.)
mark
tgt_kill a
tgt_kill b
wait_for 'event=storage name=lu0 .*paths=0/2' 6 || fail "paths not down"
t0=$(now)
qemu-io -f raw -c 'read 0 64k' "$(nbd_url)" >"$tmp/eio.out" 2>&1 &
q=$!
wait_for 'no path for 4000ms, read at block 0 fails with EIO' 10 || fail "no EIO after no_path_timeout"
d=$(elapsed "$t0")
wait "$q" || true
echo "no-path read failed after ${d}s: $(cat "$tmp/eio.out")"
grep -q 'read failed: Input/output error' "$tmp/eio.out" || fail "the client did not see EIO"
[ "$(echo "$d >= 3.9 && $d <= 6" | bc)" = 1 ] || fail "EIO after ${d}s, expected 4s (plus client start-up)"
mark
tgt_start a 127.0.0.1 $base $((base + 1)) "$tmp/lu.img" compartd-lu0 CMPT0001
wait_for "portal=127.0.0.1:$base state=reinstated" 15 || fail "a not back"
qemu-img compare -q -f raw -F raw "$tmp/data1" "$(nbd_url)" || fail "data after recovery"

# A queued request survives a short outage: read while no path, portal back within 4s.
mark
tgt_kill a
wait_for 'event=storage name=lu0 .*paths=0/2' 6 || fail "paths not down again"
qemu-io -f raw -c 'read 0 64k' "$(nbd_url)" >"$tmp/q.out" 2>&1 &
q=$!
sleep 1
mark
tgt_start a 127.0.0.1 $base $((base + 1)) "$tmp/lu.img" compartd-lu0 CMPT0001
wait "$q" || true
cat "$tmp/q.out"
grep -q '^read 65536/65536 bytes' "$tmp/q.out" || fail "a request queued across a short outage failed"
qemu-img compare -q -f raw -F raw "$tmp/data1" "$(nbd_url)" || fail "data after the short outage"

serve_stop
echo "PASS"
