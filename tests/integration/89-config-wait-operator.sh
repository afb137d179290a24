#!/usr/bin/env bash
# timeout: 180
# A node that stays in wait-operator judges its configuration versions too (SPEC §2a,
# docs/config.md "A node that waits for its operator"). a1 alone, with a state area,
# config_probation = 3s (its boot decision: wait-operator, eligible for nothing):
# 1. Its image's version 1 runs, not proved (wait-operator runs no service): no
#    last-known-good yet.
# 2. Version 2 pushed: on probation, last-known-good after it.
# 3. Version 3 pushed, a1 killed right after keeping it, its file put back to version 1:
#    it boots 3 on trial, starts its probation in wait-operator, and 3 becomes its
#    last-known-good (before, this never happened and the second such boot failed it).
# 4. Version 4 (probation 20s): a1's file made unparsable, its config health check (core)
#    fails after it passed with 4: rolled back to 3 (`reason=ineligible`).
HS_PORT=${HS_PORT:-7589}
. "$(dirname "$0")/lib-hs.sh"
hs_setup 's/^\[timeouts\]$/[timeouts]\nconfig_probation = 3s/'
v1=$HS_TMP/cluster.conf
for v in 2 3; do sed "s/^version = 1$/version = $v/" "$v1" >"$HS_TMP/v$v.conf"; done
sed -e 's/^version = 1$/version = 4/' -e 's/^config_probation = 3s$/config_probation = 20s/' \
	"$v1" >"$HS_TMP/v4.conf"

start() {
	[ -f "$HS_TMP/$1.cmdline" ] || hs_cmdline "$1"
	mkdir -p "$HS_TMP/$1"
	"$BUILD/compartd" run --foreground --config "$HS_TMP/$1.conf" --state "$HS_TMP/$1.state" \
		--state-dir "$HS_TMP/$1" --cmdline "$HS_TMP/$1.cmdline" >>"$HS_TMP/$1.log" 2>&1 &
	HS_PID[$1]=$!
}
version_of() { hs_ctl "$1" status --json | grep -o '"config_version":[0-9]*' | cut -d: -f2; }
journal() { "$BUILD/compartd" state show --disk "$HS_TMP/$1.state" --json 2>/dev/null; }

# 1. a1 alone: wait-operator, version 1 its last-known-good.
cp "$v1" "$HS_TMP/a1.conf"
truncate -s 2M "$HS_TMP/a1.state"
: >"$HS_TMP/a1.log"
start a1
hs_wait a1 'event=ready node=a1 profile=wait-operator' 15
sleep 1
grep -q 'event=config action=last-known-good' "$HS_TMP/a1.log" && fail "version 1 proved by wait-operator"
echo "1. a1 in wait-operator with version 1"

# 2. Version 2 pushed: probation, then last-known-good.
hs_ctl a1 config push "$HS_TMP/v2.conf" | grep -q "configuration reloaded, version 2" || fail "push of 2"
hs_wait a1 'event=config action=probation version=2 ms=3000' 5
hs_wait a1 'event=config action=last-known-good version=2' 10
echo "2. version 2 pushed in wait-operator: last-known-good after its probation"

# 3. Version 3 kept, a1 killed, its file back to 1: boots 3 on trial, judged in
#    wait-operator.
hs_ctl a1 config push "$HS_TMP/v3.conf" >/dev/null || fail "push of 3"
hs_wait a1 'event=config action=stored version=3' 5
kill -9 "${HS_PID[a1]}"
wait "${HS_PID[a1]}" 2>/dev/null
unset "HS_PID[a1]"
journal a1 | grep -q '"trial_config":{"version":3,' || fail "a1 did not keep 3 on trial"
cp "$v1" "$HS_TMP/a1.conf"
start a1
hs_wait a1 'event=boot config=trial version=3 boots=1' 10
t0=$(date +%s%N)
for ((i = 0; i < 150; i++)); do # the second boot's ready line
	[ "$(grep -c 'event=ready node=a1 profile=wait-operator' "$HS_TMP/a1.log")" -ge 2 ] && break
	sleep 0.1
done
[ "$i" -lt 150 ] || fail "a1 not ready in wait-operator after booting 3"
hs_wait a1 'event=config action=probation version=3 ms=3000' 5
hs_wait a1 'event=config action=last-known-good version=3' 10
t1=$(date +%s%N)
journal a1 | grep -q '"trial_config"' && fail "a1 still has a trial after its probation"
journal a1 | grep -q '"good_config":{"version":3,' || fail "a1's last-known-good is not 3"
[ "$(version_of a1)" = 3 ] || fail "a1 does not run 3"
echo "3. version 3 booted on trial in wait-operator: last-known-good $(((t1 - t0) / 1000000)) ms after ready"

# 4. Version 4: the config health check fails after passing with it: rolled back to 3.
hs_ctl a1 config push "$HS_TMP/v4.conf" >/dev/null || fail "push of 4"
hs_wait a1 'event=config action=probation version=4 ms=20000' 5
sleep 1
echo "colour = red" >>"$HS_TMP/a1.conf"
t0=$(date +%s%N)
hs_wait a1 'event=config action=rollback from=4 to=3 reason=ineligible' 15
t1=$(date +%s%N)
cmp -s "$HS_TMP/v3.conf" "$HS_TMP/a1.conf" || fail "a1's file is not the last-known-good 3"
[ "$(version_of a1)" = 3 ] || fail "a1 does not run 3"
journal a1 | grep -q '"failed_configs":\[{"version":4,' || fail "a1 did not record 4 as failed"
echo "4. version 4 in wait-operator, its config check failing: rolled back $(((t1 - t0) / 1000000)) ms after the file broke"
echo "PASS"
