#!/usr/bin/env bash
# Failover benchmark (SPEC §7): four nodes a1 a2 | b1 b2 in network namespaces (the
# election tests' setup: one netns per node, veths to a bridge netns that routes between
# the compartments and serves the quorum LU with tgtd).
#
#  1. failover time: kill -9 the master, time until the new master's event=role (ours)
#     or its notify MASTER (keepalived, VRRPv3, unicast peers, the same advert interval as
#     our heartbeat_interval, 200 ms, nopreempt like us); median of RUNS runs each;
#     ours again with fencing on (failover_fenced_s): each node's watchdog is a file and
#     lib-elect.sh's el_wd_setup plays the device (the host's watchdog is never armed);
#  2. dual-master intervals under a compartment partition (PARTITIONS cuts of CUT_S
#     seconds each, the quorum device reachable from both sides): how many times two
#     nodes were master at once;
#  3. the dangerous cases (issue 13), each once per side, dual-master intervals counted
#     (ours with fencing on): an asymmetric cut (the master and the other compartment's
#     candidate lose the quorum LU, that candidate's mate loses the network to both), the
#     master paused 3 s (SIGSTOP of the agent / of keepalived's VRRP process), the quorum
#     LU lost by the master for 4 s (keepalived has none: the same time, no fault).
# Last line: result: failover_s=… failover_keepalived_s=… ratio=… dual_master_ours=…
#            dual_master_keepalived=… failover_fenced_s=… dual_master_adversarial_ours=…
#            dual_master_adversarial_keepalived=…
set -u
RUNS=${RUNS:-5}
PARTITIONS=${PARTITIONS:-3}
CUT_S=${CUT_S:-4}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-$REPO/build}
source "$REPO/tests/integration/lib-elect.sh"
command -v keepalived >/dev/null || { echo "keepalived not installed"; exit 77; }
declare -A KA_PID=()
declare -A PRIO=([a1]=200 [a2]=100 [b1]=150 [b2]=50)

bench_cleanup() {
	ka_stop_all
	el_cleanup
}
trap bench_cleanup EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- ours ----

ours_start_all() {
	local n
	for n in $EL_NODES; do
		: >"$EL_TMP/$n.log"
		el_start "$n"
	done
}

ours_stop_all() {
	local n
	for n in $EL_NODES; do
		[ -n "${EL_PID[$n]:-}" ] && el_kill "$n"
	done
	true
}

ours_failover_run() {
	local m want new t0 t1
	ours_start_all
	m=$(el_wait_master 20)
	el_wait_complete "$m" 10
	sleep 1
	t0=$(now_us)
	el_kill "$m"
	new=$(el_wait_master 10 "$m")
	t1=$(el_master_since "$new" "$t0")
	el_check_timelines >/dev/null
	ours_stop_all
	echo "$t0 $t1" | awk '{ printf "%.3f\n", ($2 - $1) / 1e6 }'
}

# Counts overlapping master intervals in the timelines written so far.
count_overlaps() {
	sort -k2,2n "$1" | awk '
		{ n[NR] = $1; s[NR] = $2; e[NR] = $3 }
		END { c = 0; for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++)
			if (n[i] != n[j] && s[j] < e[i] && s[i] < e[j]) c++; print c }'
}

ours_partition_run() {
	local m i
	ours_start_all
	m=$(el_wait_master 20)
	el_wait_complete "$m" 10
	for ((i = 0; i < PARTITIONS; i++)); do
		ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=0
		sleep "$CUT_S"
		ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=1
		sleep 2
	done
	ours_stop_all
	# el_check_timelines fails on overlap; recompute the intervals to count instead
	( el_check_timelines >/dev/null 2>&1 ) || true
	count_overlaps "$EL_TMP/intervals"
}

# One dangerous case on our side (fencing on), the dual-master intervals it left.
ours_adversarial_run() {
	local kind=$1 m s x n
	: >"$EL_TMP/intervals"
	ours_start_all
	m=$(el_wait_master 20)
	el_wait_complete "$m" 10
	s=$(el_other_candidate "$m")
	x=$(el_mate "$s")
	sleep 1
	case $kind in
	asymmetric)
		el_cut_qdev "$m"
		el_cut_qdev "$s"
		for n in "$m" "$s"; do el_cut_link "$x" "$n"; el_cut_link "$n" "$x"; done
		sleep "$CUT_S"
		for n in "$m" "$s"; do el_heal_link "$x" "$n"; el_heal_link "$n" "$x"; el_heal_qdev "$n"; done
		;;
	pause)
		kill -STOP "${EL_PID[$m]}"
		sleep 3
		kill -CONT "${EL_PID[$m]}" 2>/dev/null
		;;
	qdev)
		el_cut_qdev "$m"
		sleep "$CUT_S"
		el_heal_qdev "$m"
		;;
	esac
	sleep 2
	ours_stop_all
	( el_check_timelines >/dev/null 2>&1 ) || true
	count_overlaps "$EL_TMP/intervals"
}

# ---- keepalived ----

ka_conf() {
	local n=$1 p peers=""
	for p in $EL_NODES; do
		[ "$p" = "$n" ] || peers+="        ${EL_IP[$p]}"$'\n'
	done
	cat >"$EL_TMP/ka-$n.conf" <<EOF
global_defs {
    router_id $n
    vrrp_version 3
    script_user root
    enable_script_security
}
vrrp_instance infra {
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 51
    priority ${PRIO[$n]}
    advert_int 0.2
    unicast_src_ip ${EL_IP[$n]}
    unicast_peer {
$peers    }
    virtual_ipaddress {
        10.78.9.1/32 dev eth0
    }
    notify_master "$EL_TMP/ka-notify $n MASTER"
    notify_backup "$EL_TMP/ka-notify $n BACKUP"
    notify_fault "$EL_TMP/ka-notify $n FAULT"
    notify_stop "$EL_TMP/ka-notify $n STOP"
}
EOF
}

ka_start() {
	local n=$1
	ip netns exec "$(el_ns "$n")" keepalived -f "$EL_TMP/ka-$n.conf" -n -l -D -P -G \
		-p "$EL_TMP/ka-$n.pid" -r "$EL_TMP/ka-$n.vrrp.pid" -c "$EL_TMP/ka-$n.chk.pid" \
		>>"$EL_TMP/ka-$n.log" 2>&1 &
	KA_PID[$n]=$!
}

ka_kill() {
	local n=$1 v
	v=$(cat "$EL_TMP/ka-$n.vrrp.pid" 2>/dev/null)
	kill -9 "${KA_PID[$n]}" $v 2>/dev/null
	wait "${KA_PID[$n]}" 2>/dev/null
	unset "KA_PID[$n]"
	echo "$(now_us) $n KILLED" >>"$EL_TMP/ka-events"
}

ka_stop_all() {
	local n
	for n in "${!KA_PID[@]}"; do
		ka_kill "$n"
	done
	true
}

ka_state() { awk -v n="$1" '$2 == n { s = $3 } END { print s }' "$EL_TMP/ka-events"; }

ka_masters() {
	local n
	for n in $EL_NODES; do
		[ -n "${KA_PID[$n]:-}" ] && [ "$(ka_state "$n")" = MASTER ] && echo "$n"
	done
	true
}

ka_wait_master() {
	local except=${1:-NONE} i m
	for ((i = 0; i < 400; i++)); do
		m=$(ka_masters | grep -v "^$except\$" | tr '\n' ' ')
		[ "$(echo $m | wc -w)" = 1 ] && { echo $m; return 0; }
		sleep 0.05
	done
	fail "keepalived: no single master"
}

ka_setup() {
	cat >"$EL_TMP/ka-notify" <<EOF
#!/bin/sh
echo "\$(date +%s%6N) \$1 \$2" >>"$EL_TMP/ka-events"
EOF
	chmod 755 "$EL_TMP/ka-notify"
	chmod 755 "$EL_TMP"
	local n
	for n in $EL_NODES; do ka_conf "$n"; done
}

ka_failover_run() {
	local m new t0 t1 n
	: >"$EL_TMP/ka-events"
	for n in $EL_NODES; do ka_start "$n"; done
	m=$(ka_wait_master)
	sleep 1.5
	t0=$(now_us)
	ka_kill "$m"
	new=$(ka_wait_master "$m")
	t1=$(awk -v n="$new" -v t="$t0" '$2 == n && $3 == "MASTER" && $1 > t { print $1; exit }' \
		"$EL_TMP/ka-events")
	ka_stop_all
	echo "$t0 $t1" | awk '{ printf "%.3f\n", ($2 - $1) / 1e6 }'
}

# Intervals "node start end" from the notify log (MASTER until the next state line).
ka_intervals() {
	local end
	end=$(now_us)
	awk -v end="$end" '
		{ if ($2 in st) { print $2, st[$2], $1; delete st[$2] } if ($3 == "MASTER") st[$2] = $1 }
		END { for (n in st) print n, st[n], end }' "$EL_TMP/ka-events"
}

ka_partition_run() {
	local m i n
	: >"$EL_TMP/ka-events"
	for n in $EL_NODES; do ka_start "$n"; done
	m=$(ka_wait_master)
	sleep 1.5
	for ((i = 0; i < PARTITIONS; i++)); do
		ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=0
		sleep "$CUT_S"
		ip netns exec "$EL_BR" sysctl -qw net.ipv4.ip_forward=1
		sleep 2
	done
	ka_intervals >"$EL_TMP/ka-intervals"
	ka_stop_all
	count_overlaps "$EL_TMP/ka-intervals"
}

ka_adversarial_run() {
	local kind=$1 m s x n v
	: >"$EL_TMP/ka-events"
	for n in $EL_NODES; do ka_start "$n"; done
	m=$(ka_wait_master)
	s=$(el_other_candidate "$m")
	x=$(el_mate "$s")
	sleep 1.5
	case $kind in
	asymmetric) # no quorum LU: the network cuts alone
		for n in "$m" "$s"; do el_cut_link "$x" "$n"; el_cut_link "$n" "$x"; done
		sleep "$CUT_S"
		for n in "$m" "$s"; do el_heal_link "$x" "$n"; el_heal_link "$n" "$x"; done
		;;
	pause)
		v=$(cat "$EL_TMP/ka-$m.vrrp.pid" 2>/dev/null)
		kill -STOP $v
		sleep 3
		kill -CONT $v
		;;
	qdev) sleep "$CUT_S" ;;
	esac
	sleep 2
	ka_intervals >"$EL_TMP/ka-intervals"
	ka_stop_all
	count_overlaps "$EL_TMP/ka-intervals"
}

# ---- main ----

el_setup
ka_setup
ours=() theirs=()
for ((r = 1; r <= RUNS; r++)); do
	o=$(ours_failover_run)
	k=$(ka_failover_run)
	echo "run $r: compartd ${o}s   keepalived ${k}s"
	ours+=("$o")
	theirs+=("$k")
done
fo=$(printf '%s\n' "${ours[@]}" | median)
fk=$(printf '%s\n' "${theirs[@]}" | median)
do_=$(ours_partition_run)
dk=$(ka_partition_run)
el_wd_setup
fenced=()
for ((r = 1; r <= RUNS; r++)); do
	o=$(ours_failover_run)
	echo "run $r: compartd with fencing ${o}s"
	fenced+=("$o")
done
ff=$(printf '%s\n' "${fenced[@]}" | median)
ao=0 ak=0
for kind in asymmetric pause qdev; do
	o=$(ours_adversarial_run "$kind")
	k=$(ka_adversarial_run "$kind")
	echo "$kind: dual-master intervals compartd $o, keepalived $k"
	ao=$((ao + o)) ak=$((ak + k))
done
el_wd_off
ratio=$(awk -v a="$fo" -v b="$fk" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
printf '%-28s %12s %12s\n' "" compartd keepalived
printf '%-28s %12s %12s\n' "failover median (s)" "$fo" "$fk"
printf '%-28s %12s %12s\n' "dual-master intervals ($PARTITIONS cuts)" "$do_" "$dk"
printf '%-28s %12s %12s\n' "failover, fencing on (s)" "$ff" "-"
printf '%-28s %12s %12s\n' "dual-master, 3 dangerous" "$ao" "$ak"
echo "result: failover_s=$fo failover_keepalived_s=$fk ratio=$ratio dual_master_ours=$do_" \
	"dual_master_keepalived=$dk failover_fenced_s=$ff dual_master_adversarial_ours=$ao" \
	"dual_master_adversarial_keepalived=$ak"
