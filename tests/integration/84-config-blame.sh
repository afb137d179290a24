#!/usr/bin/env bash
# timeout: 240
# What is blamed on a configuration version on probation (SPEC §2a, docs/config.md "What
# is blamed on a version"), and a pushed change of topology said on the pushing node.
# Four agents on loopback, each with its own file and state area, config_probation = 10s;
# a1 runs infra-and-mgmt, the others infra-only; when a1 stops, b1 (next in priority)
# moves to infra-and-mgmt and runs that profile's hooks.
# 1. Not the version's doing: version 2 (only its number changed) on probation; b1's
#    start-mgmt hook fails for a reason outside the configuration (a marker file), and
#    a1 stops: b1's hooks fail, b1 says `action=not-blamed`, keeps 2, does not record it
#    as failed, and records it last-known-good after the probation.
# 2. The version's doing: version 2 adds a hook to infra-and-mgmt that fails on b1; a1
#    stops during the probation: b1 moves to that profile, the hook fails, and b1 rolls
#    back to 1 (`reason=hook-failed`) and records 2 as failed; a2 and b2 keep 2.
# 3. A change of topology pushed on b2: written, waits for a restart, said there and on
#    every node that fetches it; the config check accepts the file that waits.
out=$(hs_ctl b2 config push "$HS_TMP/v3.conf" 2>&1)
echo "$out" | grep -q "restart the agent to apply it" || fail "push of 3: $out"
hs_wait b2 'event=config action=pending-restart version=3 from=b2 reason=.*the storage changed' 5
for n in a2 b1; do
	hs_wait $n 'event=config action=pending-restart version=3 from=[a-z0-9]+ reason=.*the storage changed' 15
	cmp -s "$HS_TMP/v3.conf" "$HS_TMP/$n.conf" || fail "$n's file is not version 3"
done
cmp -s "$HS_TMP/v3.conf" "$HS_TMP/b2.conf" || fail "b2's file is not version 3"
for n in a2 b1 b2; do [ "$(version_of $n)" = 2 ] || fail "$n does not run 2 until its restart"; done
hs_ctl b2 config | grep -q '^pending restart version 3, ' || fail "b2's config: $(hs_ctl b2 config)"
hs_ctl b2 config --json | grep -q '"pending_restart":{"version":3,' || fail "b2's config --json"
st=$(hs_ctl a2 config status)
[ "$(echo "$st" | grep -c '^ *pending restart version 3, ')" -eq 3 ] || fail "config status: $st"
sleep 6 # a config health check (every 5 s) sees the file that waits: accepted
hs_ctl b2 health | grep -q 'waits for a restart' || fail "b2's config check: $(hs_ctl b2 health)"
hs_ctl b2 status | grep -q '^election  *eligible' || fail "b2 not eligible: $(hs_ctl b2 status)"
grep -q 'event=config action=rollback' "$HS_TMP/b2.log" && fail "b2 rolled back"
[ "$(grep -c 'event=config action=fetch version=3' "$HS_TMP/b2.log")" -eq 0 ] || fail "b2 fetched its own 3"
hs_stop b1
start b1
hs_wait b1 'event=ready node=b1' 15
[ "$(version_of b1)" = 3 ] || fail "b1 does not run 3 after its restart"
hs_ctl b1 config --json | grep -q '"pending_restart":null' || fail "b1's config --json after its restart"
echo "3. topology change pushed on b2: pending restart on b2, a2, b1 (config, config status), b1 runs it after a restart"
echo "PASS"
