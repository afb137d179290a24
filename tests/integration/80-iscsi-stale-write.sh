#!/usr/bin/env bash
# timeout: 180
# No stale writes on multipath (SPEC §4): a WRITE that timed out on a hung portal
# must not be re-issued on another path before the hung target has terminated it, or the
# hung target, once it runs again, applies the old data over newer data.
#
# Two tgtd (127.0.0.1, 127.0.0.2) serve one backing file. Portal a's tgtd is stopped
# (SIGSTOP: it answers nothing, resets nothing) while two writes of pattern A are in
# flight, one on each path (round-robin). The client then writes pattern B over the same
# blocks. tgtd a is resumed (SIGCONT) and given time to run what it still held. Read back
# through the agent on both paths and from the backing file (both tgtd serve it): B
# everywhere. A re-issue of A on portal b after path_timeout would let the resumed tgtd
# write A over B.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init serve.log console.sock
now() { date +%s.%N; }

base=13350
hang_s=12
truncate -s 8M "$tmp/lu.img"
tgt_pair $base "$tmp/lu.img"
write_conf "$tmp/c.conf" $base
# path_timeout 6s: the writer (a new qemu-io, slow to start on a loaded machine: 3 s were
# not always enough) is surely under way before portal a fails.
serve_start "$tmp/c.conf" --set timeouts.no_path_timeout=30s --set timeouts.path_timeout=6s
wait_for 'event=storage name=lu0 .*paths=2/2' 15 || fail "both paths did not come up"
wait_for 'nbd lu0: serving on' 5 || fail "no NBD socket"

qio -c 'write -P 0x11 0 64k' >/dev/null || fail "initial write"
qio -c 'read -P 0x11 0 64k' | grep -q 'read 65536/65536' || fail "initial read"

# The writer: A as two concurrent 4 KiB requests (round-robin puts one on each path),
# then, once both completed, B over the same 8 KiB. 4 KiB fits in a command's immediate
# data: the hung target holds the whole write (a larger one would wait for its R2T). Each step's end time is recorded.
writer() {
	qio -c 'aio_write -P 0xaa 0 4k' -c 'aio_write -P 0xaa 4k 4k' -c 'aio_flush' \
		>"$tmp/a.out" 2>&1
	now >"$tmp/a.done"
	qio -c 'write -P 0xbb 0 8k' >"$tmp/b.out" 2>&1
	now >"$tmp/b.done"
}

mark
kill -STOP "${TGT_PID[a]}"
t_stop=$(now)
writer &
wl=$!
wait_for "portal=127.0.0.1:$base state=failed reason=timeout" 12 || fail "the hung portal did not fail"
held=$(ctl paths --json | jq '.storage[0].paths[0].held')
[ "$held" = 1 ] || { ctl paths --json; fail "portal a's write is not held (held=$held)"; }
kill -0 "$wl" 2>/dev/null || fail "write A completed while portal a hung"
sleep "$(echo "$t_stop + $hang_s - $(now)" | bc)" 2>/dev/null || true
t_cont=$(now)
kill -CONT "${TGT_PID[a]}"
echo "tgtd a stopped for $(echo "$t_cont - $t_stop" | bc)s"
for _ in $(seq 400); do kill -0 "$wl" 2>/dev/null || break; sleep 0.1; done
kill -0 "$wl" 2>/dev/null && fail "the writer did not finish within 40s of SIGCONT"
wait "$wl" || true
wl=
cat "$tmp/a.out" "$tmp/b.out"
grep -qi 'error' "$tmp/a.out" "$tmp/b.out" && fail "the client saw an I/O error"
[ "$(grep -c 'wrote 4096/4096' "$tmp/a.out")" = 2 ] || fail "write A incomplete"
grep -q 'wrote 8192/8192' "$tmp/b.out" || fail "write B incomplete"
a_done=$(cat "$tmp/a.done")
echo "write A completed $(echo "$a_done - $t_stop" | bc)s after the stop, $(echo "$a_done - $t_cont" | bc)s after SIGCONT"
# The safe order: A completes only once tgtd a, running again, has terminated its copy.
[ "$(echo "$a_done >= $t_cont" | bc)" = 1 ] ||
	fail "write A completed while the portal holding it was hung (re-issued before the target terminated it)"
grep -qE "storage lu0: path 127.0.0.1:$base: [0-9]+ write\(s\) held" "$tmp/serve.log" ||
	fail "the agent did not say it held the writes"

# tgtd a runs again: whatever it still held has had time to land.
sleep 2
qio -c 'read -P 0xbb 0 8k' | grep -q 'read 8192/8192' || fail "read back through the agent: not B"
# Through the agent, 4 requests in flight: round-robin reads from both paths.
qio -c 'aio_read -P 0xbb 0 2k' -c 'aio_read -P 0xbb 2k 2k' -c 'aio_read -P 0xbb 4k 2k' \
	-c 'aio_read -P 0xbb 6k 2k' -c 'aio_flush' >"$tmp/r.out" 2>&1 || true
[ "$(grep -c 'read 2048/2048' "$tmp/r.out")" = 4 ] && ! grep -q 'verification failed' "$tmp/r.out" ||
	{ cat "$tmp/r.out"; fail "read back on both paths: not B (a stale write landed)"; }
cmp <(head -c 8k "$tmp/lu.img") <(head -c 8k /dev/zero | tr '\0' '\273') ||
	fail "the backing file does not hold B"
grep -q "state=reinstated" "$tmp/serve.log" || fail "portal a did not come back"

serve_stop

# 2. A target that stays hung: the held write fails with EIO after no_path_timeout (4s
# here), counted from when it was held; the agent says the target may still apply it.
mark
serve_start "$tmp/c.conf" --set timeouts.no_path_timeout=4s --set timeouts.path_timeout=3s
wait_for 'event=storage name=lu0 .*paths=2/2' 15 || fail "both paths did not come back"
wait_for 'nbd lu0: serving on' 5 || fail "no NBD socket after the restart"
kill -STOP "${TGT_PID[a]}"
t_stop=$(now)
qio -c 'aio_write -P 0xcc 0 4k' -c 'aio_write -P 0xcc 4k 4k' -c 'aio_flush' >"$tmp/c.out" 2>&1 || true
t_eio=$(now)
cat "$tmp/c.out"
d=$(echo "$t_eio - $t_stop" | bc)
echo "with portal a hung for good, the held write failed after ${d}s"
grep -q 'Input/output error' "$tmp/c.out" || fail "the held write did not fail with EIO"
grep -qE "held for 4000ms: the target of 127.0.0.1:$base did not confirm" "$tmp/serve.log" ||
	fail "no log line for the held write's EIO"
# path_timeout (3s, plus up to a check interval) + no_path_timeout (4s).
[ "$(echo "$d >= 6.5 && $d <= 12" | bc)" = 1 ] || fail "EIO after ${d}s, expected about 7s"
kill -CONT "${TGT_PID[a]}"
serve_stop
echo "PASS"
