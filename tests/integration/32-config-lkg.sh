#!/usr/bin/env bash
# timeout: 120
# The last-known-good configuration in host mode, with a state image file (SPEC §2a, §10,
# §11): the node ready with version 5 records it and keeps a copy; the image's config
# then broken, older, or one that failed on this node: the agent boots with the stored
# copy and says so (event=boot config=last-known-good version=5) instead of stopping.
HS_PORT=${HS_PORT:-7532}
. "$(dirname "$0")/lib-hs.sh"
hs_setup "s/^version = 1$/version = 5/"
truncate -s 2M "$HS_TMP/state.img"
good=$HS_TMP/cluster.conf.v5
cp "$HS_TMP/cluster.conf" "$good"

start() { # node: with the state file
	[ -f "$HS_TMP/$1.cmdline" ] || hs_cmdline "$1"
	mkdir -p "$HS_TMP/$1"
	: >"$HS_TMP/$1.log" # before the background job: no match in the last run's log
	"$BUILD/compartd" run --foreground --config "$HS_TMP/cluster.conf" --state "$HS_TMP/state.img" \
		--state-dir "$HS_TMP/$1" --cmdline "$HS_TMP/$1.cmdline" >"$HS_TMP/$1.log" 2>&1 &
	HS_PID[$1]=$!
}
running_version() {
	hs_ctl a2 status --json | grep -o '"config_version":[0-9]*' | cut -d: -f2
}
journal() { "$BUILD/compartd" state show --disk "$HS_TMP/state.img" --json 2>/dev/null; }

# 1. Version 5 runs; after `continue` its hooks succeed: last-known-good, copy kept.
start a2
hs_wait a2 'event=ready node=a2 profile=wait-operator' 15
hs_ctl a2 continue || fail "continue refused"
hs_wait a2 'event=config action=last-known-good version=5' 10
hs_stop a2
journal | grep -q '"good_config":{"version":5' || fail "journal has no good config 5"
echo "version 5 recorded as last-known-good"

# 2. The image's file broken: the stored copy runs.
printf 'colour = red\n' >>"$HS_TMP/cluster.conf"
start a2
hs_wait a2 'event=boot config=last-known-good version=5 reason=' 10
hs_wait a2 'event=ready node=a2' 15
[ "$(running_version)" = 5 ] || fail "not running version 5"
grep -q 'event=config action=failed version=0' "$HS_TMP/a2.log" || fail "broken file not recorded as failed"
hs_stop a2
echo "broken image config: booted with the last-known-good copy"

# 3. Older than the last-known-good.
sed 's/^version = 5$/version = 4/' "$good" >"$HS_TMP/cluster.conf"
start a2
hs_wait a2 'event=boot config=last-known-good version=5 reason=.*older' 10
hs_wait a2 'event=ready node=a2' 15
hs_stop a2
echo "older image config: booted with the last-known-good copy"

# 4. Version 6 whose management hook fails: recorded as failed, rolled back to 5, refused
# at the next boot.
sed 's/^version = 5$/version = 6/' "$good" >"$HS_TMP/cluster.conf"
cp "$HS_TMP/hooks/start-mgmt" "$HS_TMP/start-mgmt.ok"
printf '#!/bin/sh\nexit 4\n' >"$HS_TMP/hooks/start-mgmt"
start a2
hs_wait a2 'event=ready node=a2 profile=wait-operator' 15
[ "$(running_version)" = 6 ] || fail "version 6 not running"
hs_ctl a2 continue || fail "continue refused"
hs_wait a2 'event=config action=failed version=6' 10
# …rolled back at once to the last-known-good (SPEC §2a).
hs_wait a2 'event=config action=rollback from=6 to=5 reason=hook-failed' 5
[ "$(running_version)" = 5 ] || fail "not rolled back to version 5"
# …and the file is what runs again (the config health check, reloads, peers).
cmp -s "$good" "$HS_TMP/cluster.conf" || fail "the file is not the last-known-good after the rollback"
hs_stop a2
cp "$HS_TMP/start-mgmt.ok" "$HS_TMP/hooks/start-mgmt"
# An image that carries version 6 again: refused at boot.
sed 's/^version = 5$/version = 6/' "$good" >"$HS_TMP/cluster.conf"
start a2
hs_wait a2 'event=boot config=last-known-good version=5 reason=.*6 failed on this node' 10
hs_wait a2 'event=ready node=a2' 15
# The health check sees the file differ from what runs: its reload is refused as well.
hs_wait a2 'reload refused, keeping version 5: version 6 failed on this node' 15
[ "$(running_version)" = 5 ] || fail "not running version 5 after 6 failed"
hs_stop a2
echo "failed version 6 refused at boot: last-known-good 5"
