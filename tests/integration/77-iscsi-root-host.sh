#!/usr/bin/env bash
# timeout: 120
# Root storage on the host (no QEMU): `compartd run` with `root = yes` on its storage marks
# argv[0] with '@' (only that byte: /proc/PID/comm stays), ignores SIGTERM and stops on
# SIGINT. Stopped (SIGSTOP) for 4 s, twice, while a verifying workload runs through its NBD
# socket and then continued: no I/O error, no mismatch, no path failed, the stall is noticed.
# Without `root`, SIGTERM stops the agent and argv[0] is left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init agent.log s/console.sock

base=13340
truncate -s 16M "$tmp/lu.img"
tgt_pair $base "$tmp/lu.img"
write_conf "$tmp/c.conf" $base "root = yes"
"$BUILD/compartd" run --foreground --config "$tmp/c.conf" --node n1 --state-dir "$tmp/s" >"$tmp/agent.log" 2>&1 &
apid=$!
agent_wait 'event=storage name=lu0 .*paths=2/2' 20 || fail "storage not up"
agent_wait 'event=ready' 20 || fail "not ready"
cmdline=$(tr '\0' ' ' </proc/$apid/cmdline)
echo "cmdline: $cmdline"
[ "${cmdline:0:1}" = @ ] || fail "argv[0] does not start with '@'"
[ "${cmdline:1}" = "${BUILD:1}/compartd run --foreground --config $tmp/c.conf --node n1 --state-dir $tmp/s " ] ||
	fail "more than argv[0][0] changed: $cmdline"
[ "$(cat /proc/$apid/comm)" = compartd ] || fail "comm changed: $(cat /proc/$apid/comm)"

# A verifying workload: 64 KiB at a rotating offset (the first 12.5 MiB), written, read back and compared.
sock="nbd+unix:///?socket=$tmp/s/nbd-lu0.sock"
(
	i=0
	while [ ! -e "$tmp/stop" ]; do
		p=$((i % 200 + 1))
		o=$((i % 200 * 65536))
		qemu-io -f raw -c "write -P $p $o 64k" -c "read -P $p $o 64k" "$sock" \
			>"$tmp/qio.out" 2>&1 || { echo "IO-ERROR $i"; cat "$tmp/qio.out"; }
		grep -q 'Pattern verification failed' "$tmp/qio.out" && echo "MISMATCH $i"
		i=$((i + 1))
		echo $i >"$tmp/rounds"
	done
	echo "DONE $i"
) >"$tmp/wl.log" 2>&1 &
wl=$!
sleep 1
for c in 1 2; do
	r0=$(cat "$tmp/rounds")
	kill -STOP "$apid"
	sleep 4
	grep -q '^State:.*stopped' /proc/$apid/status || fail "the agent was not stopped"
	kill -CONT "$apid"
	sleep 2
	echo "cycle $c: rounds $r0 to $(cat "$tmp/rounds")"
done
touch "$tmp/stop"
wait "$wl" || true
wl=
cat "$tmp/wl.log"
grep -q '^DONE' "$tmp/wl.log" || fail "the workload did not finish"
! grep -qE 'IO-ERROR|MISMATCH' "$tmp/wl.log" || fail "I/O errors or mismatches across SIGSTOP/SIGCONT"
[ "$(grep -c 'the agent did not run for' "$tmp/agent.log")" -ge 2 ] || fail "the stalls were not noticed"
! grep -q 'event=path storage=lu0 .*state=failed' "$tmp/agent.log" || fail "a path failed because the agent was stopped"
ctl paths | grep -q 'paths 2/2 up' || fail "paths not 2/2"

# SIGTERM is ignored, SIGINT stops.
kill -TERM "$apid"
sleep 1
kill -0 "$apid" || fail "SIGTERM stopped the agent serving root storage"
agent_wait 'signal 15 ignored: this agent serves lu0' 5 || fail "no word that SIGTERM was ignored"
kill -INT "$apid"
for _ in $(seq 50); do kill -0 "$apid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$apid" 2>/dev/null || fail "SIGINT did not stop it"
wait "$apid" || true
apid=

# Without root storage: plain argv[0], SIGTERM stops.
write_conf "$tmp/c2.conf" $base
"$BUILD/compartd" run --foreground --config "$tmp/c2.conf" --node n1 --state-dir "$tmp/s2" >"$tmp/agent2.log" 2>&1 &
apid=$!
for _ in $(seq 100); do grep -q 'event=storage name=lu0 .*paths=2/2' "$tmp/agent2.log" && break; sleep 0.1; done
[ "$(head -c 1 /proc/$apid/cmdline)" = / ] || fail "argv[0] marked without root storage"
kill -TERM "$apid"
for _ in $(seq 50); do kill -0 "$apid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$apid" 2>/dev/null || fail "SIGTERM did not stop an agent without root storage"
wait "$apid" || true
apid=
echo PASS
