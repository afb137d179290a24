#!/usr/bin/env bash
# timeout: 900
# SPEC §7 Fencing in the QEMU rig: every node holds a real watchdog (softdog in the guest
# kernel; docs/rig.md says why not i6300esb) with the default timeout of 1 s, opened by the
# agent as PID 1. The infra master is made to hang: its demote hook never ends (the rig's
# hook hangs while /run/rig-demote-hang exists) and the operator demotes it. It keeps the
# token while the hook runs (it still acts as master), and after hook_timeout (10 s here,
# compartd.timeouts.hook_timeout on the kernel command line) the agent kills the hook and
# fences: it stops petting, and the watchdog resets the VM. Checked on one clock, the host's (console lines stamped as they arrive, QMP
# events stamped by QEMU):
#   - every node shows its armed watchdog in `status`, and the guest's watchdog runs with
#     a 1 s timeout;
#   - the master's console says when its keep-alives stopped; QEMU reports the guest's
#     reset (QMP RESET) within that moment + the watchdog timeout (+ slack for TCG);
#   - another node promotes only after the reset could have happened (the keep-alives'
#     stop + watchdog_timeout) and after the reset itself;
#   - at no instant two nodes act as master of a kind (from `event=role … role=master` to
#     the end of the demote hook, or the node's reset);
#   - the reset node boots again and comes back as slave.
# Also: SIGSTOP cannot pause the agent in the rig (it is PID 1; the kernel does not
# deliver SIGSTOP to init from its own namespace), so the hang is the demote hook's.
# Figures printed: hang to reset, reset-possible to the other's promotion.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
fail() {
	echo "FAIL: $*"
	exit 1
}
WD_S=1 # watchdog_timeout in images/rig/cluster.conf (the SPEC's default)
HOOK_S=${RIG_HOOK_TIMEOUT_S:-10}
NODES=(a1 a2 b1 b2)
t_start=$(date +%s.%N)

for n in "${NODES[@]}"; do
	rig_node_start "$n" --reboot --append "compartd.timeouts.hook_timeout=${HOOK_S}s"
done
rig_wait_all 'event=ready ' 300 || fail "not every node became ready"

# infra_master: the node whose last infra role line says master (exactly one, else none)
last_role() {
	rig_events "$1" | grep "^event=role .*kind=$2 node=$1 " | tail -1 | sed -n 's/.* role=\([^ ]*\).*/\1/p'
}
infra_master() {
	local n masters=()
	for n in "${NODES[@]}"; do
		[ "$(last_role "$n" infra)" = master ] && masters+=("$n")
	done
	[ ${#masters[@]} -eq 1 ] && echo "${masters[0]}"
}
# console_cmd NODE CMD REGEX TIMEOUT: types CMD, waits for a line matching REGEX.
console_cmd() {
	rig_mark "$1"
	rig_send "$1" "$2"
	rig_wait_for "$1" "$3" "$4"
}

# A loaded host can stall a TCG guest past its 1 s watchdog: such a node is reset (fencing
# doing its job) and boots again. Before the hang the cluster must be settled: one infra
# master whose slave answers, and no reset anywhere for QUIET_S seconds.
QUIET_S=${RIG_QUIET_S:-20}
last_reset() {
	cat "$RIG_DIR"/*.events.log 2>/dev/null | awk '$2 == "RESET" && $1 > t { t = $1 } END { print t + 0 }'
}
settled() {
	m=$(infra_master) || return 1
	line=$(console_cmd "$m" role '^infra +pair p1: ' 20) || return 1
	! grep -q DEGRADED <<<"$line" || return 1
	awk -v r="$(last_reset)" -v now="$(date +%s.%N)" -v q="$QUIET_S" 'BEGIN { exit !(now - r > q) }'
}
m=
for i in $(seq 60); do
	settled && break
	[ "$i" -lt 60 ] || fail "not settled (one master, pair complete, no reset for ${QUIET_S}s) within 5 min"
	sleep 5
done
echo "infra master: $m ($line); resets before the test (host load): $(cat "$RIG_DIR"/*.events.log | grep -c ' RESET ' || true)"

# Every node is fenced by its own watchdog, 1 s, as status shows.
for n in "${NODES[@]}"; do
	console_cmd "$n" status '^fencing +' 20 >"$RIG_DIR/fencing-$n" || fail "$n: status"
	grep -Eq '^fencing +watchdog /dev/watchdog \(1000 ms\)$' "$RIG_DIR/fencing-$n" ||
		fail "$n: status does not show the armed watchdog: $(cat "$RIG_DIR/fencing-$n")"
done
wd=$(rig_sh "$m" 'for f in identity timeout state; do echo "$f=$(cat /sys/class/watchdog/watchdog0/$f)"; done')
echo "$m's watchdog: $(echo $wd)"
# (the attributes exist with CONFIG_WATCHDOG_SYSFS; status above says the same from the agent)
if grep -q '^timeout=.' <<<"$wd"; then
	grep -q '^timeout=1$' <<<"$wd" || fail "$m: the watchdog's timeout is not 1 s: $wd"
	grep -q '^state=active$' <<<"$wd" || fail "$m: the watchdog is not active: $wd"
fi

# SIGSTOP of the agent: it is PID 1, which the kernel shields from it; it keeps answering.
rig_sh "$m" 'kill -STOP 1; echo sent' | grep -q sent || fail "$m: the rescue shell did not run kill -STOP 1"
console_cmd "$m" status '^stage +' 20 >/dev/null || fail "$m: the agent stopped answering after SIGSTOP"

# The hang.
rig_sh "$m" 'touch /run/rig-demote-hang && echo armed' | grep -q armed || fail "$m: cannot arm the hang"
t_cmd=$(date +%s.%N)
rig_send "$m" 'demote infra'
dem=
for _ in $(seq 100); do
	dem=$(rig_stamp "$m" "event=role .*kind=infra node=$m role=(slave|candidate|none)" "$t_cmd") && break
	sleep 0.1
done
[ -n "$dem" ] || fail "$m: no demote after 'demote infra'"
t_dem=${dem%% *}
reset=
for _ in $(seq $(((HOOK_S + 30) * 10))); do
	reset=$(rig_qmp_event "$m" RESET "$t_cmd") && break
	sleep 0.1
done
[ -n "$reset" ] || fail "$m was not reset within hook_timeout (${HOOK_S}s) + 30 s of the demote (its hook hangs)"
t_reset=${reset%% *}
grep -q '"guest": true' <<<"$reset" || fail "$m: the reset did not come from the guest: $reset"
# (a slot confirmation that comes late may stop the keep-alives for a moment while the hook
# runs; they resume: the lasting stop is the fence's)
stop=$(rig_stamp "$m" 'keep-alives stop \(infra: fenced' "$t_cmd") ||
	fail "$m: the console never said its keep-alives stopped because it fenced"
t_stop=${stop%% *}
fence=$(rig_stamp "$m" 'demote hook hung: fencing' "$t_cmd") || fail "$m: the console never said it fenced"
t_fence=${fence%% *}
echo "$m: demoted at +$(awk -v a="$t_dem" -v b="$t_cmd" 'BEGIN { printf "%.3f", a - b }') s, ${stop#* }"
echo "$m: QMP $reset"

# Another node promotes, after the reset could have happened and after it did.
prom=
for _ in $(seq 300); do
	for n in "${NODES[@]}"; do
		[ "$n" = "$m" ] && continue
		prom=$(rig_stamp "$n" "event=role .*kind=infra node=$n role=master" "$t_cmd") && break 2
	done
	sleep 0.1
done
[ -n "$prom" ] || fail "nobody promoted within 30 s of $m's reset"
t_prom=${prom%% *}
new=$(sed -n 's/.* node=\([^ ]*\) role=master.*/\1/p' <<<"$prom")
echo "new infra master: $new (${prom#* })"
awk -v p="$t_prom" -v s="$t_stop" -v w="$WD_S" 'BEGIN { exit !(p > s + w) }' ||
	fail "$new promoted before $m's reset could have happened (stop $t_stop + ${WD_S}s, promote $t_prom)"
awk -v p="$t_prom" -v r="$t_reset" 'BEGIN { exit !(p > r) }' ||
	fail "$new promoted before $m's reset (reset $t_reset, promote $t_prom)"
# The reset came no later than the watchdog timeout after the last keep-alive (before the
# stop line); slack for a loaded TCG host.
awk -v r="$t_reset" -v s="$t_stop" -v w="$WD_S" 'BEGIN { exit !(r <= s + w + 1.5) }' ||
	fail "$m reset $(awk -v r="$t_reset" -v s="$t_stop" 'BEGIN { print r - s }') s after its keep-alives stopped"

# The reset node boots again and comes back as slave.
back=
for _ in $(seq 300); do
	back=$(rig_stamp "$m" "event=role .*kind=infra node=$m role=slave" "$t_reset") && break
	sleep 1
done
[ -n "$back" ] || fail "$m did not come back as infra slave within 300 s of its reset"
rig_stamp "$m" 'event=ready ' "$t_reset" >/dev/null || fail "$m: no event=ready after the reset"
! again=$(rig_stamp "$m" "event=role .*kind=infra node=$m role=master" "$t_reset") ||
	fail "$m became master again after its reset: ${again#* }"
echo "$m back after the reset: ${back#* }"
sleep 3
[ "$(infra_master)" = "$new" ] || fail "the infra master is not $new after $m came back"

# No two masters of a kind at any instant: per node and kind, acting from its role=master
# line to the end of its demote hook (event=hook … status=ok), or its reset (QMP RESET),
# or now.
t_end=$(date +%s.%N)
for n in "${NODES[@]}"; do
	{
		awk -v n="$n" '/ event=role / && / role=master/ { match($0, /kind=[a-z]+/); print $1, n, substr($0, RSTART + 5, RLENGTH - 5), "start" }
			/ event=hook name=demote-[a-z]+ status=ok/ { match($0, /name=demote-[a-z]+/); print $1, n, substr($0, RSTART + 12, RLENGTH - 12), "end" }' \
			"$RIG_DIR/$n.ts.log"
		awk -v n="$n" '$2 == "RESET" { print $1, n, "infra", "end"; print $1, n, "admin", "end" }' \
			"$RIG_DIR/$n.events.log" 2>/dev/null
	} | sort -n | awk -v end="$t_end" '
		$4 == "start" { if (!(($2, $3) in since)) since[$2, $3] = $1; next }
		(($2, $3) in since) { print $3, $2, since[$2, $3], $1; delete since[$2, $3] }
		END { for (k in since) { split(k, p, SUBSEP); print p[2], p[1], since[k], end } }'
done | sort -k1,1 -k3,3n >"$RIG_DIR/intervals"
echo "acting as master (kind node from to, host clock):"
sed 's/^/  /' "$RIG_DIR/intervals"
awk '{ k[NR] = $1; n[NR] = $2; s[NR] = $3; e[NR] = $4 }
	END { bad = 0
		for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++)
			if (k[i] == k[j] && s[j] < e[i] && s[i] < e[j]) {
				printf "OVERLAP %s: %s [%s, %s] and %s [%s, %s]\n", k[i], n[i], s[i], e[i], n[j], s[j], e[j]; bad = 1 }
		exit bad }' "$RIG_DIR/intervals" || fail "two nodes acted as master of one kind at once"
grep -q "^infra $m " "$RIG_DIR/intervals" && grep -q "^infra $new " "$RIG_DIR/intervals" ||
	fail "the intervals miss $m or $new"

f() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
echo "figures: hang (demote) to fencing $(f "$t_fence" "$t_dem") s (hook_timeout ${HOOK_S} s);" \
	"hang to reset $(f "$t_reset" "$t_dem") s; fencing to reset $(f "$t_reset" "$t_fence") s; keep-alives stop to reset" \
	"$(f "$t_reset" "$t_stop") s; reset possible (stop + ${WD_S} s) to $new's promotion" \
	"$(f "$t_prom" "$(f "$t_stop" -"$WD_S")") s; reset to promotion $(f "$t_prom" "$t_reset") s;" \
	"reset to $m back as slave $(f "${back%% *}" "$t_reset") s"
echo "PASS: $m hung in its demote hook, its watchdog reset it, $new promoted after the reset, no two masters, $m back as slave ($(f "$(date +%s.%N)" "$t_start") s in all)"
