#!/usr/bin/env bash
# timeout: 180
# Every node announces its configuration (version, BLAKE2b hash) in its handshakes and
# catches up with a newer one (SPEC §2a). Four agents on loopback:
# 1. a1 and b1 run the same file, b2 another file with the same version number: a1 and b2
#    each name the conflict once (`event=config conflict=same-version`, both nodes, both
#    hashes); `compartctl config` shows every peer's version and hash (a2: unknown).
# 2. a2 starts with version 2: the three others fetch it from a2 over the handshake
#    channel (chunked, hash-verified; from a2, or from a node that already has it), validate it, write it over their file and apply it
#    like a reload; their file is then a2's byte for byte, and nothing conflicts.
# 3. `config push` on b1 while b2 is down: the others fetch it, b2 when it starts.
# 4. `config rollback N` on a node with a state file (last-known-good, failed record).
# 5. Forged, oversize and truncated transfers from an authentic peer: refused.
HS_PORT=${HS_PORT:-7538}
. "$(dirname "$0")/lib-hs.sh"
hs_setup
sed 's/^version = 1$/version = 2/' "$HS_TMP/cluster.conf" >"$HS_TMP/a2.conf"
{ cat "$HS_TMP/cluster.conf"; echo "# b2's local edit, same version number"; } >"$HS_TMP/b2.conf"
cp "$HS_TMP/cluster.conf" "$HS_TMP/a1.conf"
cp "$HS_TMP/cluster.conf" "$HS_TMP/b1.conf"
for n in a1 a2 b1 b2; do HS_CONF[$n]=$HS_TMP/$n.conf; done
h() { b2sum -l 256 "$1" | cut -d' ' -f1; }
h1=$(h "$HS_TMP/cluster.conf") h2=$(h "$HS_TMP/a2.conf") hb2=$(h "$HS_TMP/b2.conf")
for n in a1 b1 b2; do hs_start $n; done
for n in a1 b1 b2; do hs_wait $n 'event=boot stage=handshake' 15; done

hs_wait a1 "event=config conflict=same-version version=1 node=a1 hash=$h1 peer=b2 peer_hash=$hb2" 10
hs_wait b2 "event=config conflict=same-version version=1 node=b2 hash=$hb2 peer=a1 peer_hash=$h1" 5
hs_wait b2 "event=config conflict=same-version version=1 node=b2 hash=$hb2 peer=b1 peer_hash=$h1" 5
# Heartbeats keep coming (5 per second to the own pair): the conflict is named once.
sleep 2
c=$(grep -c "event=config conflict=same-version .*node=b2 .*peer=b1 " "$HS_TMP/b2.log")
[ "$c" -eq 1 ] || fail "b2 named its conflict with b1 $c times"

j=$(hs_ctl a1 config --json)
echo "$j" | grep -q "\"running\":{\"version\":1,\"hash\":\"$h1\"}" || fail "a1 running: $j"
echo "$j" | grep -q '{"node":"a2","relation":"unknown"}' || fail "a2 in: $j"
echo "$j" | grep -q "{\"node\":\"b1\",\"version\":1,\"hash\":\"$h1\",\"relation\":\"same\"}" || fail "b1 in: $j"
echo "$j" | grep -q "{\"node\":\"b2\",\"version\":1,\"hash\":\"$hb2\",\"relation\":\"conflict\"}" || fail "b2 in: $j"
echo "$j" | grep -q '"failed":\[' || fail "no failed list: $j"
hs_ctl a1 config | grep -q "^  b2 .*version 1, blake2b ${hb2:0:16}… (conflict)" || fail "text: $(hs_ctl a1 config)"

# 2. The newer version arrives with a2.
t0=$(date +%s%N)
hs_start a2
for n in a1 b1 b2; do
	hs_wait $n "event=config action=fetch version=2 from=[a-z0-9]+ running=1" 15
	hs_wait $n "event=config action=fetched version=2 from=[a-z0-9]+ ms=[0-9]+" 10
	hs_wait $n "event=config action=applied version=2 from=[a-z0-9]+" 5
	cmp -s "$HS_TMP/a2.conf" "$HS_TMP/$n.conf" || fail "$n's file is not a2's"
	hs_ctl $n status --json | grep -q '"config_version":2' || fail "$n does not run version 2"
done
t1=$(date +%s%N)
j=$(hs_ctl a1 config --json)
echo "$j" | grep -q "\"running\":{\"version\":2,\"hash\":\"$h2\"}" || fail "a1 after: $j"
echo "$j" | grep -q "{\"node\":\"a2\",\"version\":2,\"hash\":\"$h2\",\"relation\":\"same\"}" || fail "a2 after: $j"
# `query all config`: every node's own answer, over the handshake channel.
q=$(hs_ctl b1 query all config)
for n in a1 a2 b1 b2; do
	echo "$q" | grep -q "$n" || fail "query all config: no $n in: $q"
done
[ "$(echo "$q" | grep -c '^ *running  *version 2, blake2b '"$h2")" -eq 4 ] || fail "query all config: $q"

# 3. compartctl config push on b1, with b2 down: a1 and a2 fetch version 3 from b1; b2
#    catches up when it starts again. Not newer, or not valid: refused, nothing changes.
hs_stop b2
sed 's/^version = 2$/version = 3/' "$HS_TMP/a2.conf" >"$HS_TMP/v3.conf"
{ cat "$HS_TMP/v3.conf"; echo "[node zz]"; } >"$HS_TMP/bad.conf"
out=$(hs_ctl b1 config push "$HS_TMP/a2.conf" 2>&1) && fail "an old version was pushed: $out"
echo "$out" | grep -q "version 2 is not newer than the running 2" || fail "old push: $out"
out=$(hs_ctl b1 config push "$HS_TMP/bad.conf" 2>&1) && fail "an invalid file was pushed: $out"
echo "$out" | grep -q "bad.conf: configuration refused" || fail "bad push: $out"
cmp -s "$HS_TMP/a2.conf" "$HS_TMP/b1.conf" || fail "a refused push changed b1's file"
t2=$(date +%s%N)
hs_ctl b1 config push "$HS_TMP/v3.conf" | grep -q "configuration reloaded, version 3" || fail "push"
for n in a1 a2; do
	hs_wait $n "event=config action=applied version=3 from=[a-z0-9]+" 10
	cmp -s "$HS_TMP/v3.conf" "$HS_TMP/$n.conf" || fail "$n's file is not the pushed one"
done
t3=$(date +%s%N)
# A window shorter than the fetch (whose first GET waits for b2's new boot to be verified,
# a handshake_timeout): the boot decision waits for the newer configuration.
HS_WINDOW=200ms hs_cmdline b2
hs_start b2
hs_wait b2 "event=config action=applied version=3 from=" 15
cmp -s "$HS_TMP/v3.conf" "$HS_TMP/b2.conf" || fail "b2 did not catch up"
hs_wait b2 "event=decision " 10
la=$(grep -n "event=config action=applied version=3" "$HS_TMP/b2.log" | head -1 | cut -d: -f1)
ld=$(grep -n "event=decision " "$HS_TMP/b2.log" | head -1 | cut -d: -f1)
[ "$la" -lt "$ld" ] || fail "b2 decided (line $ld) before it caught up (line $la)"
waited=$(grep -c 'decision: waiting for the newer configuration' "$HS_TMP/b2.log")

# 4. Rollback by hand: a2 alone with a state file becomes ready with version 3 (its
#    last-known-good), version 4 is pushed to it, `config rollback 3` returns to 3 and
#    records 4 as failed; rolling back to anything but the last-known-good is refused.
for n in a1 b1 b2; do hs_stop $n; done
hs_stop a2
truncate -s 2M "$HS_TMP/state.img"
: >"$HS_TMP/a2.log"
"$BUILD/compartd" run --foreground --config "$HS_TMP/a2.conf" --state "$HS_TMP/state.img" \
	--state-dir "$HS_TMP/a2" --cmdline "$HS_TMP/a2.cmdline" >"$HS_TMP/a2.log" 2>&1 &
HS_PID[a2]=$!
hs_wait a2 'event=ready node=a2 profile=wait-operator' 15
hs_ctl a2 continue >/dev/null || fail "continue refused"
hs_wait a2 'event=config action=last-known-good version=3' 10
sed 's/^version = 3$/version = 4/' "$HS_TMP/v3.conf" >"$HS_TMP/v4.conf"
hs_ctl a2 config push "$HS_TMP/v4.conf" | grep -q "version 4" || fail "push of 4"
out=$(hs_ctl a2 config rollback 2 2>&1) && fail "rolled back to 2: $out"
echo "$out" | grep -q "version 2 is not this node's last-known-good (3)" || fail "rollback 2: $out"
hs_ctl a2 config rollback 3 | grep -q "rolled back to version 3; version 4 is recorded as failed" ||
	fail "rollback 3"
hs_wait a2 'event=config action=rollback from=4 to=3 reason=operator' 5
hs_wait a2 'event=config action=failed version=4' 5
hs_ctl a2 status --json | grep -q '"config_version":3' || fail "a2 does not run 3 after the rollback"
grep -qx 'version = 3' "$HS_TMP/a2.conf" || fail "the rollback did not write version 3 over a2's file"
cp "$HS_TMP/a2.conf" "$HS_TMP/a2-after-rollback.conf"
hs_ctl a2 config --json | grep -q '"failed":\[{"version":4,' || fail "4 not listed as failed"
out=$(hs_ctl a2 config rollback 3 2>&1) && fail "a second rollback: $out"
echo "$out" | grep -q "version 3 is the one running" || fail "second rollback: $out"

# 5. Forged transfers (tests/cfg_forge.c poses as b2 with the cluster key, so every
#    datagram is authentic): another file than announced, above 1 MiB, and truncated.
cc -std=gnu17 -O1 -D_GNU_SOURCE -I"$REPO/agent/base" -I"$REPO/agent/config" -I"$REPO/agent/handshake" -I"$REPO/agent/console" -I"$REPO/agent/health" \
	-o "$HS_TMP/cfg_forge" "$REPO/tests/cfg_forge.c" "$BUILD/libcompart.a" -Wl,--as-needed \
	$(pkg-config --libs libsodium libiscsi blkid libparted) || fail "cannot build cfg_forge"
timeout 60 "$HS_TMP/cfg_forge" "$REPO/images/rig/cluster.key" 127.0.1.22:$HS_PORT 127.0.1.12:$HS_PORT 1 3 \
	"$HS_TMP/a2.log" >"$HS_TMP/forge.out" 2>&1 || { cat "$HS_TMP/forge.out"; fail "cfg_forge"; }
grep -v "again$" "$HS_TMP/forge.out"
cmp -s "$HS_TMP/a2-after-rollback.conf" "$HS_TMP/a2.conf" || fail "a forged transfer changed a2's file"
hs_ctl a2 status --json | grep -q '"config_version":3' || fail "a2 does not run 3 after the forgeries"
grep -q 'action=applied version=9[0-9]' "$HS_TMP/a2.log" && fail "a forged version was applied"

grep -h 'event=config action=fetched' "$HS_TMP"/*.log
echo "announce: same-version conflict named once per peer; version 2 reached 3 nodes in $(((t1 - t0) / 1000000)) ms (agent start included); push to 2 running nodes $(((t3 - t2) / 1000000)) ms; b2's decision waited ${waited}x for the fetch"
