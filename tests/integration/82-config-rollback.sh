#!/usr/bin/env bash
# timeout: 180
# Automatic rollback of a configuration version on the node where it fails (SPEC §2a).
# Four agents on loopback, each with its own file and state area (cmpt-state in host mode),
# [timeouts] config_probation = 3s:
# 1. Version 1 runs everywhere and becomes each node's last-known-good.
# 2. `config push` of version 2 on a1, whose profiles gain a hook that fails on b2 only:
#    every node keeps the file on cmpt-state before it applies it (action=stored) and runs
#    its changed hooks again; b2 rolls back to 1 (`action=rollback from=2 to=1
#    reason=hook-failed`), records 2 as failed, and says once that it skips 2
#    (`action=skip`) instead of fetching it again; the three others keep 2 and, after the
#    probation, record it as last-known-good. `config status` shows who runs what.
#    b2's file is version 1 again (what runs: its config health check passes).
# 3. b2 restarted with version 2 in its file: boots its last-known-good 1 and does not
#    fetch 2 again.
# 4. Version 3 pushed, a2 killed right after keeping it, its file put back to version 1
#    (as PID 1's image would be): a2 boots version 3 from cmpt-state (`event=boot
#    config=trial version=3 boots=1`) and it becomes its last-known-good after the
#    probation.
# 5. Version 4 on probation: a2 loses its eligibility (a core health check fails) and rolls
#    back to 3 (`reason=ineligible`); b1 keeps 4.
HS_PORT=${HS_PORT:-7582}
. "$(dirname "$0")/lib-hs.sh"
hs_setup 's/^\[timeouts\]$/[timeouts]\nconfig_probation = 3s/'
cat >"$HS_TMP/hooks/check-node" <<'EOS'
#!/bin/sh
# fails on b2 only
[ "$COMPARTD_NODE" != b2 ]
EOS
chmod +x "$HS_TMP/hooks/check-node"
v1=$HS_TMP/cluster.conf
sed -e 's/^version = 1$/version = 2/' \
	-e "s|^\(run = .*/start-infra\)$|\1\nrun = $HS_TMP/hooks/check-node|" "$v1" >"$HS_TMP/v2.conf"
grep -q check-node "$HS_TMP/v2.conf" || fail "v2 has no check-node hook"
sed 's/^version = 1$/version = 3/' "$v1" >"$HS_TMP/v3.conf"

start() { # node: its own file and state area
	[ -f "$HS_TMP/$1.cmdline" ] || hs_cmdline "$1"
	mkdir -p "$HS_TMP/$1"
	: >"$HS_TMP/$1.log"
	"$BUILD/compartd" run --foreground --config "$HS_TMP/$1.conf" --state "$HS_TMP/$1.state" \
		--state-dir "$HS_TMP/$1" --cmdline "$HS_TMP/$1.cmdline" >"$HS_TMP/$1.log" 2>&1 &
	HS_PID[$1]=$!
}
version_of() { hs_ctl "$1" status --json | grep -o '"config_version":[0-9]*' | cut -d: -f2; }
journal() { "$BUILD/compartd" state show --disk "$HS_TMP/$1.state" --json 2>/dev/null; }
count() { grep -c -- "$2" "$HS_TMP/$1.log"; }
# line NODE REGEX: the number of the first line matching REGEX
line() { grep -n -- "$2" "$HS_TMP/$1.log" | head -1 | cut -d: -f1; }

# 1. Version 1 everywhere, each node's last-known-good.
for n in a1 a2 b1 b2; do
	cp "$v1" "$HS_TMP/$n.conf"
	truncate -s 2M "$HS_TMP/$n.state"
	start $n
done
for n in a1 a2 b1 b2; do hs_wait $n 'event=config action=last-known-good version=1' 20; done
echo "version 1 is the last-known-good of every node"

# 2. Version 2 fails on b2 only.
t0=$(date +%s%N)
hs_ctl a1 config push "$HS_TMP/v2.conf" | grep -q "configuration reloaded, version 2" || fail "push of 2"
for n in a2 b1 b2; do
	hs_wait $n 'event=config action=applied version=2 from=' 15
	ls=$(line $n 'event=config action=stored version=2') la=$(line $n 'event=config action=applied version=2')
	[ -n "$ls" ] && [ "$ls" -lt "$la" ] || fail "$n applied 2 before keeping it on cmpt-state"
done
hs_wait b2 'event=config action=rollback from=2 to=1 reason=hook-failed' 15
t1=$(date +%s%N)
hs_wait b2 'event=config action=failed version=2' 5
hs_wait b2 'event=config action=skip version=2 from=[a-z0-9]+ reason=failed-here' 10
for n in a1 a2 b1; do hs_wait $n 'event=config action=last-known-good version=2' 15; done
t2=$(date +%s%N)
grep -q 'event=config action=rollback' "$HS_TMP/a1.log" "$HS_TMP/a2.log" "$HS_TMP/b1.log" &&
	fail "a node other than b2 rolled back"
sleep 2 # heartbeats go on announcing 2: b2 does not fetch it again, and says so once
[ "$(count b2 'event=config action=fetch version=2')" -eq 1 ] || fail "b2 fetched 2 again"
[ "$(count b2 'event=config action=skip version=2')" -eq 1 ] || fail "b2 said more than once that it skips 2"
[ "$(version_of b2)" = 1 ] || fail "b2 does not run 1"
for n in a1 a2 b1; do [ "$(version_of $n)" = 2 ] || fail "$n does not run 2"; done
grep -q 'event=hook name=.*check-node status=failed' "$HS_TMP/b2.log" || fail "no failed hook on b2"
journal b2 | grep -q '"good_config":{"version":1,' || fail "b2's last-known-good is not 1"
journal b2 | grep -q '"failed_configs":\[{"version":2,' || fail "b2 did not record 2 as failed"
journal a2 | grep -q '"good_config":{"version":2,' || fail "a2's last-known-good is not 2"
st=$(hs_ctl b1 config status)
echo "$st" | grep -q "4 of 4 nodes answered" || fail "config status: $st"
[ "$(echo "$st" | grep -c '^ *running  *version 2, ')" -eq 3 ] || fail "config status (2): $st"
[ "$(echo "$st" | grep -c '^ *running  *version 1, ')" -eq 1 ] || fail "config status (1): $st"
echo "$st" | grep -q '^ *failed  *version 2, ' || fail "config status (failed): $st"
hs_ctl b1 config status --json | grep -q '"answered":4' || fail "config status --json"
echo "version 2: rolled back on b2 only ($(((t1 - t0) / 1000000)) ms after the push), last-known-good elsewhere ($(((t2 - t0) / 1000000)) ms)"

cmp -s "$v1" "$HS_TMP/b2.conf" || fail "b2's file is not the last-known-good 1 after its rollback"
echo "b2 after its rollback: $(hs_ctl b2 status | grep '^election')"

# 3. b2 restarted with version 2 in its file (as an image could carry it): its
#    last-known-good runs, 2 is not fetched.
hs_stop b2
cp "$HS_TMP/v2.conf" "$HS_TMP/b2.conf"
st=$(hs_ctl a1 config status)
echo "$st" | grep -A3 "no answer from" | grep -q b2 || fail "config status does not name b2 silent: $st"
start b2
hs_wait b2 'event=boot config=last-known-good version=1 reason=.*2 failed on this node' 10
hs_wait b2 'event=config action=skip version=2 from=[a-z0-9]+ reason=failed-here' 15
hs_wait b2 'event=ready node=b2' 15
sleep 1
[ "$(count b2 'event=config action=fetch version=2')" -eq 0 ] || fail "b2 fetched 2 after its restart"
[ "$(version_of b2)" = 1 ] || fail "b2 does not run 1 after its restart"
echo "b2 restarted: last-known-good 1, version 2 skipped"

# 4. Version 3, a2 stopped hard right after keeping it; its file back to version 1.
hs_ctl a1 config push "$HS_TMP/v3.conf" >/dev/null || fail "push of 3"
hs_wait a2 'event=config action=stored version=3' 15
kill -9 "${HS_PID[a2]}"
wait "${HS_PID[a2]}" 2>/dev/null
unset "HS_PID[a2]"
journal a2 | grep -q '"trial_config":{"version":3,' || fail "a2 did not keep 3 on trial"
cp "$v1" "$HS_TMP/a2.conf"
start a2
hs_wait a2 'event=boot config=trial version=3 boots=1' 10
cmp -s "$HS_TMP/v3.conf" "$HS_TMP/a2.conf" || fail "a2's file is not the stored version 3"
hs_wait a2 'event=ready node=a2' 15
[ "$(version_of a2)" = 3 ] || fail "a2 does not run 3"
hs_wait a2 'event=config action=last-known-good version=3' 15
journal a2 | grep -q '"trial_config"' && fail "a2 still has a trial after its probation"
hs_wait b2 'event=config action=applied version=3' 15
echo "a2 killed after keeping version 3: booted it from cmpt-state, last-known-good after its probation"

# 5. Version 4 (config_probation = 20s); during its probation a2 loses its eligibility (its
#    file made unreadable as configuration: the config health check is core): a2 rolls
#    back to 3 (reason=ineligible) and its file is 3 again; b1 keeps 4.
sed -e 's/^version = 1$/version = 4/' -e 's/^config_probation = 3s$/config_probation = 20s/' "$v1" >"$HS_TMP/v4.conf"
hs_ctl a1 config push "$HS_TMP/v4.conf" >/dev/null || fail "push of 4"
for n in a2 b1; do hs_wait $n 'event=config action=probation version=4 ms=20000' 15; done
hs_ctl b1 config --json | grep -q '"probation":{"version":4,' || fail "b1's config shows no probation: $(hs_ctl b1 config)"
hs_ctl b1 config | grep -q '^on probation  *version 4, ' || fail "b1's config text: $(hs_ctl b1 config)"
hs_ctl a2 status | grep -q '^election  *eligible' || fail "a2 is not eligible before: $(hs_ctl a2 status)"
echo "colour = red" >>"$HS_TMP/a2.conf"
t0=$(date +%s%N)
hs_wait a2 'event=config action=rollback from=4 to=3 reason=ineligible' 15
t1=$(date +%s%N)
cmp -s "$HS_TMP/v3.conf" "$HS_TMP/a2.conf" || fail "a2's file is not the last-known-good 3"
[ "$(version_of a2)" = 3 ] || fail "a2 does not run 3"
[ "$(version_of b1)" = 4 ] || fail "b1 does not run 4"
grep -q 'event=config action=rollback' "$HS_TMP/b1.log" && fail "b1 rolled back"
echo "version 4: a2 ineligible during its probation, rolled back $(((t1 - t0) / 1000000)) ms after its file broke"
echo "PASS"
