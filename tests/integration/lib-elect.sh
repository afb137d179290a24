# Helpers for the election tests (sourced). Four agents of the rig config, each in its
# own network namespace with a veth to a bridge namespace:
#   bridge netns: bra 10.78.1.1/24 (compartment a), brb 10.78.2.1/24 (compartment b),
#                 IP forwarding between them (turning it off cuts the compartments),
#                 tgtd serving the quorum LU on 10.78.1.1:3261 and 10.78.2.1:3261.
#   a1 10.78.1.11  a2 10.78.1.12  b1 10.78.2.11  b2 10.78.2.12
# A test may set EL_NODES (and EL_IP) before el_setup for more compartments: compartment x
# gets bridge brx, 10.78.${EL_SUBNET[x]}.1/24 and a tgtd portal there; EL_LUNS (default 2)
# logical units. EL_GROUP (default EL_NODES) is the pair that el_masters, el_wait_master and
# the timeline checks look at.
# Role hooks append "<rt_us> <node> promote|demote <kind>" to $EL_TMP/hooks.log when they
# start, and the demote hook "<rt_us> <node> demote-end <kind>" when it ends; it sleeps
# first when $EL_TMP/demote-sleep holds a number of seconds.
# Every event=role line carries rt_us= (CLOCK_REALTIME, shared by all processes here).
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
EL_TMP=$(mktemp -d /tmp/compartd-elect.XXXXXX)
EL_ID=$(($$ % 100000))
EL_BR=cel$EL_ID-br
EL_CTL=$((24000 + $$ % 1000))
EL_NODES="a1 a2 b1 b2"
declare -A EL_PID=()
declare -A EL_IP=([a1]=10.78.1.11 [a2]=10.78.1.12 [b1]=10.78.2.11 [b2]=10.78.2.12)
declare -A EL_SUBNET=([a]=1 [b]=2 [c]=3 [d]=4)
EL_LUNS=2
declare -A EL_KILLED=() # node -> rt_us when it was killed
EL_TGTD=

el_ns() { echo "cel$EL_ID-$1"; }
now_us() { date +%s%6N; }

el_cleanup() {
	for n in "${!EL_WD_PID[@]}"; do
		kill "${EL_WD_PID[$n]}" 2>/dev/null
	done
	for n in "${!EL_PID[@]}"; do
		kill -9 "${EL_PID[$n]}" 2>/dev/null
	done
	for n in "${!EL_PID[@]}"; do
		wait "${EL_PID[$n]}" 2>/dev/null
	done
	if [ -n "$EL_TGTD" ]; then
		kill -CONT "$EL_TGTD" 2>/dev/null
		kill -9 "$EL_TGTD" 2>/dev/null
		wait "$EL_TGTD" 2>/dev/null
	fi
	for n in $EL_NODES; do
		ip netns del "$(el_ns "$n")" 2>/dev/null
	done
	ip netns del "$EL_BR" 2>/dev/null
	[ -n "${EL_KEEP:-}" ] || rm -rf "$EL_TMP"
}
trap el_cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$EL_TMP"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f"
		grep -E "event=role|event=hook|qdev|error|warn|election" "$f" | tail -n 25
	done
	exit 1
}

# el_cannot_run WHY: a test that cannot run here skips (exit 77), but fails loudly under
# CI=true, where every test must run.
el_cannot_run() {
	case "${CI:-}" in
	true | TRUE | True | 1 | yes)
		echo "FAIL: cannot run under CI=true: $*"
		exit 1
		;;
	esac
	echo "$*"
	exit 77
}

el_skip_unless_possible() {
	[ "$(id -u)" = 0 ] || el_cannot_run "needs root for network namespaces"
	command -v tgtd >/dev/null || el_cannot_run "tgtd not installed"
	ip netns add "cel$EL_ID-probe" 2>/dev/null || el_cannot_run "cannot create network namespaces"
	ip netns del "cel$EL_ID-probe"
}

# The compartments of EL_NODES (first letter of each name), once each.
el_sides() { for n in $EL_NODES; do echo "${n:0:1}"; done | sort -u; }

el_setup_net() {
	local br=$EL_BR n ns side
	ip netns add "$br"
	ip -n "$br" link set lo up
	for side in $(el_sides); do
		ip -n "$br" link add name "br$side" type bridge
		ip -n "$br" addr add "10.78.${EL_SUBNET[$side]}.1/24" dev "br$side"
		ip -n "$br" link set dev "br$side" up
	done
	ip netns exec "$br" sysctl -qw net.ipv4.ip_forward=1
	for n in $EL_NODES; do
		ns=$(el_ns "$n")
		side=${n:0:1}
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip -n "$br" link add "h-$n" type veth peer name eth0 netns "$ns"
		ip -n "$br" link set "h-$n" master "br$side" up
		ip -n "$ns" addr add "${EL_IP[$n]}/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" route add default via "10.78.${EL_SUBNET[$side]}.1"
	done
}

el_setup_tgtd() {
	truncate -s 4M "$EL_TMP/quorum-infra.img" "$EL_TMP/quorum-admin.img"
	ip netns exec "$EL_BR" tgtd -f -C "$EL_CTL" --iscsi portal=10.78.1.1:3261 \
		>"$EL_TMP/tgtd.out" 2>&1 &
	EL_TGTD=$!
	local adm="ip netns exec $EL_BR tgtadm -C $EL_CTL --lld iscsi" i side
	for ((i = 0; i < 50; i++)); do
		$adm --mode target --op show >/dev/null 2>&1 && break
		sleep 0.1
	done
	for side in $(el_sides); do
		[ "$side" = a ] && continue
		$adm --mode portal --op new --param "portal=10.78.${EL_SUBNET[$side]}.1:3261" ||
			fail "tgtd: portal of compartment $side"
	done
	$adm --mode target --op new --tid 1 --targetname iqn.2026-11.org.compartd.rig:quorum ||
		fail "tgtd: target"
	$adm --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$EL_TMP/quorum-infra.img"
	$adm --mode logicalunit --op new --tid 1 --lun 2 --backing-store "$EL_TMP/quorum-admin.img"
	for ((i = 3; i <= EL_LUNS; i++)); do
		truncate -s 4M "$EL_TMP/quorum-lun$i.img"
		$adm --mode logicalunit --op new --tid 1 --lun "$i" --backing-store "$EL_TMP/quorum-lun$i.img" ||
			fail "tgtd: lun $i"
	done
	$adm --mode target --op bind --tid 1 --initiator-address ALL || fail "tgtd: bind"
}

# el_setup [sed expression for the config]
el_setup() {
	el_skip_unless_possible
	el_setup_net
	el_setup_tgtd
	mkdir -p "$EL_TMP/hooks"
	for h in promote demote start-infra start-mgmt; do
		cat >"$EL_TMP/hooks/$h" <<EOS
#!/bin/sh
echo "\$(date +%s%6N) \$COMPARTD_NODE $h \$1" >>"$EL_TMP/hooks.log"
EOS
		chmod +x "$EL_TMP/hooks/$h"
	done
	cat >>"$EL_TMP/hooks/demote" <<EOS
[ -f "$EL_TMP/demote-sleep" ] && sleep "\$(cat "$EL_TMP/demote-sleep")"
echo "\$(date +%s%6N) \$COMPARTD_NODE demote-end \$1" >>"$EL_TMP/hooks.log"
EOS
	sed -e "s|/etc/compartd/hooks/|$EL_TMP/hooks/|" \
		-e "s|^key_file = .*|key_file = $REPO/images/rig/cluster.key\nrules = $REPO/rules/boot.rules|" \
		-e "s|^handshake_window = .*|handshake_window = 1s|" -e "/^external = /d" \
		-e "s|^watchdog = .*|watchdog = none|" \
		-e "s|10\.77\.1\.100:3261|10.78.1.1:3261|; s|10\.77\.2\.100:3261|10.78.2.1:3261|" \
		-e "s|10\.77\.1\.1\([12]\)|10.78.1.1\1|g; s|10\.77\.2\.1\([12]\)|10.78.2.1\1|g" \
		${1:+-e "$1"} "$REPO/images/rig/cluster.conf" >"$EL_TMP/cluster.conf"
}

# el_start NODE: a node reads $EL_TMP/NODE.conf when a test made one, else cluster.conf;
# it keeps its journal in $EL_TMP/NODE.state when a test made that file.
el_start() {
	local n=$1 conf=$EL_TMP/cluster.conf state=()
	[ -f "$EL_TMP/$n.conf" ] && conf=$EL_TMP/$n.conf
	[ -f "$EL_TMP/$n.state" ] && state=(--state "$EL_TMP/$n.state")
	mkdir -p "$EL_TMP/$n"
	ip netns exec "$(el_ns "$n")" "$BUILD/compartd" run --foreground \
		--config "$conf" --node "$n" --state-dir "$EL_TMP/$n" "${state[@]}" \
		>>"$EL_TMP/$n.log" 2>&1 &
	EL_PID[$n]=$!
	echo "$!" >"$EL_TMP/$n.pid"
	unset "EL_KILLED[$n]"
}

# el_kill NODE: kill -9; the "killed" line (the end of its acting, for the timelines)
# carries the time the kill was sent, not the time the shell got round to reaping it
# (a second later on a loaded machine, which made a takeover look like an overlap).
el_kill() {
	local n=$1
	kill -9 "${EL_PID[$n]}" 2>/dev/null
	EL_KILLED[$n]=$(now_us)
	wait "${EL_PID[$n]}" 2>/dev/null
	unset "EL_PID[$n]"
	rm -f "$EL_TMP/$n.pid"
	echo "${EL_KILLED[$n]} $n killed" >>"$EL_TMP/$n.log"
}

# Fencing without arming the host's watchdog (SPEC §7 Fencing): el_wd_setup gives every
# node a plain file as its watchdog ($EL_TMP/NODE.conf) and starts, per node, a process
# playing the device: a node whose file has not grown (no keep-alive) for
# EL_WD_TIMEOUT_MS is reset (kill -9, as a hardware reset would), noted in
# $EL_TMP/resets and as "killed" in its log at the instant a device would have fired:
# the file's last change (or the agent's start) + the timeout, however late this loop
# noticed it. A file ending in the magic 'V' is disarmed.
EL_WD_TIMEOUT_MS=1000
declare -A EL_WD_PID=()
el_wd_monitor() {
	local n=$1 pid seen= start=0 mt now t
	while :; do
		pid=$(cat "$EL_TMP/$n.pid" 2>/dev/null)
		now=$(now_us)
		if [ -z "$pid" ]; then
			seen=
		else
			[ "$pid" = "$seen" ] || { seen=$pid start=$now; }
			mt=$(stat -c %.6Y "$EL_TMP/wd-$n" 2>/dev/null || echo 0.0)
			mt=${mt/./}
			t=$((mt > start ? mt : start))
			if ((now - t > EL_WD_TIMEOUT_MS * 1000)) && [ "$(tail -c 1 "$EL_TMP/wd-$n")" != V ] &&
				kill -0 "$pid" 2>/dev/null; then
				t=$((t + EL_WD_TIMEOUT_MS * 1000))
				kill -9 "$pid"
				echo "$t $n watchdog-reset" >>"$EL_TMP/resets"
				rm -f "$EL_TMP/$n.pid"
				echo "$t $n killed" >>"$EL_TMP/$n.log"
			fi
		fi
		sleep 0.02
	done
}
el_wd_setup() {
	local n
	for n in $EL_NODES; do
		: >"$EL_TMP/wd-$n"
		sed "s|^watchdog = none|watchdog = $EL_TMP/wd-$n|" "$EL_TMP/cluster.conf" >"$EL_TMP/$n.conf"
		el_wd_monitor "$n" &
		EL_WD_PID[$n]=$!
	done
}
# el_wd_off: back to watchdog = none, the monitors stopped.
el_wd_off() {
	local n
	for n in "${!EL_WD_PID[@]}"; do
		kill "${EL_WD_PID[$n]}" 2>/dev/null
		wait "${EL_WD_PID[$n]}" 2>/dev/null
		unset "EL_WD_PID[$n]"
		rm -f "$EL_TMP/$n.conf"
	done
}
# el_wd_reset_of NODE: rt_us of NODE's last watchdog reset, or nothing.
el_wd_reset_of() { awk -v n="$1" '$2 == n { t = $1 } END { if (t) print t }' "$EL_TMP/resets" 2>/dev/null; }

# The current role of node n (kind infra) from its last event=role line.
el_role() {
	grep -E 'event=role .*kind="?infra' "$EL_TMP/$1.log" 2>/dev/null | tail -n 1 |
		sed -n 's/.* role="\{0,1\}\([a-z]*\).*/\1/p'
}

# Prints the nodes of EL_GROUP whose last infra role is master (killed nodes excluded).
el_masters() {
	local n
	for n in ${EL_GROUP:-$EL_NODES}; do
		[ -n "${EL_PID[$n]:-}" ] || continue
		[ "$(el_role "$n")" = master ] && echo "$n"
	done
}

# el_wait_master [SECONDS] [EXCEPT]: waits until exactly one live node is master.
el_wait_master() {
	local secs=${1:-15} except=${2:-} i m
	for ((i = 0; i < secs * 20; i++)); do
		m=$(el_masters | grep -v "^${except:-NONE}\$" | tr '\n' ' ')
		if [ "$(echo $m | wc -w)" = 1 ]; then
			echo $m
			return 0
		fi
		sleep 0.05
	done
	fail "no single master after ${secs}s (masters: $(el_masters | tr '\n' ' '))"
}

# rt_us of the first event=role line of node n with role=master after time t.
el_master_since() {
	local n=$1 t=$2
	grep -E 'event=role .*kind="?infra.* role="?master' "$EL_TMP/$n.log" |
		sed -n 's/.*rt_us="\{0,1\}\([0-9]*\).*/\1/p' | awk -v t="$t" '$1 > t { print; exit }'
}

# el_check_timelines [KIND]: checks the master intervals of KIND (default infra) of every
# node of EL_GROUP (from role=master to its next role line, or to when it was killed, or
# now) for overlap. Prints the intervals; fails on overlap.
el_check_timelines() {
	local end n kind=${1:-infra}
	end=$(now_us)
	for n in ${EL_GROUP:-$EL_NODES}; do
		[ -f "$EL_TMP/$n.log" ] || continue
		awk -v node="$n" -v end="$end" -v kind="$kind" '
			/event=role / && $0 ~ ("kind=\"?" kind "[\" ]") {
				match($0, /rt_us="?[0-9]+/); t = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", t)
				match($0, / role="?[a-z]+/); r = substr($0, RSTART, RLENGTH); gsub(/.*role="?/, "", r)
				if (inm) { print node, start, t; inm = 0 }
				if (r == "master") { inm = 1; start = t }
			}
			/ killed$/ { if (inm) { print node, start, $1; inm = 0 } }
			END { if (inm) print node, start, end }' "$EL_TMP/$n.log"
	done >"$EL_TMP/intervals"
	sort -k2,2n "$EL_TMP/intervals" | awk '
		{ n[NR] = $1; s[NR] = $2; e[NR] = $3 }
		END {
			bad = 0
			for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++)
				if (s[j] < e[i] && s[i] < e[j]) {
					printf "OVERLAP: %s [%d, %d] and %s [%d, %d]\n", n[i], s[i], e[i], n[j], s[j], e[j]
					bad = 1
				}
			exit bad
		}' || fail "two $kind masters at once"
	echo "$kind master intervals (rt_us):"
	sort -k2,2n "$EL_TMP/intervals" | sed 's/^/  /'
}

# el_check_hook_timelines [KIND]: checks the KIND (default infra) instances' acting
# intervals of EL_GROUP from the hooks (promote hook start to demote hook end, or the
# node's kill, or now) for overlap: what "acting as master" means (SPEC §7). Prints them;
# fails on overlap.
el_check_hook_timelines() {
	local end n kind=${1:-infra}
	end=$(now_us)
	for n in ${EL_GROUP:-$EL_NODES}; do
		{
			grep -E "^[0-9]+ $n (promote|demote-end) $kind\$" "$EL_TMP/hooks.log" 2>/dev/null
			grep -E '^[0-9]+ [a-z0-9]+ killed$' "$EL_TMP/$n.log" 2>/dev/null
		} | sort -n | awk -v node="$n" -v end="$end" '
			$3 == "promote" { if (!inm) { inm = 1; start = $1 } next }
			$3 == "demote-end" || $3 == "killed" { if (inm) { print node, start, $1; inm = 0 } }
			END { if (inm) print node, start, end }'
	done >"$EL_TMP/hook-intervals"
	sort -k2,2n "$EL_TMP/hook-intervals" | awk '
		{ n[NR] = $1; s[NR] = $2; e[NR] = $3 }
		END {
			bad = 0
			for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++)
				if (s[j] < e[i] && s[i] < e[j]) {
					printf "OVERLAP: %s [%d, %d] and %s [%d, %d]\n", n[i], s[i], e[i], n[j], s[j], e[j]
					bad = 1
				}
			exit bad
		}' || fail "two instances acting as master at once (hook start to hook end)"
	echo "acting intervals, promote hook start to demote hook end (rt_us):"
	sort -k2,2n "$EL_TMP/hook-intervals" | sed 's/^/  /'
}

# el_cut_qdev NODE / el_heal_qdev NODE: NODE loses (regains) the quorum LU, nothing else:
# blackhole routes to both portals (the bridge's addresses; forwarding through them as a
# gateway is unaffected).
el_cut_qdev() {
	ip -n "$(el_ns "$1")" route add blackhole 10.78.1.1/32
	ip -n "$(el_ns "$1")" route add blackhole 10.78.2.1/32
}
el_heal_qdev() {
	ip -n "$(el_ns "$1")" route del blackhole 10.78.1.1/32
	ip -n "$(el_ns "$1")" route del blackhole 10.78.2.1/32
}

# el_cut_link FROM TO / el_heal_link FROM TO: datagrams FROM -> TO are lost (one direction).
el_cut_link() { ip -n "$(el_ns "$1")" route add blackhole "${EL_IP[$2]}/32"; }
el_heal_link() { ip -n "$(el_ns "$1")" route del blackhole "${EL_IP[$2]}/32"; }

# el_other_candidate M: the best node of the other compartment of M's pair (b1 or a1;
# d1 or c1).
el_other_candidate() { case $1 in a*) echo b1 ;; b*) echo a1 ;; c*) echo d1 ;; *) echo c1 ;; esac; }
el_mate() { case $1 in *1) echo "${1%1}2" ;; *) echo "${1%2}1" ;; esac; }

ctl() { "$BUILD/compartctl" --socket "$EL_TMP/$1/console.sock" "${@:2}"; }

# el_wait_complete NODE [SECONDS]: waits until master NODE's slave answers (not degraded).
el_wait_complete() {
	local n=$1 secs=${2:-10} i
	for ((i = 0; i < secs * 20; i++)); do
		grep -q 'election infra: pair complete' "$EL_TMP/$n.log" && return 0
		sleep 0.05
	done
	fail "$n: the other compartment never answered as slave"
}

# el_wait_qdev NODE [SECONDS]: waits until NODE's infra quorum session is up again.
el_wait_qdev() {
	local n=$1 secs=${2:-10} i
	for ((i = 0; i < secs * 10; i++)); do
		"$BUILD/compartctl" --socket "$EL_TMP/$n/console.sock" role 2>/dev/null |
			grep -A1 '^infra' | grep -q 'quorum device 10\.78\.' && return 0
		sleep 0.1
	done
	fail "$n: quorum device session not back after ${secs}s"
}
