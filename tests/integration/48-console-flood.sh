#!/usr/bin/env bash
# timeout: 90
# The console socket against a local flood (SPEC §9): a1 runs with `ulimit -n 64`; 70
# idle connections are opened and held for 14 s. The agent must cap its clients (16; the
# rest are refused with a message), drop idle ones after 10 s, and not spin on EMFILE: its
# CPU time over the flood stays well below the wall time, its handshake with a2 goes on
# (no peer lost) and the config:cluster health check never fails.
HS_PORT=7468
. "$(dirname "$0")/lib-hs.sh"
hs_setup
export KEEP_TMP=${KEEP_TMP:-}
hs_start a2
hs_cmdline a1
mkdir -p "$HS_TMP/a1"
bash -c 'ulimit -n 64 && exec "$@"' -- "$BUILD/compartd" run --foreground \
	--config "$HS_TMP/cluster.conf" --state-dir "$HS_TMP/a1" --cmdline "$HS_TMP/a1.cmdline" \
	>"$HS_TMP/a1.log" 2>&1 &
HS_PID[a1]=$!
hs_wait a1 'event=ready' 15
hs_wait a1 'event=peer node=a2 state=contacted' 10
hs_ctl a1 health --json | jq -e '.components[] | select(.component == "config:cluster") | .state == "ok"' \
	>/dev/null || fail "config:cluster not ok before the flood"
cpu() { awk '{print $14 + $15}' "/proc/${HS_PID[a1]}/stat"; }
tck=$(getconf CLK_TCK)
c0=$(cpu)
t0=$(date +%s.%N)
python3 "$REPO/tests/console_flood.py" "$HS_TMP/a1/console.sock" 70 14 >"$HS_TMP/flood.out" &
HS_PID[flood]=$!
sleep 3
mid=$(hs_ctl a1 status 2>&1 | head -1)
echo "a client during the flood: $mid"
wait "${HS_PID[flood]}"
unset 'HS_PID[flood]'
c1=$(cpu)
t1=$(date +%s.%N)
cat "$HS_TMP/flood.out"
pct=$(echo "100 * ($c1 - $c0) / $tck / ($t1 - $t0)" | bc -l | cut -d. -f1)
echo "a1's CPU over the flood: ${pct:-0}% of one core"
[ "${pct:-0}" -lt 40 ] || fail "a1 used ${pct}% CPU under the flood (EMFILE spin?)"
read -r _ conn _ refused _ dropped _ first <"$HS_TMP/flood.out"
[ "$refused" -ge 40 ] || fail "only $refused connections refused; the cap is 16"
[ "$dropped" -ge 1 ] || fail "no idle client was dropped"
awk -v f="$first" 'BEGIN { exit !(f >= 9 && f <= 13) }' || fail "first idle drop after ${first}s, not ~10s"
grep -q 'component=config:cluster state=failed' "$HS_TMP/a1.log" && fail "config:cluster failed under the flood"
grep -q 'event=peer node=a2 state=lost' "$HS_TMP/a1.log" && fail "a1 lost a2 under the flood"
grep -q 'too many console clients' "$HS_TMP/a1.log" || fail "the refusals are not logged"
hs_ctl a1 health --json | jq -e '.components[] | select(.component == "config:cluster") | .state == "ok"' \
	>/dev/null || fail "config:cluster not ok after the flood"
echo "70 idle connections under ulimit -n 64: capped, idle ones dropped, no spin"
