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
# 3. A change of topology pushed on b2 (a storage renamed): written, waits for a
#    restart, said there (`action=pending-restart version=3 from=b2`) and on every node
#    that fetches it; `config` and `config status` show it; the config check accepts the
#    file that waits; b1 restarted runs it.
HS_PORT=${HS_PORT:-7584}
. "$(dirname "$0")/lib-hs.sh"
hs_setup 's/^\[timeouts\]$/[timeouts]\nconfig_probation = 10s/'
# start-mgmt fails on b1 while the marker exists: something outside the configuration
cat >"$HS_TMP/hooks/start-mgmt" <<EOS
#!/bin/sh
echo "start-mgmt \$COMPARTD_NODE \$COMPARTD_PROFILE" >>"$HS_TMP/hooks.log"
[ "\$COMPARTD_NODE" != b1 ] || [ ! -e "$HS_TMP/mgmt-broken" ]
EOS
cat >"$HS_TMP/hooks/check-mgmt" <<'EOS'
#!/bin/sh
# fails on b1 only
[ "$COMPARTD_NODE" != b1 ]
EOS
chmod +x "$HS_TMP/hooks/start-mgmt" "$HS_TMP/hooks/check-mgmt"
v1=$HS_TMP/cluster.conf
sed 's/^version = 1$/version = 2/' "$v1" >"$HS_TMP/v2.conf"
sed -e 's/^version = 1$/version = 2/' \
	-e "s|^\(run = .*/start-mgmt\)$|\1\nrun = $HS_TMP/hooks/check-mgmt|" "$v1" >"$HS_TMP/v2b.conf"
grep -q check-mgmt "$HS_TMP/v2b.conf" || fail "v2b has no check-mgmt hook"
sed -e 's/^version = 1$/version = 3/' -e 's/^\[storage mirror0\]$/[storage mirror9]/' \
	"$v1" >"$HS_TMP/v3.conf"
"$BUILD/compartd" check-config "$HS_TMP/v3.conf" >/dev/null || fail "v3 does not validate"

start() { # node: its own file and state area
	[ -f "$HS_TMP/$1.cmdline" ] || hs_cmdline "$1"
	mkdir -p "$HS_TMP/$1"
	"$BUILD/compartd" run --foreground --config "$HS_TMP/$1.conf" --state "$HS_TMP/$1.state" \
		--state-dir "$HS_TMP/$1" --cmdline "$HS_TMP/$1.cmdline" >>"$HS_TMP/$1.log" 2>&1 &
	HS_PID[$1]=$!
}
version_of() { hs_ctl "$1" status --json | grep -o '"config_version":[0-9]*' | cut -d: -f2; }
journal() { "$BUILD/compartd" state show --disk "$HS_TMP/$1.state" --json 2>/dev/null; }
fresh() { # every node: version 1, a new state area, its last-known-good
	for n in a1 a2 b1 b2; do hs_stop $n; done
	for n in a1 a2 b1 b2; do
		cp "$v1" "$HS_TMP/$n.conf"
		rm -f "$HS_TMP/$n.state"
		truncate -s 2M "$HS_TMP/$n.state"
		: >"$HS_TMP/$n.log"
		start $n
	done
	for n in a1 a2 b1 b2; do hs_wait $n 'event=config action=last-known-good version=1' 20; done
	hs_wait b1 'event=ready node=b1 profile=infra-only' 10
	hs_wait a1 'event=ready node=a1 profile=infra-and-mgmt' 10
}

# 1. A failure outside the configuration during the probation: not blamed.
fresh
hs_ctl b2 config push "$HS_TMP/v2.conf" | grep -q "configuration reloaded, version 2" || fail "push of 2"
hs_wait b1 'event=config action=probation version=2 ms=10000' 15
touch "$HS_TMP/mgmt-broken"
t0=$(date +%s%N)
hs_stop a1
hs_wait b1 'event=hook name=.*start-mgmt status=failed' 15
hs_wait b1 'event=config action=not-blamed version=2 cause=' 5
grep -q 'event=config action=rollback' "$HS_TMP/b1.log" && fail "b1 rolled back 2 for a failure it did not cause"
hs_wait b1 'event=config action=last-known-good version=2' 20
[ "$(version_of b1)" = 2 ] || fail "b1 does not run 2"
journal b1 | grep -q '"failed_configs":\[{"version":2,' && fail "b1 recorded 2 as failed"
journal b1 | grep -q '"good_config":{"version":2,' || fail "b1's last-known-good is not 2"
echo "1. start-mgmt broken outside the configuration on b1: version 2 kept, last-known-good $((($(date +%s%N) - t0) / 1000000)) ms after a1 stopped"
rm -f "$HS_TMP/mgmt-broken"

# 2. A hook the version added fails when b1 moves to its profile: rolled back there.
fresh
hs_ctl b2 config push "$HS_TMP/v2b.conf" | grep -q "configuration reloaded, version 2" || fail "push of 2b"
for n in a2 b1; do hs_wait $n 'event=config action=probation version=2 ms=10000' 15; done
t0=$(date +%s%N)
hs_stop a1
hs_wait b1 'event=hook name=.*check-mgmt status=failed' 15
hs_wait b1 'event=config action=rollback from=2 to=1 reason=hook-failed' 5
t1=$(date +%s%N)
journal b1 | grep -q '"failed_configs":\[{"version":2,' || fail "b1 did not record 2 as failed"
[ "$(version_of b1)" = 1 ] || fail "b1 does not run 1"
for n in a2 b2; do hs_wait $n 'event=config action=last-known-good version=2' 20; done
grep -q 'event=config action=rollback' "$HS_TMP/a2.log" "$HS_TMP/b2.log" && fail "a2 or b2 rolled back"
echo "2. a hook version 2 added fails on b1 when it takes over management: rolled back $(((t1 - t0) / 1000000)) ms after a1 stopped"

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
for n in a2 b2; do [ "$(version_of $n)" = 2 ] || fail "$n does not run 2 until its restart"; done
[ "$(version_of b1)" = 1 ] || fail "b1 does not run 1 until its restart"
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
: >"$HS_TMP/b1.log"
start b1
hs_wait b1 'event=ready node=b1' 15
[ "$(version_of b1)" = 3 ] || fail "b1 does not run 3 after its restart"
hs_ctl b1 config --json | grep -q '"pending_restart":null' || fail "b1's config --json after its restart"
echo "3. topology change pushed on b2: pending restart on b2, a2, b1 (config, config status), b1 runs it after a restart"
echo "PASS"
