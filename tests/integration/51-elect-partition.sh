#!/usr/bin/env bash
# timeout: 120
# Election under partitions (SPEC §7), real agents in network namespaces:
# - compartments cut, quorum device reachable from both: the master keeps its lease
#   through its slot writes, nobody takes over, exactly one master all along;
# - quorum device lost, network intact: the master keeps its lease through the slave's
#   acknowledgements, nobody takes over;
# - quorum device lost as well: the master steps down after its lease (reason
#   lease-lapsed), no new master while both channels are gone;
# - both back: exactly one master again. No overlap in any node's timeline.
source "$(dirname "$0")/lib-elect.sh"
el_setup
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 15)
echo "master: $m"
el_wait_complete "$m"
sleep 0.5
promotions() { cat "$EL_TMP"/*.log | grep -cE 'event=role .*kind="?infra.* role="?master'; }
p0=$(promotions)

ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=0 # cut a from b
sleep 4
[ "$(el_masters | tr -d '\n')" = "$m" ] || fail "after the cut: masters $(el_masters | tr '\n' ' ')"
[ "$(promotions)" = "$p0" ] || fail "a new master was elected during the cut"
ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=1
sleep 1

qfail() { grep -cE 'event=health component=qdev:infra state=failed stage=(reachable|parses)' "$EL_TMP/$m.log"; }
qrec() { grep -cE 'event=health component=qdev:infra state=recovered' "$EL_TMP/$m.log"; }
qfail0=$(qfail) qrec0=$(qrec)
kill -STOP "$EL_TGTD" # quorum device lost, network intact: leases through the slave's acks
sleep 3
kill -CONT "$EL_TGTD"
[ "$(el_masters | tr -d '\n')" = "$m" ] || fail "quorum device lost: masters $(el_masters | tr '\n' ' ')"
[ "$(promotions)" = "$p0" ] || fail "a new master was elected while the quorum device was lost"
grep -E 'event=role .*kind="?infra.* reason="?lease-lapsed' "$EL_TMP/$m.log" >/dev/null &&
	fail "$m lost its lease although the slave acknowledged its heartbeats"
el_wait_qdev "$m"
# The health engine saw the device stop answering and come back (one episode, one summary).
[ "$(qfail)" -gt "$qfail0" ] || fail "$m: no health alert for the quorum device"
for ((i = 0; i < 50; i++)); do
	[ "$(qrec)" -gt "$qrec0" ] && break
	sleep 0.1
done
[ "$(qrec)" -gt "$qrec0" ] || fail "$m: the quorum device's health did not recover"
sleep 0.5

ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=0 # both: cut again

t0=$(now_us)
kill -STOP "$EL_TGTD" # the quorum device stops answering everyone
for ((i = 0; i < 40; i++)); do
	[ "$(el_role "$m")" = master ] || break
	sleep 0.05
done
[ "$(el_role "$m")" != master ] || fail "$m still master 2 s after losing both channels"
grep -E 'event=role .*kind="?infra.* reason="?lease-lapsed' "$EL_TMP/$m.log" >/dev/null ||
	fail "$m stepped down without reason=lease-lapsed"
t1=$(grep -E 'event=role .*kind="?infra.*lease-lapsed' "$EL_TMP/$m.log" | tail -n 1 |
	sed -n 's/.*rt_us="\{0,1\}\([0-9]*\).*/\1/p')
echo "stepped down $(((t1 - t0) / 1000)) ms after the quorum device stopped (lease 500 ms)"
sleep 3
[ -z "$(el_masters)" ] || fail "a master without any channel: $(el_masters | tr '\n' ' ')"
p1=$(promotions)

kill -CONT "$EL_TGTD"
ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=1
m2=$(el_wait_master 10)
echo "master again: $m2"
sleep 2
[ "$(el_masters | wc -l)" = 1 ] || fail "not exactly one master: $(el_masters | tr '\n' ' ')"
[ "$p1" = "$((p0))" ] || fail "promotions while both channels were gone"
el_check_timelines
echo "ok"
